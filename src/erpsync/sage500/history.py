"""What Sage already knows about an order's items, for the data-quality checks: how many units earlier Sage orders
asked for (per order, most recent first), the list prices in force, and the hold an order carries.

Statements are registered in :data:`erpsync.sage500.sql.REGISTRY` (``@statement``) like every other statement
sent to Sage, so the dialect test compiles them for SQL Server and parses them as T-SQL. The read functions take
an Engine (or a Connection) and read only.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta, timezone
from decimal import Decimal

from sqlalchemy import Connection, Engine, bindparam, func, select
from sqlalchemy import exc as sa_exc

from erpsync.errors import SageUnavailable
from erpsync.sage500 import schema as s
from erpsync.sage500.sql import SO_CANCELED, SO_TRAN_TYPE, statement

HISTORY_LIMIT = 200  # the most recent orders per item that count


@statement()
def item_order_quantities():
    """Units of each item per Sage sales order (split lines summed) since ``since``, newest orders first."""
    so, line, dist, item = s.tsoSalesOrder, s.tsoSOLine, s.tsoSOLineDist, s.timItem
    return (select(item.c.ItemID, so.c.SOKey, func.sum(dist.c.QtyOrd).label("Qty"))
            .select_from(so.join(line, line.c.SOKey == so.c.SOKey)
                         .join(dist, dist.c.SOLineKey == line.c.SOLineKey)
                         .join(item, item.c.ItemKey == line.c.ItemKey))
            .where(so.c.CompanyID == bindparam("company_id"), so.c.TranType == SO_TRAN_TYPE,
                   so.c.Status != SO_CANCELED, so.c.TranDate >= bindparam("since"),
                   item.c.ItemID.in_(bindparam("item_ids", expanding=True)))
            .group_by(item.c.ItemID, so.c.SOKey, so.c.TranDate)
            .order_by(item.c.ItemID, so.c.TranDate.desc(), so.c.SOKey.desc()))


@statement()
def item_list_prices():
    """Price-sheet rows in force at ``now`` for some items in one currency, per warehouse, newest first."""
    ps, item, whse = s.timPriceSheet, s.timItem, s.timWarehouse
    return (select(item.c.ItemID, whse.c.WhseID, ps.c.ListPrice, ps.c.EffectiveDate)
            .select_from(ps.join(item, item.c.ItemKey == ps.c.ItemKey)
                         .outerjoin(whse, whse.c.WhseKey == ps.c.WhseKey))
            .where(item.c.CompanyID == bindparam("company_id"), ps.c.CurrID == bindparam("currency"),
                   ps.c.EffectiveDate <= bindparam("now"), item.c.ItemID.in_(bindparam("item_ids", expanding=True)))
            .order_by(item.c.ItemID, ps.c.EffectiveDate.desc()))


@statement()
def order_hold():
    """Hold and HoldReason of the Sage order written for an Amazon order."""
    x, so = s.tsoSalesOrderExt_AMZ, s.tsoSalesOrder
    return (select(so.c.Hold, so.c.HoldReason).select_from(x.join(so, so.c.SOKey == x.c.SOKey))
            .where(x.c.AmazonOrderId == bindparam("amazon_order_id")))


def quantities(bind: Engine | Connection, company_id: str, item_ids: Iterable[str], *, days: int,
               now: datetime | None = None, limit: int = HISTORY_LIMIT) -> dict[str, list[Decimal]]:
    """ItemID -> units per earlier Sage order of the last ``days`` days, newest first (at most ``limit``)."""
    wanted = sorted(set(item_ids))
    if not wanted:
        return {}
    since = (now or datetime.now(timezone.utc)) - timedelta(days=days)
    params = {"company_id": company_id, "since": s.sage_time(since), "item_ids": wanted}
    found: dict[str, list[Decimal]] = {}
    for row in _rows(bind, item_order_quantities(), params):
        seen = found.setdefault(row.ItemID, [])
        if len(seen) < limit:
            seen.append(Decimal(row.Qty))
    return found


def list_prices(bind: Engine | Connection, company_id: str, currency: str, item_ids: Iterable[str], *,
                warehouse_id: str | None = None, now: datetime | None = None) -> dict[str, Decimal]:
    """ItemID -> ListPrice in force: the warehouse's own sheet when it has one, else the newest of any sheet."""
    wanted = sorted(set(item_ids))
    if not wanted or not currency:
        return {}
    params = {"company_id": company_id, "currency": currency, "now": s.sage_time(now), "item_ids": wanted}
    own: dict[str, Decimal] = {}
    other: dict[str, Decimal] = {}
    for row in _rows(bind, item_list_prices(), params):
        if row.ListPrice is None:
            continue
        if warehouse_id is not None and row.WhseID == warehouse_id:
            own.setdefault(row.ItemID, Decimal(row.ListPrice))
        other.setdefault(row.ItemID, Decimal(row.ListPrice))
    return {**other, **own}


def hold(bind: Engine | Connection, amazon_order_id: str) -> tuple[bool, str | None] | None:
    """(on hold, HoldReason) of the Sage order of ``amazon_order_id``; None when Sage has no such order."""
    rows = _rows(bind, order_hold(), {"amazon_order_id": amazon_order_id})
    return (bool(rows[0].Hold), rows[0].HoldReason) if rows else None


def _rows(bind: Engine | Connection, query, params: dict) -> list:
    try:
        if isinstance(bind, Connection):
            return list(bind.execute(query, params))
        with bind.connect() as conn:
            return list(conn.execute(query, params))
    except (sa_exc.OperationalError, sa_exc.InterfaceError) as exc:
        name = query.get_execution_options().get("sage_sql")
        raise SageUnavailable(f"Sage database unavailable while reading {name}: {type(exc.orig).__name__}: "
                              f"{exc.orig}") from exc
