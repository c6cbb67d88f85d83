"""Settlement flat files (pure): layout, amounts that add up to the deposit to the cent, US and EU formats, the
format-change variant that only a by-name parser survives, and the signs of the period charges."""

from __future__ import annotations

import csv
import io
import re
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from erpsync.sandbox import settlement
from erpsync.sandbox.orders import item_charges
from erpsync.sandbox.scenario import GenerateOrders, generate_orders
from erpsync.sandbox.world import MoneyEvent, World

START = datetime(2026, 3, 1, 8, 0, tzinfo=timezone.utc)
END = START + timedelta(days=14)
US = "ATVPDKIKX0DER"


def _event(kind: tuple[str, str, str], amount: str, **extra) -> MoneyEvent:
    return MoneyEvent(START + timedelta(days=2, hours=3), *kind, Decimal(amount), "USD", US, **extra)


def _order_events() -> list[MoneyEvent]:
    line = dict(order_id="112-0000001-0000001", shipment_id="D123456789", fulfillment_id="AFN",
                order_item_code="11112222333344", sku="SKU-1", quantity=2)
    return [_event(("Order", "ItemPrice", "Principal"), "39.98", **line),
            _event(("Order", "ItemPrice", "Tax"), "3.30", **line),
            _event(("Order", "ItemWithheldTax", "MarketplaceFacilitatorTax-Principal"), "-3.30", **line),
            _event(("Order", "Promotion", "Principal"), "-4.00", **line),
            _event(("Order", "ItemFees", "Commission"), "-5.40", **line),
            _event(("Order", "ItemFees", "FBAPerUnitFulfillmentFee"), "-6.44", **line),
            _event(("Refund", "ItemPrice", "Principal"), "-19.99", adjustment_id="R1", **{
                k: v for k, v in line.items() if k != "shipment_id"}),
            _event(("Refund", "ItemFees", "RefundCommission"), "-0.54", adjustment_id="R1", order_id=line["order_id"])]


def _charges() -> settlement.PeriodCharges:
    return settlement.PeriodCharges(
        advertising=Decimal("12.34"), subscription=Decimal("39.99"), storage=Decimal("3.10"),
        current_reserve=Decimal("25.00"), previous_reserve=Decimal("20.00"),
        reimbursements=(settlement.Reimbursement("SKU-1", 1, Decimal("15.99"), "WAREHOUSE_LOST", "RB1"),),
        inbound_shipments=(settlement.InboundShipment("FBA15ABCD1234", Decimal("7.50")),))


def _settlement(events=None) -> settlement.Settlement:
    events = _order_events() if events is None else events
    booked = settlement.period_events(_charges(), END, "USD", US)
    return settlement.Settlement("12345678901", START, END, END + timedelta(days=2), "USD", "Amazon.com",
                                 tuple(events + booked))


def _parse(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text), delimiter="\t"))


def _decimal(text: str, comma: bool) -> Decimal:
    return Decimal(text.replace(",", ".") if comma else text)


def test_us_file_has_the_documented_columns_a_summary_row_and_adds_up():
    period = _settlement()
    text = settlement.render(period)
    header = text.splitlines()[0].split("\t")
    assert header == list(settlement.COLUMNS) + ["promotion-id"] and len(settlement.COLUMNS) == 23
    rows = _parse(text)
    summary, lines = rows[0], rows[1:]
    assert summary["settlement-id"] == "12345678901" and summary["currency"] == "USD"
    assert summary["settlement-start-date"] == "2026-03-01 08:00:00 UTC"
    assert summary["settlement-end-date"] == "2026-03-15 08:00:00 UTC"
    assert summary["deposit-date"] == "2026-03-17 08:00:00 UTC"
    assert all(summary[c] == "" for c in settlement.COLUMNS[6:])  # transaction columns are empty
    assert all(line["total-amount"] == "" and line["deposit-date"] == "" for line in lines)
    assert len(lines) == len(period.events)
    total = sum(Decimal(line["amount"]) for line in lines)
    assert total == Decimal(summary["total-amount"]) == period.total
    # 39.98+3.30-3.30-4.00-5.40-6.44-19.99-0.54 -12.34-39.99-3.10-7.50+15.99+20.00-25.00
    assert total == Decimal("-48.33")
    first = lines[0]
    assert (first["transaction-type"], first["amount-type"], first["amount-description"]) == \
        ("Order", "ItemPrice", "Principal")
    assert first["posted-date"] == "2026-03-03" and first["posted-date-time"] == "2026-03-03 11:00:00 UTC"
    assert first["shipment-id"] == "D123456789" and first["fulfillment-id"] == "AFN"
    assert first["quantity-purchased"] == "2" and first["marketplace-name"] == "Amazon.com"


