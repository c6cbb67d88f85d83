"""The job wrapper on the real SQLite huey backend: retries, budgets, dead letters, identity keys."""

from datetime import datetime, timedelta, timezone

import pytest
from conftest import make_settings, runs, step

from erpsync.errors import UnknownSku
from erpsync.flows import jobs as declared
from erpsync.runtime import jobs
from erpsync.runtime.jobs import Runtime, default_key
from erpsync.runtime.store import utcnow


def test_retryable_job_is_rescheduled_on_the_queue_schedule_and_succeeds_on_the_third_attempt(runtime):
    assert runtime.enqueue("test.flaky", marker="m1", fail_times=2)
    outcomes = step(runtime)
    assert [o.status for o in outcomes] == ["retry"]
    # the retry waits in huey's schedule (no worker sleeps on it) and the key shows the attempt and error
    assert runtime.pending()["amazon"] == {"queued": 0, "scheduled": 1}
    [pending] = runtime.store.job_keys_pending()
    assert pending.attempts == 1 and "service unavailable" in pending.last_error
    assert 0 <= outcomes[0].delay <= 0.01  # full jitter under base * 2**0
    assert [o.status for o in step(runtime)] == ["retry"]
    assert [o.status for o in step(runtime)] == ["done"]
    assert runs(runtime, "m1") == [1, 2, 3]
    assert runtime.store.job_keys_pending() == [] and runtime.store.dead_letters.list() == []
    assert runtime.drain(timeout=1)


def test_spend_retry_false_does_not_consume_the_budget(tmp_path):
    rt = Runtime(make_settings(tmp_path, max_retries=1))
    rt.enqueue("test.locked", marker="lock", lock_times=4)
    statuses = [o.status for _ in range(5) for o in step(rt)]
    assert statuses == ["retry"] * 4 + ["done"]  # four deferrals with a budget of one retry
    # the same number of spending failures exhausts the budget: 1 run + 1 retry, then the dead letter
    rt.enqueue("test.flaky", marker="spend", fail_times=4)
    statuses = [o.status for _ in range(3) for o in step(rt)]
    assert statuses == ["retry", "dead"]
    [dead] = rt.store.dead_letters.list()
    assert dead.attempts == 2 and dead.error_code == "retryable" and dead.first_failed_at < dead.last_failed_at
    rt.close()


def test_permanent_error_is_dead_lettered_at_once(runtime):
    runtime.enqueue("test.write_item", sku="WIDGET-BLU")
    [outcome] = step(runtime)
    assert outcome.status == "dead"
    dead = runtime.store.dead_letters.get(outcome.dead_letter_id)
    assert (dead.job, dead.queue, dead.payload, dead.attempts, dead.status) == \
        ("test.write_item", "sage500", {"sku": "WIDGET-BLU"}, 1, "open")
    assert (dead.error_class, dead.error_code, dead.record) == ("UnknownSku", UnknownSku.code, "WIDGET-BLU")
    assert "add an alias" in dead.message and dead.key == default_key("test.write_item", {"sku": "WIDGET-BLU"})
    assert dead.first_failed_at.tzinfo is timezone.utc
    assert runtime.store.job_keys_pending() == [] and runtime.drain(timeout=1)
    assert [e.detail["dead_letter"] for e in runtime.store.audit_list(event="dead_letter.captured")] == [dead.id]


def test_unforeseen_exception_is_retried_then_dead_lettered_with_every_attempt_counted(runtime):
    runtime.enqueue("test.bug", marker="bug")
    statuses = [o.status for _ in range(5) for o in step(runtime)]
    assert statuses == ["retry", "retry", "retry", "dead"]  # max_retries=3
    [dead] = runtime.store.dead_letters.list()
    assert (dead.error_class, dead.error_code, dead.attempts) == ("ZeroDivisionError", "unexpected_error", 4)
    assert runs(runtime, "bug") == [1, 2, 3, 4]


