"""V2 settlement flat files (``GET_V2_SETTLEMENT_REPORT_DATA_FLAT_FILE_V2``), read as a stream.

:func:`parse` takes the file's lines (any iterable of ``str``: an open file, ``text.splitlines()``) and returns the
settlement's :class:`Summary` (the first data row) and an iterator over its amount :class:`Row` s, one line at a time,
so a million-row file is never held in memory. Columns are found by header name: extra columns are ignored, a
missing required one is an error naming it. Amounts may use a decimal comma (``95,00``) and dates may be day-first
(``31.01.2026``), as EU marketplaces write them (spapi-notes §7.1).

Anything that does not read as a settlement file — a missing column, a summary row that is not first, an amount that
is not a number, a row of another settlement, amounts that do not add up to ``total-amount`` — raises
:class:`SettlementFormatChanged` (permanent): "settlement format changed: <what>, <where>". The check that the
amounts add up runs when the iterator is exhausted, so a consumer must read it to the end before acting on it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import NamedTuple

from erpsync.errors import Permanent

ZERO = Decimal("0")

# The columns the journal needs; the other documented ones (merchant-order-id, order-item-code, ...) are optional.
REQUIRED = (
    "settlement-id", "settlement-start-date", "settlement-end-date", "deposit-date", "total-amount", "currency",
    "transaction-type", "order-id", "amount-type", "amount-description", "amount", "fulfillment-id", "posted-date",
)
OPTIONAL = ("adjustment-id", "shipment-id", "marketplace-name", "sku", "quantity-purchased", "posted-date-time")


class SettlementFormatChanged(Permanent):
    """The file does not read as a V2 settlement flat file; nothing is posted."""

    code = "settlement_format"

    def __init__(self, what: str, where: str, *, record: str | None = None):
        super().__init__(f"settlement format changed: {what}, {where}; nothing posted. Check the file against "
                         f"docs/settlements.md; if Amazon changed the layout, erpsync needs an update",
                         record=record)


@dataclass(frozen=True)
class Summary:
    """The first data row: the settlement and its deposit."""

    settlement_id: str
    start: datetime
    end: datetime
    deposit_date: datetime | None
    total_amount: Decimal  # the payout, negative when the seller owes Amazon
    currency: str


class Row(NamedTuple):
    """One amount of the settlement. ``number`` is the file's line number (the header is line 1)."""

    number: int
    transaction_type: str
    amount_type: str
    amount_description: str
    amount: Decimal
    order_id: str  # empty on rows that are not about an order
    fulfillment_id: str  # AFN | MFN | empty
    posted_date: date
    sku: str
    adjustment_id: str
    shipment_id: str


_NUMBER = re.compile(r"[+-]?\d+(?:[.,]\d+)?")
_GROUPED = re.compile(r"[+-]?\d{1,3}(?:([.,])\d{3})+(?:([.,])\d+)?")
_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})|(\d{1,2})([./])(\d{1,2})\5(\d{4})")
_TIME = re.compile(r"[ T](\d{1,2}):(\d{2})(?::(\d{2}))?(?:\.\d+)?\s*(UTC|GMT|Z|[+-]\d{2}:?\d{2})?$")


def parse_amount(text: str) -> Decimal:
    """``1234.56``, ``-1234,56``, ``1,234.56`` or ``1.234,56`` as a Decimal; ValueError otherwise."""
    if _NUMBER.fullmatch(text):
        return Decimal(text.replace(",", "."))
    grouped = _GROUPED.fullmatch(text)
    if grouped and grouped.group(1) != grouped.group(2):
        return Decimal(text.replace(grouped.group(1), "").replace(",", "."))
    raise ValueError(f"{text!r} is not an amount")


