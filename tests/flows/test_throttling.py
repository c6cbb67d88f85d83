"""Throttling is not failure: Amazon's 429s, erpsync's own empty bucket and an open circuit defer a job without
spending its retry budget, so a storm of any length ends with the job done, never with a dead letter."""

from __future__ import annotations

from erpsync.flows import connections
from erpsync.flows.intake import import_key
from tests.stepping import run_all


def test_a_429_storm_longer_than_the_retry_budget_ends_with_the_order_written_and_no_dead_letter(make_pipeline):
    pipeline = make_pipeline(queue={"max_retries": 2})
    [oid] = pipeline.generate(1, seed=81)
    store = pipeline.runtime.store
    key = import_key(oid, "storm")
    pipeline.control("PATCH", "faults", json={"throttle_storm_rate": 1.0, "operations": ["getOrder"]})
    assert pipeline.runtime.enqueue("import_order", key=key, amazon_order_id=oid, read=True)
    with pipeline.workers():
        # three times the budget of runs, every one of them throttled (a 429, or our bucket emptied by it)
        pipeline.wait(lambda: (store.job_key_get(key) or _never).attempts >= 6, timeout=60,
                      what="six throttled runs of the import")
        pending = store.job_key_get(key)
        assert pending is not None and pending.message["spent"] == 0, pending
        assert "429" in pending.last_error or "rate limit" in pending.last_error
        assert store.dead_letters.list() == []
        pipeline.control("DELETE", "faults")  # the storm is over
        pipeline.wait_journal([oid], "written", timeout=60)
        assert pipeline.runtime.drain(30), pipeline.describe()
    assert store.dead_letters.list() == [] and pipeline.sage_rows(oid) == (1, 1)


def test_an_open_circuit_defers_without_spending_the_budget(make_pipeline):
    pipeline = make_pipeline(queue={"max_retries": 1},
                             amazon={"rate_limit": {"circuit_failures": 1, "circuit_reset_seconds": 2.0}})
    [oid] = pipeline.generate(1, seed=82)
    runtime, store = pipeline.runtime, pipeline.runtime.store
    key = import_key(oid, "circuit")
    pipeline.control("PATCH", "faults", json={"error_rate": 1.0, "operations": ["getOrder"]})
    assert runtime.enqueue("import_order", key=key, amazon_order_id=oid, read=True)
    [first] = run_all(runtime)
    assert first.status == "retry" and "503" in first.error  # the one failure: budget 1 of 1 spent, circuit open
    pipeline.control("DELETE", "faults")
    for _ in range(5):  # the circuit is open: each run is deferred, none is a failure
        [deferred] = run_all(runtime)
        assert deferred.status == "retry" and "calls paused" in deferred.error, deferred
    assert store.job_key_get(key).message["spent"] == 1 and store.dead_letters.list() == []
    client = connections.amazon(_Ctx(runtime))
    pipeline.wait(lambda: client.breaker.state("getOrder") == "half-open", timeout=10, what="the trial call")
    [done] = run_all(runtime, queues=("amazon",))
    assert done.status == "done" and done.value == "write"


class _Never:
    attempts = 0


_never = _Never()


class _Ctx:
    """What :mod:`erpsync.flows.connections` reads of a job context."""

    def __init__(self, runtime):
        self.settings, self.store = runtime.settings, runtime.store

