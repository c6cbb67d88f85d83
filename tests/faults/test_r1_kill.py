"""R1, short: real ``erpsync worker`` processes SIGKILLed while orders import, queues on Redis and the state store
on PostgreSQL (required in CI; skipped with the reason when either is unreachable)."""

from __future__ import annotations

from benchmarks.faults import r1


def test_workers_killed_while_orders_import_lose_and_duplicate_nothing(tmp_path, sage_template, postgres_url,
                                                                      redis_url, quiet):
    tally = r1(tmp_path, orders=40, kills=4, workers=2, seed=11, timeout=45, sage_template=sage_template,
               state_url=postgres_url, queue_prefix=redis_url.prefix, say=quiet)
    assert tally.extra["kills"] == 4
    assert tally.in_sage == tally.orders == 40
    assert (tally.lost, tally.duplicated, tally.crashed, tally.dead_letters) == ([], [], 0, 0), tally.line("R1")