def parse_date(text: str, *, day_first: bool = True) -> datetime:
    """A settlement timestamp: ``2026-03-01 08:00:00 UTC``, ``2026-03-01T08:00:00+00:00``, ``01.03.2026 08:00:00
    UTC``, ``01.03.2026`` or ``01/03/2026`` (slashes read day-first unless ``day_first`` is False). No zone: UTC."""
    match = _DATE.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a date")
    if match.group(1):
        year, month, day = int(match.group(1)), int(match.group(2)), int(match.group(3))
    else:
        first, second, year = int(match.group(4)), int(match.group(6)), int(match.group(7))
        day, month = (first, second) if match.group(5) == "." or day_first else (second, first)
    rest = text[match.end():]
    hour = minute = second_ = 0
    zone = timezone.utc
    if rest.strip():
        clock = _TIME.match(rest)
        if not clock:
            raise ValueError(f"{text!r} has an unreadable time {rest.strip()!r}")
        hour, minute, second_ = int(clock.group(1)), int(clock.group(2)), int(clock.group(3) or 0)
        offset = clock.group(4)
        if offset and offset[0] in "+-":
            digits = offset[1:].replace(":", "")
            delta = timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
            zone = timezone(-delta if offset[0] == "-" else delta)
    return datetime(year, month, day, hour, minute, second_, tzinfo=zone).astimezone(timezone.utc)


class _Columns:
    def __init__(self, header: list[str], source: str):
        self.names = [name.strip().lower() for name in header]
        if self.names and self.names[0].startswith("\ufeff"):
            self.names[0] = self.names[0][1:]
        missing = [c for c in REQUIRED if c not in self.names]
        if missing:
            raise SettlementFormatChanged(
                f"required column{'s' if len(missing) > 1 else ''} {', '.join(repr(c) for c in missing)} missing",
                f"in the header (line 1 of {source}: {len(self.names)} columns: {', '.join(self.names[:30])})")
        repeated = sorted({n for n in self.names if n and self.names.count(n) > 1})
        if repeated:
            raise SettlementFormatChanged(f"column(s) {', '.join(map(repr, repeated))} appear twice",
                                          f"in the header (line 1 of {source})")
        self.index = {name: i for i, name in enumerate(self.names)}


def parse(lines: Iterable[str], *, source: str = "settlement file", day_first: bool | None = None
          ) -> tuple[Summary, Iterator[Row]]:
    """The summary (read at once) and the amount rows (read as the iterator is consumed).

    ``day_first`` decides slash dates (``01/03/2026``); None: day-first unless the currency is USD or CAD."""
    stream = iter(lines)
    header = next(stream, None)
    if header is None or not header.strip():
        raise SettlementFormatChanged("the file is empty", f"in {source}")
    columns = _Columns(header.rstrip("\r\n").split("\t"), source)
    width = len(columns.names)
    first = next(stream, None)
    if first is None:
        raise SettlementFormatChanged("no summary row", f"line 2 of {source}")
    summary_fields = _fields(first, width, 2, source)
    summary = _summary(summary_fields, columns, source, day_first)
    return summary, _rows(stream, columns, width, summary, source,
                          day_first if day_first is not None else summary.currency not in ("USD", "CAD"))


def _fields(line: str, width: int, number: int, source: str) -> list[str]:
    fields = line.rstrip("\r\n").split("\t")
    if len(fields) != width:
        if len(fields) < width and not any(f.strip() for f in fields[width:]):
            fields += [""] * (width - len(fields))  # trailing empty fields dropped by an editor
        else:
            raise SettlementFormatChanged(f"{len(fields)} fields where the header has {width}",
                                          f"line {number} of {source}")
    return fields


def _summary(fields: list[str], columns: _Columns, source: str, day_first: bool | None) -> Summary:
    get = {name: fields[i].strip() for name, i in columns.index.items()}
    where = f"summary row (line 2) of {source}"
    if get["transaction-type"] or get["amount"] or not get["total-amount"]:
        raise SettlementFormatChanged("the first data row is not the settlement summary (total-amount empty or "
                                      "transaction columns filled)", where)
    if not get["settlement-id"]:
        raise SettlementFormatChanged("settlement-id is empty", where)
    currency = get["currency"]
    if not re.fullmatch(r"[A-Z]{3}", currency):
        raise SettlementFormatChanged(f"currency {currency!r} is not an ISO 4217 code", where)
    slash_day_first = day_first if day_first is not None else currency not in ("USD", "CAD")
    try:
        total = parse_amount(get["total-amount"])
        start = parse_date(get["settlement-start-date"], day_first=slash_day_first)
        end = parse_date(get["settlement-end-date"], day_first=slash_day_first)
        deposit = parse_date(get["deposit-date"], day_first=slash_day_first) if get["deposit-date"] else None
    except ValueError as exc:
        raise SettlementFormatChanged(str(exc), where, record=get["settlement-id"]) from None
    return Summary(get["settlement-id"], start, end, deposit, total, currency)


