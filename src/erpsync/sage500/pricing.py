"""Prices from a Sage 500 price sheet (``timPriceSheet``: ListPrice or Sheet2Price … Sheet4Price), effective now,
per item, in one currency, for one warehouse's sheet (or the first warehouse that prices the item)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import Engine

from erpsync.sage500 import schema as s
from erpsync.sage500 import sql
from erpsync.sage500.availability import reading


def prices(engine: Engine, company_id: str, currency: str, *, sheet: str = "ListPrice", whse_id: str | None = None,
           at: datetime | None = None) -> dict[str, Decimal]:
    """The sheet price per ItemID (items without one, or with an empty or zero price, are absent). ``at``: an
    aware instant, or a naive one already on Sage's clock (``gateway.clock.to_sage()``, as EffectiveDate is)."""
    params = {"company_id": company_id, "currency": currency, "now": s.sage_time(at), "whse_id": whse_id}
    found: dict[str, Decimal] = {}
    with reading(f"price sheet {sheet} ({currency})"), engine.connect() as conn:
        rows = conn.execute(sql.current_prices(whse_id is not None, sheet), params).all()
    for item_id, price in rows:  # per item, the first warehouse that prices it
        if item_id not in found and price is not None and price > 0:
            found[item_id] = Decimal(price)
    return found
