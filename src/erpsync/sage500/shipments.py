"""Shipments of Amazon orders in Sage, read for confirmation on Amazon.

:meth:`Shipments.shipments_since` reads forward from a cursor (ShipKey) and passes every shipment it examines: the
committed (TranStatus 6) and posted (3) ones come back as records, the ones still pending (picked, not committed)
come back as keys for the caller to remember and re-check on their own with :meth:`Shipments.shipments`. A pick
that is never committed therefore holds nothing up behind it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from sqlalchemy import Connection

from erpsync.sage500 import sql
from erpsync.sage500.database import SageDatabase

SHIPPED = (sql.COMMITTED, sql.POSTED)
CHUNK = 500  # keys per IN list


@dataclass(frozen=True)
class PackageLine:
    OrderItemId: str | None
    SellerSKU: str | None
    ItemID: str | None
    Qty: Decimal


@dataclass(frozen=True)
class PackageRecord:
    PackageNo: int
    TrackingNo: str | None
    ShipMethID: str | None
    lines: tuple[PackageLine, ...]


@dataclass(frozen=True)
class ShipmentRecord:
    """A committed (TranStatus 6) or posted (3) shipment of one Amazon order. ``lines`` holds everything shipped
    (QtyShipped); ``packages`` how it was packed. A shipment packed in no package has ``packages == ()``."""

    ShipKey: int
    TranNo: str
    TranID: str | None
    TranStatus: int
    ShipDate: datetime | None  # aware UTC (Sage's local time converted)
    SOKey: int
    SOTranNo: str
    SOTranID: str
    AmazonOrderId: str
    MarketplaceId: str | None
    packages: tuple[PackageRecord, ...]
    lines: tuple[PackageLine, ...]


@dataclass(frozen=True)
class ShipmentPage:
    records: list[ShipmentRecord]  # committed or posted, oldest first
    cursor: int  # the highest ShipKey examined (the cursor given when there was nothing after it)
    pending: list[int] = field(default_factory=list)  # examined, still pending: re-check with shipments()


class Shipments(SageDatabase):

    def shipments_since(self, cursor: int, limit: int = 200) -> ShipmentPage:
        """The next ``limit`` shipments of Amazon orders with ShipKey > ``cursor``: records of those committed or
        posted, keys of those still pending, and the new cursor, which passes them all."""
        def read(conn: Connection) -> ShipmentPage:
            states = conn.execute(sql.shipment_keys_after(limit), {"cursor": cursor}).all()
            if not states:
                return ShipmentPage([], cursor)
            shipped = [key for key, status in states if status in SHIPPED]
            pending = [key for key, status in states if status not in SHIPPED]
            return ShipmentPage(self._records(conn, shipped), max(key for key, _ in states), pending)

        return self._read(read)

    def shipments(self, ship_keys: Iterable[int]) -> ShipmentPage:
        """Re-check shipments by key: records of those now committed or posted, keys of those still pending;
        a key Sage no longer has (a pick deleted before commit) is in neither. ``cursor`` is 0 (unused)."""
        keys = sorted(set(ship_keys))
        if not keys:
            return ShipmentPage([], 0)

        def read(conn: Connection) -> ShipmentPage:
            states = [row for start in range(0, len(keys), CHUNK)  # SQL Server takes 2,100 parameters at most
                      for row in conn.execute(sql.shipment_states(), {"ship_keys": keys[start:start + CHUNK]})]
            shipped = [key for key, status in states if status in SHIPPED]
            pending = sorted(key for key, status in states if status not in SHIPPED)
            return ShipmentPage(self._records(conn, sorted(shipped)), 0, pending)

        return self._read(read)

    def _records(self, conn: Connection, ship_keys: list[int]) -> list[ShipmentRecord]:
        rows = [row for start in range(0, len(ship_keys), CHUNK)
                for row in conn.execute(sql.shipment_details(self.package),
                                        {"ship_keys": ship_keys[start:start + CHUNK]}).mappings()]
        grouped: dict[tuple[int, int], list] = {}
        for row in rows:
            grouped.setdefault((row["ShipKey"], row["SOKey"]), []).append(row)
        return [self._record(ship_key, so_key, group) for (ship_key, so_key), group in grouped.items()]

    def _record(self, ship_key: int, so_key: int, group: list) -> ShipmentRecord:
        first = group[0]
        packages: dict[int, list] = {}
        lines: dict[int, PackageLine] = {}
        for row in group:
            lines[row["ShipLineKey"]] = PackageLine(row["OrderItemId"], row["SellerSKU"], row["ItemID"],
                                                    row["QtyShipped"])
            if row["PackageNo"] is not None:
                packages.setdefault(row["PackageNo"], []).append(row)
        return ShipmentRecord(
            ShipKey=ship_key, TranNo=first["ShipTranNo"], TranID=first["ShipTranID"], TranStatus=first["TranStatus"],
            ShipDate=self.clock.from_sage(first["ShipDate"]), SOKey=so_key, SOTranNo=first["TranNo"],
            SOTranID=first["TranID"], AmazonOrderId=first["AmazonOrderId"], MarketplaceId=first["MarketplaceId"],
            packages=tuple(PackageRecord(no, pkg[0]["TrackingNo"], pkg[0]["ShipMethID"],
                                         tuple(PackageLine(r["OrderItemId"], r["SellerSKU"], r["ItemID"],
                                                           r["QtyPacked"]) for r in pkg))
                           for no, pkg in sorted(packages.items())),
            lines=tuple(lines.values()))
