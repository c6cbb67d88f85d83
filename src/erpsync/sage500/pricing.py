"""Prices from a Sage 500 price sheet (``timPriceSheet``: ListPrice or Sheet2Price … Sheet4Price), effective now,
per item, in one currency, for one warehouse's sheet (or the first warehouse that prices the item)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import Engine, and_, bindparam, func, select

from erpsync.sage500 import schema as s
from erpsync.sage500.availability import reading
from erpsync.sage500.sql import statement

SHEETS = ("ListPrice", "Sheet2Price", "Sheet3Price", "Sheet4Price")


@statement()
def sheet_prices(sheet: str = "ListPrice", by_warehouse: bool = True):
    """The ``sheet`` price effective at ``now`` per item (and warehouse), latest EffectiveDate first."""
    if sheet not in SHEETS:
        raise ValueError(f"price sheet column {sheet!r}; expected one of {', '.join(SHEETS)}")
    ps, i, w = s.timPriceSheet, s.timItem, s.timWarehouse
    latest = (select(ps.c.ItemKey, ps.c.WhseKey, func.max(ps.c.EffectiveDate).label("EffectiveDate"))
              .where(ps.c.CurrID == bindparam("currency"), ps.c.EffectiveDate <= bindparam("now"))
              .group_by(ps.c.ItemKey, ps.c.WhseKey).subquery("latest"))
    query = (select(i.c.ItemID, ps.c[sheet].label("Price"))
             .select_from(ps.join(latest, and_(latest.c.ItemKey == ps.c.ItemKey, latest.c.WhseKey == ps.c.WhseKey,
                                               latest.c.EffectiveDate == ps.c.EffectiveDate))
                          .join(i, i.c.ItemKey == ps.c.ItemKey)
                          .outerjoin(w, w.c.WhseKey == ps.c.WhseKey))
             .where(ps.c.CurrID == bindparam("currency"), i.c.CompanyID == bindparam("company_id"))
             .order_by(i.c.ItemID, ps.c.WhseKey))
    if by_warehouse:
        query = query.where(w.c.WhseID == bindparam("whse_id"))
    return query


def prices(engine: Engine, company_id: str, currency: str, *, sheet: str = "ListPrice", whse_id: str | None = None,
           at: datetime | None = None) -> dict[str, Decimal]:
    """The sheet price per ItemID (items without one, or with an empty or zero price, are absent)."""
    params = {"company_id": company_id, "currency": currency, "now": s.sage_time(at), "whse_id": whse_id}
    found: dict[str, Decimal] = {}
    with reading(f"price sheet {sheet} ({currency})"), engine.connect() as conn:
        for row in conn.execute(sheet_prices(sheet, whse_id is not None), params):
            if row.Price is not None and row.Price > 0:
                found.setdefault(row.ItemID, Decimal(row.Price))
    return found
