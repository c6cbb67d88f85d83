"""`erpsync demo --json` as a user runs it from an empty directory; its numbers checked against the replica it
leaves behind and the state store, and a second run giving the same result (the demo directory is recreated)."""

from __future__ import annotations

import json

import pytest
import structlog
from sqlalchemy import create_engine, func, select, text
from typer.testing import CliRunner

from erpsync.cli import app
from erpsync.sage500 import schema as s

runner = CliRunner()


@pytest.fixture(autouse=True)
def _keep_logging():
    """The demo configures logging for a terminal (errors only); the tests after this one keep theirs."""
    saved = structlog.get_config()
    yield
    structlog.configure(**saved)


def test_demo_runs_the_whole_cycle_and_reports_what_the_databases_hold(workdir):
    result = runner.invoke(app, ["demo", "--orders", "6", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["orders_generated"] == 6 and summary["dead_letters"] == 0
    assert summary["written_to_sage"] + summary["fba_skipped"] == 6 and summary["written_to_sage"] >= 4
    assert summary["shipped"] == summary["confirmed"] == summary["written_to_sage"]
    assert summary["packages_confirmed"] == summary["packages_shipped"] > summary["shipped"]  # multi-package
    demo = workdir / ".erpsync" / "demo"
    assert summary["sage_database"] == str(demo / "sage500.db")

    sage = create_engine(f"sqlite:///{summary['sage_database']}")
    with sage.connect() as conn:
        assert conn.execute(select(func.count()).select_from(s.tsoSalesOrderExt_AMZ)).scalar() == \
            summary["written_to_sage"]
        assert conn.execute(select(func.count()).select_from(s.package_table())).scalar() == \
            summary["packages_shipped"]
        assert conn.execute(select(func.count()).select_from(s.tsoSalesOrder)
                            .where(s.tsoSalesOrder.c.Status == 4)).scalar() == summary["shipped"]  # all closed
    sage.dispose()
    state = create_engine(f"sqlite:///{demo / 'state.db'}")
    with state.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM shipment_confirmations")).scalar() == \
            summary["packages_confirmed"]
        assert conn.execute(text("SELECT COUNT(*) FROM order_journal WHERE status = 'confirmed'")).scalar() == \
            summary["confirmed"]
    state.dispose()

    again = runner.invoke(app, ["demo", "--orders", "6", "--json"])
    assert again.exit_code == 0, again.output
    repeat = json.loads(again.stdout)
    timings = ("seconds", "import_seconds", "fulfil_seconds")
    assert {k: v for k, v in repeat.items() if k not in timings} == \
        {k: v for k, v in summary.items() if k not in timings}
