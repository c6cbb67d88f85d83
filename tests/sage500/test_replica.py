"""The replica: schema creation, a realistic seeded company, surrogate-key counters, the CLI."""

from __future__ import annotations

import re
import time

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from erpsync.cli import app
from erpsync.errors import ConfigError
from erpsync.sage500 import replica
from erpsync.sage500 import schema as s
from erpsync.sage500.engine import make_engine
from erpsync.sage500.gateway import Sage500Gateway


def snapshot(engine) -> dict:
    with engine.connect() as conn:
        return {
            "items": conn.execute(select(s.timItem.c.ItemID, s.timItem.c.StockUnitMeasKey)
                                  .order_by(s.timItem.c.ItemKey)).all(),
            "stock": conn.execute(select(s.timWhseBinInvt).order_by(s.timWhseBinInvt.c.WhseBinKey,
                                                                     s.timWhseBinInvt.c.ItemKey)).all(),
            "prices": conn.execute(select(s.timPriceSheet.c.ItemKey, s.timPriceSheet.c.CurrID,
                                          s.timPriceSheet.c.ListPrice)
                                   .where(s.timPriceSheet.c.EffectiveDate < s.sage_time().replace(year=2021))
                                   .order_by(s.timPriceSheet.c.ItemKey, s.timPriceSheet.c.CurrID)).all(),
        }


def test_seed_makes_a_realistic_company_quickly(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'sage.db'}")
    started = time.perf_counter()
    report = replica.seed(engine)
    elapsed = time.perf_counter() - started
    assert elapsed < 5, f"seeding 500 items took {elapsed:.1f}s"
    assert tuple(report.rows) == replica.SEEDED_TABLES and report.rows["timItem"] == 500
    gateway = Sage500Gateway(engine)
    ids = gateway.item_ids()
    assert len(ids) == len(set(ids)) == 500
    assert all(re.fullmatch(r"[A-Z0-9]+(-[A-Z0-9]+)+", item_id) for item_id in ids)
    assert {"WIDGET-BLU-L", "TSHIRT-RED-M", "SOCKS-BLK-S"} <= set(ids)
    units = {item.UnitMeasID for item in gateway.items(ids).values()}
    assert {"EA", "PR", "BX", "PK"} <= units
    assert all(item.ShortDesc and len(item.ShortDesc) <= 40 for item in gateway.items(ids).values())
    assert gateway.warehouse_ids() == ["EAST", "FBA", "MAIN"]
    assert {"UPS GROUND", "UPS 2DAY", "FEDEX GROUND", "FEDEX 2DAY", "USPS PRIORITY", "DHL INTL", "AMZ FBA"} <= set(
        gateway.ship_method_ids())
    for cust_id, currency, _, _ in replica.MARKETPLACES.values():
        customer = gateway.customer(cust_id)
        assert customer.Hold == 0 and customer.Status == 1, cust_id
        assert len(gateway.prices(currency)) == 500
    assert {"AMAZON-US", "AMAZON-CA", "AMAZON-UK", "AMAZON-DE"} == {c for c, *_ in replica.MARKETPLACES.values()}
    assert gateway.customer(replica.HOLD_CUSTOMER).Hold == 1
    with engine.connect() as conn:
        excluded = conn.execute(select(s.timWhseBin.c.WhseBinID).where(s.timWhseBin.c.ExclFromAvail == 1)).scalars()
        assert list(excluded) == ["QC-HOLD"]
        accounts = set(conn.execute(select(s.tglAccount.c.Description)).scalars())
        company = conn.execute(select(s.tsmCompany)).mappings().one()
    assert company["CompanyID"] == "SOA" and company["CurrID"] == "USD"
    for words in ("Cash", "Clearing", "Receivable", "Sales - Amazon", "Shipping", "Promotions", "Sales Tax",
                  "Facilitator", "Commission", "FBA Fulfillment", "Storage", "Subscription", "Advertising", "Reserve",
                  "Reimbursements", "Miscellaneous"):
        assert any(words in a for a in accounts), words
    main = gateway.stock_levels(["MAIN"])
    assert sum(1 for q in main.values() if q > 0) > 300 and all(q >= 0 for q in main.values())


def test_seed_is_deterministic_for_a_seed(tmp_path):
    engines = [make_engine(f"sqlite:///{tmp_path / f'{n}.db'}") for n in range(3)]
    for engine, seed in zip(engines, (7, 7, 8), strict=True):
        replica.seed(engine, items=60, seed=seed)
    same, other = snapshot(engines[0]), snapshot(engines[2])
    assert same == snapshot(engines[1])
    assert same["items"] == other["items"] and same["stock"] != other["stock"]


def test_seed_refuses_a_seeded_company_and_bad_sizes(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'sage.db'}")
    replica.seed(engine, items=5)
    with pytest.raises(ConfigError, match="company SOA is already seeded"):
        replica.seed(engine, items=5)
    report = replica.seed(engine, company_id="SO2", items=5)  # a second company: its own keys
    assert report.rows["timItem"] == 5 and len(Sage500Gateway(engine, "SO2").item_ids()) == 5
    with pytest.raises(ValueError, match="items must be between 1 and 704"):
        replica.seed(make_engine(f"sqlite:///{tmp_path / 'other.db'}"), items=10_000)


def test_next_keys_hands_out_blocks(sqlite_engine):
    with sqlite_engine.begin() as conn:
        first = replica.next_keys(conn, "tsoSOLine")
        block = replica.next_keys(conn, "tsoSOLine", 5)
        after = replica.next_keys(conn, "tsoSOLine")
        fresh = replica.next_keys(conn, "tNewSeries_R", 3)
        fresh_after = replica.next_keys(conn, "tNewSeries_R")
    assert (block, after, fresh, fresh_after) == (first + 1, first + 6, 1, 4)


def test_create_is_idempotent(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'sage.db'}")
    made = replica.create(engine)
    assert len(made) == len(s.expected_tables()) and "tsoSalesOrderExt_AMZ" in made
    assert replica.create(engine) == []
    with engine.connect() as conn:
        counters = conn.execute(select(func.count()).select_from(s.tciSurrogateKey_R)).scalar_one()
    assert counters == len(replica.SERIES)


def test_cli_replica_create_and_seed(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ERPSYNC_CONFIG", raising=False)
    runner = CliRunner()
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    result = runner.invoke(app, ["sage500", "replica", "create", "--url", url])
    assert result.exit_code == 0 and f"created {len(s.expected_tables())} tables" in result.output
    result = runner.invoke(app, ["sage500", "replica", "seed", "--url", url, "--items", "25"])
    assert result.exit_code == 0, result.output
    assert re.search(r"timItem\s*│\s*25", result.output) and "company SOA" in result.output
    result = runner.invoke(app, ["sage500", "replica", "seed", "--url", url])
    assert result.exit_code == 1 and "already seeded" in result.output
    result = runner.invoke(app, ["sage500", "replica", "seed", "--url", url, "--items", "30", "--reset"])
    assert result.exit_code == 0 and re.search(r"timItem\s*│\s*30", result.output)
