"""huey for real: consumer threads on SQLite always; on Redis and PostgreSQL when reachable (required in CI)."""

import pytest
from conftest import make_settings, runs

from erpsync.runtime.jobs import Runtime
from erpsync.runtime.queue import make_huey


@pytest.fixture(params=["sqlite", "redis", "postgresql"])
def settings(request, tmp_path):
    if request.param == "sqlite":
        return make_settings(tmp_path)
    if request.param == "redis":
        url = request.getfixturevalue("redis_url")
        return make_settings(tmp_path, queue_url=str(url), name=url.prefix)
    url = request.getfixturevalue("postgres_url")
    return make_settings(tmp_path, queue_url=url, state_url=url)


def test_backend_is_the_one_the_url_names(settings):
    huey = make_huey(settings, "sage500")
    assert huey.name == f"{settings.queue.name}-sage500"
    assert type(huey).__name__ == {"sqlite": "SqliteHuey", "redis": "RedisHuey",
                                   "postgresql": "PostgresHuey"}[settings.queue.url.split(":")[0].split("+")[0]]
    huey.storage.close()


def test_a_real_consumer_runs_both_queues_with_retries_deferrals_and_dead_letters(settings):
    rt = Runtime(settings)
    with rt.start_consumer(workers=2, poll_seconds=0.2):
        for i in range(10):
            assert rt.enqueue("test.flaky", marker=f"ok{i}")
        rt.enqueue("test.flaky", marker="retry", fail_times=2)
        rt.enqueue("test.locked", marker="locked", lock_times=1)
        rt.enqueue("test.write_item", sku="NOPE")
        rt.enqueue("test.chain", marker="chain")
        assert rt.drain(timeout=30), rt.pending()
    assert all(runs(rt, f"ok{i}") == [1] for i in range(10))
    assert runs(rt, "retry") == [1, 2, 3] and runs(rt, "locked") == [1, 2] and runs(rt, "chain-next") == [1]
    [dead] = rt.store.dead_letters.list()
    assert (dead.job, dead.error_code, dead.attempts) == ("test.write_item", "unknown_sku", 1)
    assert rt.store.job_keys_pending() == []
    rt.close()
