"""`erpsync demo --json` as a user runs it from an empty directory; its numbers checked against the replica it
leaves behind (orders, packages, the settlement's GL batches) and the state store, and a second run giving the same
result (the demo directory is recreated) while its sandbox is still up: Amazon's listings hold Sage's prices and
Sage's availability after the orders (the demo lists them out of stock at old prices: only the sync sets them)."""

from __future__ import annotations

import json
from decimal import ROUND_FLOOR, Decimal

import httpx
import pytest
import structlog
from rich.progress import Progress
from sqlalchemy import create_engine, func, select, text
from typer.testing import CliRunner

from erpsync.cli import app
from erpsync.commands.demo import run_demo
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
    assert summary["settlement_orders"] == summary["confirmed"] + summary["fba_skipped"]  # every order settled
    assert summary["settlement_posted"] and summary["settlement_balanced"] and summary["listing_feeds"] == 1

    sage = create_engine(f"sqlite:///{summary['sage_database']}")
    with sage.connect() as conn:
        priced = conn.execute(select(func.count(func.distinct(s.timPriceSheet.c.ItemKey)))
                              .where(s.timPriceSheet.c.CurrID == "USD")).scalar()
        assert summary["listings_updated"] == summary["listings_sent"] == priced  # the catalogue, every SKU
        b, t, a = s.tciBatchLog, s.tglTransaction, s.tglAccount
        batches = list(conn.execute(select(b.c.BatchKey).where(
            b.c.BatchCmnt.like(f"AMZ:{summary['settlement_id']}/%"), b.c.Status == 6)).scalars())
        assert len(batches) == summary["gl_batches"] >= 1
        for key in batches:
            assert Decimal(str(conn.execute(select(func.sum(t.c.PostAmt)).where(t.c.BatchKey == key)).scalar())) == 0
        lines = conn.execute(select(a.c.GLAcctNo, t.c.PostAmt).join(a, a.c.GLAcctKey == t.c.GLAcctKey)
                             .where(t.c.BatchKey.in_(batches))).all()
        assert len(lines) == summary["gl_lines"]
        assert sum(Decimal(str(amt)) for no, amt in lines if no == "1010") == Decimal(summary["settlement_deposit"])
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
        assert conn.execute(text("SELECT status, total_amount FROM settlements WHERE settlement_id = :sid"),
                            {"sid": summary["settlement_id"]}).one() == ("posted", summary["settlement_deposit"])
        assert conn.execute(text("SELECT COUNT(*) FROM listing_state WHERE acked IS NOT NULL")).scalar() == \
            summary["listings_updated"]
    state.dispose()

    on_amazon: dict[str, dict] = {}

    def look(_summary, _runtime, _app, _web, sandbox_url, gateway) -> None:  # the sandbox is still up
        listings = httpx.get(f"{sandbox_url}/_sandbox/listings").json()["listings"]
        levels, prices = gateway.stock_levels(["MAIN"]), gateway.prices("USD", "MAIN")
        on_amazon.update({item["sku"]: item for item in listings})
        assert set(on_amazon) == set(prices)
        for sku, price in prices.items():
            assert Decimal(on_amazon[sku]["price"]) == price.quantize(Decimal("0.01")), sku
            available = max(levels.get(sku, Decimal(0)), Decimal(0)).to_integral_value(rounding=ROUND_FLOOR)
            assert on_amazon[sku]["quantity"] == int(available), sku  # what Sage can still ship, after the orders

    with Progress(disable=True) as progress:
        repeat = run_demo(6, demo, progress, then=look)
    assert on_amazon
    timings = ("seconds", "import_seconds", "fulfil_seconds", "listings_seconds", "settlement_seconds")
    assert {k: v for k, v in vars(repeat).items() if k not in timings} == \
        {k: v for k, v in summary.items() if k not in timings} | {"sage_database": f"sqlite:///{demo / 'sage500.db'}"}
