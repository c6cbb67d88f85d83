"""Sage 500 fixtures: a seeded replica on SQLite (always) and PostgreSQL (when reachable), the gateway on it,
and a factory of staged orders."""

from __future__ import annotations

import shutil
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import delete, func, insert, select

from erpsync.sage500 import replica
from erpsync.sage500 import schema as s
from erpsync.sage500.draft import StagedLine, StagedOrder
from erpsync.sage500.engine import make_engine
from erpsync.sage500.gateway import Sage500Gateway

ITEMS = 40  # enough for WIDGET-*, TSHIRT-*, HOODIE-* (unit EA) and quick to seed
WHEN = datetime(2026, 1, 15, 12, 0, tzinfo=timezone.utc)


@pytest.fixture(scope="session")
def seeded_sqlite_file(tmp_path_factory) -> Path:
    """One seeded SQLite replica per run; each test works on its own copy."""
    path = tmp_path_factory.mktemp("sage500") / "template.db"
    engine = make_engine(f"sqlite:///{path}")
    replica.seed(engine, items=ITEMS)
    engine.dispose()
    return path


@pytest.fixture(params=["sqlite", "postgresql"])
def sage_url(request, tmp_path):
    """A seeded replica: a copy of the SQLite template, or a fresh PostgreSQL database seeded here."""
    if request.param == "sqlite":
        copy = tmp_path / "sage500.db"
        shutil.copyfile(request.getfixturevalue("seeded_sqlite_file"), copy)
        return f"sqlite:///{copy}"
    url = request.getfixturevalue("postgres_url")
    engine = make_engine(url)
    replica.seed(engine, items=ITEMS)
    engine.dispose()
    return url


@pytest.fixture
def sage_engine(sage_url):
    engine = make_engine(sage_url)
    yield engine
    engine.dispose()


@pytest.fixture
def sqlite_engine(tmp_path, seeded_sqlite_file):
    shutil.copyfile(seeded_sqlite_file, tmp_path / "sage500.db")
    engine = make_engine(f"sqlite:///{tmp_path / 'sage500.db'}")
    yield engine
    engine.dispose()


@pytest.fixture
def gateway(sage_engine):
    return Sage500Gateway(sage_engine)


def staged_order(amazon_order_id: str = "113-0000001-0000001", lines=(("WIDGET-BLU-L", 2, "12.99"),),
                 **fields) -> StagedOrder:
    """A StagedOrder as the translator would make it; ``lines``: (ItemID, qty, unit price[, warehouse])."""
    staged = tuple(
        StagedLine(SOLineNo=n, ItemID=item, Description=f"{item} (Amazon)", QtyOrd=Decimal(qty), UnitMeasID="EA",
                   UnitPrice=Decimal(price), ExtAmt=Decimal(price) * qty, WarehouseID=rest[0] if rest else "MAIN",
                   UserFld1=f"{n:014d}", OrderItemId=f"{n:014d}", SellerSKU=f"SKU-{item}")
        for n, (item, qty, price, *rest) in enumerate(lines, start=1))
    values = dict(
        AmazonOrderId=amazon_order_id, MarketplaceId="ATVPDKIKX0DER", FulfillmentChannel="MFN", PurchaseDate=WHEN,
        TranDate=WHEN, CustID="AMAZON-US", CustPONo=amazon_order_id[-15:], CurrID="USD", DfltWarehouseID="MAIN",
        DfltShipMethID="UPS GROUND", FreightAmt=Decimal("4.99"), STaxAmt=Decimal("1.50"), TradeDiscAmt=Decimal("1.00"),
        TranCmnt=f"Amazon {amazon_order_id}", DfltShipToAddrName="Jane Buyer", DfltShipToAddrLine1="1 Main St",
        DfltShipToCity="Reno", DfltShipToStateID="NV", DfltShipToCountryID="USA", DfltShipToPostalCode="89501",
        lines=staged)
    values.update(fields)
    return StagedOrder(**values)


@pytest.fixture
def make_order():
    return staged_order


def set_stock(engine, item_id: str, bins: dict) -> None:
    """Make ``bins`` ({WhseBinID: qty}) the only stock of ``item_id``, nothing pending."""
    with engine.begin() as conn:
        item_key = conn.execute(select(s.timItem.c.ItemKey).where(s.timItem.c.ItemID == item_id)).scalar_one()
        keys = dict(conn.execute(select(s.timWhseBin.c.WhseBinID, s.timWhseBin.c.WhseBinKey)).all())
        conn.execute(delete(s.timWhseBinInvt).where(s.timWhseBinInvt.c.ItemKey == item_key))
        conn.execute(insert(s.timWhseBinInvt), [dict(WhseBinKey=keys[bin_id], ItemKey=item_key, QtyOnHand=Decimal(qty))
                                                for bin_id, qty in bins.items()])


@pytest.fixture
def stock():
    return set_stock


def count(engine, table, *where) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(table).where(*where)).scalar_one()


@pytest.fixture
def rows():
    return count