def test_retry_after_hint_sets_the_eta(runtime, monkeypatch):
    from erpsync.errors import Throttled

    def throttled(ctx, marker):
        raise Throttled("429 QuotaExceeded", retry_after=30)

    monkeypatch.setitem(declared._REGISTRY, "test.throttled", declared.Job("test.throttled", "amazon", throttled))
    outcome = runtime.run("test.throttled", {"marker": "t"})
    assert outcome.status == "retry" and outcome.delay == 30
    [task] = runtime.queues["amazon"].scheduled()
    eta = task.eta.replace(tzinfo=timezone.utc)
    assert timedelta(seconds=28) < eta - utcnow() <= timedelta(seconds=30)
    assert runtime.drain(timeout=0.2) is False  # the retry is still pending


def test_identity_key_is_not_queued_twice_while_pending(runtime):
    assert runtime.enqueue("test.flaky", key="order:113-1", marker="k") is True
    assert runtime.enqueue("test.flaky", key="order:113-1", marker="k") is False
    assert runtime.enqueue("test.flaky", marker="k") is True  # a different (default) key
    assert runtime.enqueue("test.flaky", marker="k") is False
    assert runtime.pending()["amazon"]["queued"] == 2
    assert [o.status for o in step(runtime)] == ["done", "done"]
    assert runtime.enqueue("test.flaky", key="order:113-1", marker="k") is True  # done: may be queued again


def test_a_key_whose_message_was_lost_is_reclaimed_after_the_stale_period(runtime):
    long_ago = datetime.now(timezone.utc) - jobs.KEY_STALE_AFTER - timedelta(minutes=1)
    runtime.store.job_key_claim("order:lost", job="test.flaky", queue="amazon", due_at=long_ago,
                                stale_after=jobs.KEY_STALE_AFTER)
    assert runtime.enqueue("test.flaky", key="order:lost", marker="lost") is True


def test_a_job_run_by_name_after_its_code_is_gone_becomes_a_dead_letter(runtime, monkeypatch):
    runtime.enqueue("test.flaky", marker="gone")
    monkeypatch.delitem(declared._REGISTRY, "test.flaky")
    [outcome] = step(runtime)
    dead = runtime.store.dead_letters.get(outcome.dead_letter_id)
    assert dead.error_code == "unknown_job" and "test.flaky" in dead.message


def test_follow_up_jobs_go_to_their_own_queue(runtime):
    runtime.enqueue("test.chain", marker="c")
    assert runtime.pending()["amazon"]["queued"] == 1
    step(runtime, ("amazon",))
    assert runtime.pending() == {"amazon": {"queued": 0, "scheduled": 0}, "sage500": {"queued": 1, "scheduled": 0}}
    step(runtime, ("sage500",))
    assert runs(runtime, "c-next") == [1] and runtime.drain(timeout=1)


def test_a_job_cannot_queue_its_own_pending_key(runtime, monkeypatch):
    def again(ctx, page):
        ctx.enqueue("test.again", page=page)

    monkeypatch.setitem(declared._REGISTRY, "test.again", declared.Job("test.again", "amazon", again))
    outcome = runtime.run("test.again", {"page": 1})
    assert outcome.status == "retry" and "cannot queue its own key" in outcome.error


def test_bad_job_names_and_kwargs_are_refused_at_enqueue(runtime):
    with pytest.raises(declared.UnknownJob, match="no job named 'test.nope'"):
        runtime.enqueue("test.nope")
    with pytest.raises(ValueError, match="JSON"):
        runtime.enqueue("test.flaky", marker=object())
    with pytest.raises(ValueError, match="unknown queue"):
        declared.job("x", queue="ebay")
    with pytest.raises(ValueError, match="taken by"):
        declared.job("test.flaky", queue="amazon")(lambda ctx: None)


def test_job_modules_that_do_not_exist_yet_are_skipped_but_a_configured_one_must_import():
    loaded = jobs.load_job_modules()
    assert set(loaded) <= set(jobs.JOB_MODULES)
    with pytest.raises(Exception, match="erpsync_no_such_module"):
        jobs.load_job_modules(["erpsync_no_such_module"])