def _rows(stream: Iterator[str], columns: _Columns, width: int, summary: Summary, source: str,
          day_first: bool) -> Iterator[Row]:
    ix = columns.index
    i_sid, i_tt, i_at, i_ad, i_amt = ix["settlement-id"], ix["transaction-type"], ix["amount-type"], \
        ix["amount-description"], ix["amount"]
    i_oid, i_fid, i_pd, i_total = ix["order-id"], ix["fulfillment-id"], ix["posted-date"], ix["total-amount"]
    optional = {name: ix.get(name) for name in OPTIONAL}
    i_sku, i_adj, i_ship = optional["sku"], optional["adjustment-id"], optional["shipment-id"]
    sid = summary.settlement_id
    dates: dict[str, date] = {}
    amounts: dict[str, Decimal] = {}
    decimal_mark: str | None = None
    total = ZERO
    number = 2
    for line in stream:
        number += 1
        if not line.strip():
            continue
        fields = line.rstrip("\r\n").split("\t")
        if len(fields) != width:
            fields = _fields(line, width, number, source)
        where = f"line {number} of {source}"
        if fields[i_sid] != sid:
            raise SettlementFormatChanged(f"settlement-id {fields[i_sid]!r} differs from the summary's {sid!r}",
                                          where, record=sid)
        if fields[i_total]:
            raise SettlementFormatChanged("a second summary row (total-amount filled)", where, record=sid)
        text = fields[i_amt]
        amount = amounts.get(text)
        if amount is None:
            try:
                amount = parse_amount(text)
            except ValueError:
                raise SettlementFormatChanged(f"amount {text!r} is not a number", where, record=sid) from None
            mark = "," if "," in text[-3:] else "." if "." in text[-3:] else None
            if mark and decimal_mark and mark != decimal_mark and not _GROUPED.fullmatch(text):
                raise SettlementFormatChanged(f"amount {text!r} uses {mark!r} as its decimal mark where earlier "
                                              f"amounts use {decimal_mark!r}", where, record=sid)
            decimal_mark = decimal_mark or mark
            if len(amounts) < 100_000:
                amounts[text] = amount
        posted_text = fields[i_pd]
        posted = dates.get(posted_text)
        if posted is None:
            try:
                posted = parse_date(posted_text, day_first=day_first).date() if posted_text else None
            except ValueError as exc:
                raise SettlementFormatChanged(f"posted-date: {exc}", where, record=sid) from None
            if posted is None:
                raise SettlementFormatChanged("posted-date is empty", where, record=sid)
            dates[posted_text] = posted
        transaction_type = fields[i_tt]
        if not transaction_type or not fields[i_at]:
            raise SettlementFormatChanged("transaction-type or amount-type is empty", where, record=sid)
        total += amount
        yield Row(number, transaction_type, fields[i_at], fields[i_ad], amount, fields[i_oid], fields[i_fid],
                  posted, fields[i_sku] if i_sku is not None else "", fields[i_adj] if i_adj is not None else "",
                  fields[i_ship] if i_ship is not None else "")
    if total != summary.total_amount:
        raise SettlementFormatChanged(
            f"the amounts add up to {total} {summary.currency} but total-amount is {summary.total_amount} "
            f"(difference {summary.total_amount - total}; a truncated file?)", f"settlement {sid} in {source}",
            record=sid)


def read_all(lines: Iterable[str], **kw) -> tuple[Summary, list[Row]]:
    """:func:`parse` read to the end (small files, tests)."""
    summary, rows = parse(lines, **kw)
    return summary, list(rows)
