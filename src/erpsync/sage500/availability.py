"""The Sage items stock and prices are published for: ItemID, ItemType (kits are told apart), status and the item
fields ``[mapping] attributes`` can send to Amazon. Availability itself is the gateway's ``stock_levels``.

Statements are registered in :mod:`erpsync.sage500.sql`'s registry (``@statement``), so the dialect test compiles
each one for SQL Server and parses it as T-SQL.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from sqlalchemy import Engine, and_, bindparam, select
from sqlalchemy import exc as sa_exc

from erpsync.errors import SageUnavailable
from erpsync.sage500 import schema as s
from erpsync.sage500.sql import statement

ITEM_ACTIVE = 1
# Item fields [mapping] attributes may name: the columns confirmed in Sage 500 (../reference/sage500.md §3).
ITEM_FIELDS = ("ItemID", "ShortDesc", "LongDesc")


@dataclass(frozen=True)
class SageItem:
    item_id: str
    item_type: int
    active: bool
    fields: dict[str, str | None] = field(default_factory=dict)


@statement()
def item_catalog():
    """Every item of the company with its type, status and (US English) descriptions."""
    i, d = s.timItem, s.timItemDescription
    return (select(i.c.ItemID, i.c.ItemType, i.c.Status, d.c.ShortDesc, d.c.LongDesc)
            .select_from(i.outerjoin(d, and_(d.c.ItemKey == i.c.ItemKey, d.c.LanguageID == 1033)))
            .where(i.c.CompanyID == bindparam("company_id"))
            .order_by(i.c.ItemID))


@contextmanager
def reading(what: str) -> Iterator[None]:
    """A database that cannot be reached is a retryable :class:`SageUnavailable` naming what was being read."""
    try:
        yield
    except (sa_exc.OperationalError, sa_exc.InterfaceError) as exc:
        raise SageUnavailable(f"Sage 500 unreachable while reading {what}: {type(exc.orig).__name__}") from exc


def items(engine: Engine, company_id: str) -> list[SageItem]:
    with reading("the item catalog"), engine.connect() as conn:
        return [SageItem(r.ItemID, int(r.ItemType), r.Status == ITEM_ACTIVE,
                         {"ItemID": r.ItemID, "ShortDesc": r.ShortDesc, "LongDesc": r.LongDesc})
                for r in conn.execute(item_catalog(), {"company_id": company_id})]
