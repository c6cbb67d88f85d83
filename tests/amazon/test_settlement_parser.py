"""The settlement flat-file parser (pure): files the sandbox writes in the US and EU formats and with its format
change (extra column, swapped columns), hand-made edge files, and the errors for files that are not settlements."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from erpsync.amazon.settlement import SettlementFormatChanged, parse, parse_amount, parse_date, read_all
from erpsync.sandbox import settlement as sandbox
from erpsync.sandbox.world import MoneyEvent

START = datetime(2026, 3, 20, 8, 0, tzinfo=timezone.utc)
END = START + timedelta(days=14)
US = "ATVPDKIKX0DER"


def _events() -> list[MoneyEvent]:
    line = dict(order_id="112-0000001-0000001", shipment_id="D1", fulfillment_id="MFN", sku="SKU-1", quantity=2)
    at = START + timedelta(days=2)
    return [MoneyEvent(at, "Order", "ItemPrice", "Principal", Decimal("1039.98"), "USD", US, **line),
            MoneyEvent(at, "Order", "ItemFees", "Commission", Decimal("-156.00"), "USD", US, **line),
            MoneyEvent(at, "Refund", "ItemPrice", "Principal", Decimal("-19.99"), "USD", US, adjustment_id="R1",
                       order_id=line["order_id"], fulfillment_id="MFN")]


def _file(fmt: sandbox.FileFormat = sandbox.US_FORMAT, events=None) -> str:
    booked = sandbox.period_events(sandbox.PeriodCharges(subscription=Decimal("39.99"), current_reserve=Decimal("5"),
                                                         previous_reserve=Decimal("2.50")), END, "USD", US)
    s = sandbox.Settlement("12345678901", START, END, END + timedelta(days=2), "USD", "Amazon.com",
                           tuple((_events() if events is None else events) + booked))
    return sandbox.render(s, fmt)


@pytest.mark.parametrize("fmt", [sandbox.US_FORMAT, sandbox.EU_FORMAT, sandbox.changed(sandbox.US_FORMAT),
                                 sandbox.changed(sandbox.EU_FORMAT)], ids=["US", "EU", "US-changed", "EU-changed"])
def test_sandbox_formats_read_the_same(fmt):
    summary, rows = read_all(_file(fmt).splitlines())
    assert summary.settlement_id == "12345678901" and summary.currency == "USD"
    assert summary.total_amount == Decimal("1039.98") - Decimal("156.00") - Decimal("19.99") - Decimal("39.99") \
        - Decimal("5") + Decimal("2.50")
    assert summary.start == START and summary.end == END and summary.deposit_date == END + timedelta(days=2)
    assert [r.amount for r in rows][:3] == [Decimal("1039.98"), Decimal("-156.00"), Decimal("-19.99")]
    assert rows[0].posted_date == date(2026, 3, 22) and rows[0].order_id == "112-0000001-0000001"
    assert rows[0].fulfillment_id == "MFN" and rows[0].number == 3
    period = [r for r in rows if r.transaction_type == "other-transaction"]
    assert {r.amount_description for r in period} == {"Current Reserve Amount", "Previous Reserve Amount Balance"}
    assert all(r.order_id == "" for r in period)  # empty order-id on non-order rows


def test_eu_file_has_decimal_commas_and_day_first_dates():
    text = _file(sandbox.EU_FORMAT)
    assert "1039,98" in text and "22.03.2026" in text
    assert read_all(text.splitlines()) == read_all(_file().splitlines())


def test_missing_required_column_is_named():
    lines = _file().splitlines()
    header = lines[0].split("\t")
    drop = header.index("posted-date")
    cut = ["\t".join(f for i, f in enumerate(line.split("\t")) if i != drop) for line in lines]
    with pytest.raises(SettlementFormatChanged, match="settlement format changed: required column 'posted-date' "
                                                      "missing, in the header"):
        parse(cut)


def test_extra_column_is_accepted():
    lines = _file().splitlines()
    extended = [lines[0] + "\tnew-column"] + [line + "\tsomething" for line in lines[1:]]
    assert read_all(extended) == read_all(lines)


@pytest.mark.parametrize("change, message", [
    (lambda ls: ls[:1] + ls[2:3] + ls[1:2] + ls[3:], "the first data row is not the settlement summary"),
    (lambda ls: ls[:3] + [ls[3].replace("-156.00", "n/a")] + ls[4:], "amount 'n/a' is not a number, line 4"),
    (lambda ls: ls[:-1], "the amounts add up to"),
    (lambda ls: ls[:3] + [ls[3].replace("12345678901", "99999999999", 1)] + ls[4:],
     "settlement-id '99999999999' differs"),
    (lambda ls: ls[:3] + [ls[3] + "\textra"] + ls[4:], "25 fields where the header has 24, line 4"),
    (lambda ls: ls[:3] + [ls[3].replace("2026-03-22\t", "22nd March\t")] + ls[4:], "posted-date"),
    (lambda ls: [], "the file is empty"),
    (lambda ls: ls[:1], "no summary row"),
])
def test_format_changes_are_permanent_and_say_where(change, message):
    with pytest.raises(SettlementFormatChanged) as error:
        read_all(change(_file().splitlines()))
    assert str(error.value).startswith("settlement format changed: ") and message in str(error.value)
    assert error.value.code == "settlement_format"


def test_rows_stream_one_line_at_a_time():
    """The parser pulls lines as rows are consumed: a million-row file is never held in memory."""
    pulled = []

    def lines():
        for line in _file().splitlines():
            pulled.append(line)
            yield line

    _, rows = parse(lines())
    assert len(pulled) == 2
    next(rows)
    assert len(pulled) == 3


def test_negative_total():
    events = [MoneyEvent(START + timedelta(days=1), "ServiceFee", "Cost of Advertising", "TransactionTotalAmount",
                         Decimal("-250.00"), "USD", US)]
    summary, rows = read_all(_file(events=events).splitlines())
    assert summary.total_amount < 0 and summary.total_amount == sum(r.amount for r in rows)


@pytest.mark.parametrize("text, value", [("95,00", "95.00"), ("-1234.56", "-1234.56"), ("1.234,56", "1234.56"),
                                         ("1,234.56", "1234.56"), ("-0,01", "-0.01"), ("7", "7")])
def test_amounts(text, value):
    assert parse_amount(text) == Decimal(value)


@pytest.mark.parametrize("text", ["", "1.2.3", "NaN", "Infinity", "1e5", "12,34,56", "- 5"])
def test_not_amounts(text):
    with pytest.raises(ValueError):
        parse_amount(text)


@pytest.mark.parametrize("text, expected", [
    ("2026-03-01 08:00:00 UTC", datetime(2026, 3, 1, 8, tzinfo=timezone.utc)),
    ("2026-03-01T08:00:00+01:00", datetime(2026, 3, 1, 7, tzinfo=timezone.utc)),
    ("01.03.2026 08:00:00 UTC", datetime(2026, 3, 1, 8, tzinfo=timezone.utc)),
    ("31.03.2026", datetime(2026, 3, 31, tzinfo=timezone.utc)),
    ("2026-03-31", datetime(2026, 3, 31, tzinfo=timezone.utc)),
])
def test_dates(text, expected):
    assert parse_date(text) == expected


def test_slash_dates_follow_the_day_first_choice():
    assert parse_date("02/03/2026", day_first=True).date() == date(2026, 3, 2)
    assert parse_date("02/03/2026", day_first=False).date() == date(2026, 2, 3)


@settings(max_examples=60, deadline=None)
@given(amounts=st.lists(st.decimals(min_value=Decimal("-99999.99"), max_value=Decimal("99999.99"), places=2),
                        min_size=1, max_size=30),
       eu=st.booleans())
def test_any_amounts_round_trip_to_the_cent(amounts, eu):
    events = [MoneyEvent(START + timedelta(days=i % 14), "Order", "ItemPrice", "Principal", a, "USD", US,
                         order_id=f"112-{i:07d}-0000001", fulfillment_id="AFN") for i, a in enumerate(amounts)]
    summary, rows = read_all(_file(sandbox.EU_FORMAT if eu else sandbox.US_FORMAT, events).splitlines())
    assert [r.amount for r in rows][:len(amounts)] == amounts
    assert summary.total_amount == sum(r.amount for r in rows)
