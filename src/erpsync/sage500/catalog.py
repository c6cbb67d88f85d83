"""What Sage knows of items, customers, ship methods and warehouses, and its stock and list prices."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import Connection

from erpsync.sage500 import sql
from erpsync.sage500.database import SageDatabase

ZERO = Decimal("0")


@dataclass(frozen=True)
class ItemRecord:
    ItemKey: int
    ItemID: str
    ShortDesc: str | None
    UnitMeasID: str | None  # stock unit of measure
    Status: int


@dataclass(frozen=True)
class CustomerRecord:
    CustKey: int
    CustID: str
    CustName: str | None
    Status: int
    Hold: int


class Catalog(SageDatabase):

    def items(self, item_ids: Iterable[str]) -> dict[str, ItemRecord]:
        ids = sorted(set(item_ids))
        if not ids:
            return {}
        rows = self._read(lambda conn: conn.execute(
            sql.items_by_id(), {"company_id": self.company_id, "item_ids": ids}).mappings().all())
        return {row["ItemID"]: ItemRecord(**row) for row in rows}

    def item_ids(self) -> list[str]:
        return self._read(lambda conn: list(conn.execute(sql.all_item_ids(),
                                                         {"company_id": self.company_id}).scalars()))

    def customer(self, cust_id: str) -> CustomerRecord | None:
        row = self._read(lambda conn: conn.execute(
            sql.customer_by_id(), {"company_id": self.company_id, "cust_id": cust_id}).mappings().first())
        return CustomerRecord(**row) if row else None

    def ship_method_ids(self) -> list[str]:
        return self._read(lambda conn: list(conn.execute(sql.all_ship_method_ids(),
                                                         {"company_id": self.company_id}).scalars()))

    def warehouse_ids(self) -> list[str]:
        return self._read(lambda conn: list(conn.execute(sql.all_warehouse_ids(),
                                                         {"company_id": self.company_id}).scalars()))

    # ----- stock and prices ------------------------------------------------------------------------------------

    def stock_levels(self, whse_ids: Iterable[str]) -> dict[str, Decimal]:
        """Available quantity per ItemID over the warehouses: Σ bins (QtyOnHand − PendQtyDecrease, bins not
        excluded from availability) − open sales-order quantity not yet picked. May be negative; items without
        bins or demand are absent (no stock)."""
        params = {"company_id": self.company_id, "whse_ids": sorted(set(whse_ids))}

        def read(conn: Connection) -> dict[str, Decimal]:
            available = dict(conn.execute(sql.bin_availability(), params).all())
            picked = dict(conn.execute(sql.picked_uncommitted(), params).all())
            for item_id, quantity in conn.execute(sql.open_so_demand(), params).all():
                available[item_id] = available.get(item_id, ZERO) - (quantity - picked.get(item_id, ZERO))
            return available

        return self._read(read) if params["whse_ids"] else {}

    def prices(self, currency: str, whse_id: str | None = None, *, at: datetime | None = None) -> dict[str, Decimal]:
        """ListPrice per ItemID effective at ``at`` (default now; compared in Sage's local time) in ``currency``;
        for one warehouse's price sheet or, when None, the first warehouse that prices the item."""
        params = {"company_id": self.company_id, "currency": currency, "now": self.clock.to_sage(at),
                  "whse_id": whse_id}

        def read(conn: Connection) -> dict[str, Decimal]:
            prices: dict[str, Decimal] = {}
            for row in conn.execute(sql.current_prices(whse_id is not None), params):
                prices.setdefault(row.ItemID, row.Price)
            return prices

        return self._read(read)
