"""R2, short: Sage unreachable for 5 sandbox-minutes while orders stream in, with cancellations during the outage
(of orders Sage already holds and of orders it has not seen yet)."""

from __future__ import annotations

from benchmarks.faults import r2


def test_a_sage_outage_with_cancellations_loses_nothing_and_voids_what_was_cancelled(tmp_path, sage_template, quiet):
    tally = r2(tmp_path, orders=80, rate=20, outage_minutes=5, cancels=6, seed=12, timeout=50,
               sage_template=sage_template, say=quiet)
    assert tally.extra["cancelled"] == 6 and tally.extra["outage_sandbox_minutes"] >= 5
    assert tally.in_sage >= tally.orders - 6
    assert (tally.lost, tally.duplicated, tally.cancel_missed) == ([], [], []), tally.line("R2")
    assert (tally.crashed, tally.dead_letters) == (0, 0), tally.line("R2")