def test_period_charges_carry_amazons_signs_and_ids():
    lines = _parse(settlement.render(_settlement(events=[])))[1:]
    by_description = {line["amount-description"]: line for line in lines}
    assert by_description["TransactionTotalAmount"]["amount-type"] == "Cost of Advertising"
    assert by_description["TransactionTotalAmount"]["amount"] == "-12.34"
    assert by_description["Subscription Fee"]["amount"] == "-39.99"
    assert by_description["Storage Fee"]["amount"] == "-3.10"
    inbound = by_description["FBAInboundTransportationFee"]
    assert inbound["order-id"] == "FBA15ABCD1234" == inbound["shipment-id"] and inbound["amount"] == "-7.50"
    lost = by_description["WAREHOUSE_LOST"]
    assert (lost["amount-type"], lost["sku"], lost["amount"], lost["adjustment-id"]) == \
        ("FBA Inventory Reimbursement", "SKU-1", "15.99", "RB1")
    assert by_description["Current Reserve Amount"]["amount"] == "-25.00"
    assert by_description["Previous Reserve Amount Balance"]["amount"] == "20.00"
    kinds = {(line["transaction-type"], line["amount-type"], line["amount-description"]) for line in lines}
    assert kinds <= settlement.PERIOD_KINDS


def test_eu_format_writes_decimal_commas_and_day_first_dates():
    period = _settlement()
    rows = _parse(settlement.render(period, settlement.EU_FORMAT))
    summary, lines = rows[0], rows[1:]
    assert summary["settlement-start-date"] == "01.03.2026 08:00:00 UTC"
    assert summary["total-amount"] == "-48,33"
    assert lines[0]["posted-date"] == "03.03.2026" and lines[0]["amount"] == "39,98"
    assert not any("." in line["amount"] for line in lines)
    assert sum(_decimal(line["amount"], True) for line in lines) == _decimal(summary["total-amount"], True)


def test_format_change_adds_a_column_and_swaps_two_so_only_reading_by_name_works():
    changed = settlement.changed(settlement.EU_FORMAT)
    text = settlement.render(_settlement(), changed)
    header = text.splitlines()[0].split("\t")
    assert settlement.EXTRA_COLUMN in header and len(header) == 25
    assert header.index("amount") == settlement.COLUMNS.index("amount-description")
    rows = _parse(text)
    total = sum(_decimal(line["amount"], True) for line in rows[1:])
    assert total == _decimal(rows[0]["total-amount"], True)
    positional = [line.split("\t")[settlement.COLUMNS.index("amount")] for line in text.splitlines()[2:]]
    assert "Principal" in positional  # a parser that reads column 15 gets descriptions, not amounts


@settings(max_examples=60, deadline=None)
@given(st.lists(st.decimals(min_value=Decimal("-5000"), max_value=Decimal("5000"), places=2), max_size=40),
       st.booleans())
def test_amounts_always_add_up_to_the_total_to_the_cent(amounts, eu):
    events = [_event(("Order", "ItemPrice", "Principal"), str(amount), order_id=f"O{i}")
              for i, amount in enumerate(amounts)]
    fmt = settlement.EU_FORMAT if eu else settlement.US_FORMAT
    rows = _parse(settlement.render(_settlement(events), fmt))
    total = _decimal(rows[0]["total-amount"], eu)
    assert sum((_decimal(line["amount"], eu) for line in rows[1:]), Decimal("0")) == total
    assert total == sum(amounts, Decimal("0")) - Decimal("51.94")  # plus the period charges of _charges()


def test_text_fields_cannot_break_the_tab_separated_layout():
    event = _event(("Order", "ItemPrice", "Principal"), "1.00", sku="BAD\tSKU\nX")
    rows = _parse(settlement.render(_settlement([event])))
    assert rows[1]["sku"] == "BAD SKU X" and len(rows) == 1 + 1 + len(settlement.period_events(_charges(), END,
                                                                                               "USD", US))


def test_the_documented_settlement_triples_are_exactly_those_the_sandbox_books():
    """docs/sandbox.md §7 is what the settlement-to-GL mapping is written from: it must list every triple."""
    world = World.create(seed=9)
    booked = set(settlement.PERIOD_KINDS)
    for marketplace, count in ((US, 200), ("A1PA6795UKMFR9", 20)):
        generate_orders(world, GenerateOrders(count=count, status="UNSHIPPED", marketplace_id=marketplace, seed=9,
                                              afn_share=0.4, prime_share=0.3, promotion_share=0.5, gift_share=0.4))
    for order in world.orders.values():
        for item in order["orderItems"]:
            for refund in (False, True):
                booked |= {(e.transaction_type, e.amount_type, e.amount_description)
                           for e in item_charges(world, order, item, refund=refund)}
    docs = (Path(__file__).resolve().parents[2] / "docs" / "sandbox.md").read_text(encoding="utf-8")
    section = docs[docs.index("## 7. Settlement amounts"):]
    documented = set(re.findall(r"^\| (Order|Refund|ServiceFee|other-transaction) \| ([^|]+?) \| ([^|]+?) \|",
                                section, flags=re.MULTILINE))
    assert documented == booked, (f"booked, not documented: {sorted(booked - documented)}; "
                                  f"documented, never booked: {sorted(documented - booked)}")
