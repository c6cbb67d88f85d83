"""The Sage items stock and prices are published for: ItemID, ItemType (kits are told apart), status and the item
fields ``[mapping] attributes`` sends to Amazon. Availability itself is the gateway's ``stock_levels``.

Item fields are the descriptions (``ShortDesc``, ``LongDesc`` of timItemDescription, confirmed in Sage 500) and any
column of the site's ``timItem`` — the user fields ``UserFld1``… that hold a shop's custom item data, or a weight
or UPC column the site keeps there. The columns of ``timItem`` are not all known in advance (which user fields exist
and what a site stores in them differ: ../reference/sage500.md §3, §12), so a name other than the descriptions is
looked up in the database's own ``timItem`` (:func:`item_columns`) and refused, named, when it is not there.

Statements are registered in :mod:`erpsync.sage500.sql`'s registry (``@statement``), so the dialect test compiles
each one for SQL Server and parses it as T-SQL.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import NamedTuple

from sqlalchemy import Engine, String, and_, bindparam, column, inspect, select
from sqlalchemy import exc as sa_exc

from erpsync.errors import ConfigError, SageUnavailable
from erpsync.sage500 import schema as s
from erpsync.sage500.sql import statement

ITEM_ACTIVE = 1
# Item fields read from timItemDescription (US English) and timItem whatever the site.
DESCRIPTION_FIELDS = ("ShortDesc", "LongDesc")
ITEM_FIELDS = ("ItemID", *DESCRIPTION_FIELDS)


class SageItem(NamedTuple):  # a tuple: a scan builds one per item (100,000 in a large catalogue)
    item_id: str
    item_type: int
    active: bool
    fields: dict[str, str | None]  # only the fields asked for


@statement()
def item_catalog(descriptions: bool = True, site_columns: tuple[str, ...] = ()):
    """Every item of the company with its type, status, with ``descriptions`` its (US English) ShortDesc and
    LongDesc, and ``site_columns`` of timItem (names as the database spells them, checked by
    :func:`item_columns`)."""
    i, d = s.timItem, s.timItemDescription
    extra = [column(name, String, _selectable=i) for name in site_columns]
    if not descriptions:
        return select(i.c.ItemID, i.c.ItemType, i.c.Status, *extra).where(i.c.CompanyID == bindparam("company_id"))
    return (select(i.c.ItemID, i.c.ItemType, i.c.Status, d.c.ShortDesc, d.c.LongDesc, *extra)
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


def item_columns(engine: Engine, names: list[str] | tuple[str, ...]) -> dict[str, str]:
    """Each of ``names`` (a field of ``[mapping] attributes``) → the timItem column that holds it, as the database
    spells it (case-insensitive: ``userfld1`` is ``UserFld1``); the descriptions and ItemID map to themselves. A
    name the site's timItem does not have is a :class:`ConfigError` naming it and the user fields there are."""
    wanted = [name for name in names if name not in ITEM_FIELDS]
    found = {name: name for name in names if name in ITEM_FIELDS}
    if not wanted:
        return found
    with reading("the columns of timItem"), engine.connect() as conn:
        have = {c["name"].casefold(): c["name"] for c in inspect(conn).get_columns(s.timItem.name)}
    missing = sorted(name for name in wanted if name.casefold() not in have)
    if missing:
        user = sorted(name for key, name in have.items() if key.startswith("userfld"))
        raise ConfigError(f"[mapping] attributes names Sage item field(s) {missing} that are not columns of timItem "
                          f"in this database; use {', '.join(DESCRIPTION_FIELDS)} or a timItem column"
                          + (f" (user fields here: {', '.join(user)})" if user else " (it has no UserFld columns)"))
    return found | {name: have[name.casefold()] for name in wanted}


def _text(value) -> str | None:
    """A field's value as the text Amazon is sent: trimmed (CHAR columns are padded); numbers without trailing
    zeros (a DECIMAL(15,5) weight of 1.50000 is "1.5"); empty is None (nothing is sent)."""
    if value is None:
        return None
    if isinstance(value, Decimal):
        value = format(value.normalize(), "f")
    text = str(value).strip()
    return text or None


def items(engine: Engine, company_id: str, fields: dict[str, str] | None = None) -> list[SageItem]:
    """Every item; ``fields`` (field name → column, from :func:`item_columns`) are read into ``SageItem.fields``."""
    fields = fields or {}
    descriptions = any(name in DESCRIPTION_FIELDS for name in fields)
    site = tuple(sorted({column_name for name, column_name in fields.items() if name not in ITEM_FIELDS}))
    first = 5 if descriptions else 3
    positions = {"ItemID": 0, "ShortDesc": 3, "LongDesc": 4} | {name: first + site.index(column_name)
                                                                 for name, column_name in fields.items()
                                                                 if name not in ITEM_FIELDS}
    wanted = [(name, positions[name]) for name in fields]
    with reading("the item catalog"), engine.connect() as conn:
        rows = conn.execute(item_catalog(descriptions, site), {"company_id": company_id}).all()
    if not wanted:
        return [SageItem(r[0], int(r[1]), r[2] == ITEM_ACTIVE, {}) for r in rows]
    return [SageItem(r[0], int(r[1]), r[2] == ITEM_ACTIVE, {name: _text(r[at]) for name, at in wanted})
            for r in rows]
