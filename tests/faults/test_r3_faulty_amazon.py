"""R3, short: 5% of SP-API calls answered 5xx, 429 storms, every notification delivered three times and each batch
out of order."""

from __future__ import annotations

from benchmarks.faults import r3


def test_errors_storms_and_repeated_notifications_lose_and_duplicate_nothing(tmp_path, sage_template, quiet):
    tally = r3(tmp_path, orders=40, rate=20, error_rate=0.05, copies=3, seed=13, timeout=50,
               sage_template=sage_template, say=quiet)
    assert tally.extra["storms"] >= 1 and tally.extra["deliveries"] >= 3 * 40
    assert tally.in_sage == tally.orders == 40
    assert (tally.lost, tally.duplicated, tally.crashed, tally.dead_letters) == ([], [], 0, 0), tally.line("R3")
