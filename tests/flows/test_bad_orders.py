"""Orders no real seller has, end to end: the sandbox holds an order with a negative price, one for a billion units,
one whose ship-to address holds a NUL; the webhook, the workers and the replica run for real. Each becomes a dead
letter naming the order and the field, and nothing reaches Sage, while a sound order beside them is written."""

from __future__ import annotations

from decimal import Decimal

import pytest


def _reprice(world, order_id: str, unit: str, quantity: int) -> None:
    """Make the order's only item ``quantity`` × ``unit``, nothing else charged, every total consistent."""
    with world.lock:
        order = world.orders[order_id]
        [item] = order["orderItems"]
        currency = item["product"]["price"]["unitPrice"]["currencyCode"]
        total = {"amount": str(Decimal(unit) * quantity), "currencyCode": currency}
        item["quantityOrdered"] = quantity
        item["fulfillment"]["quantityUnfulfilled"] = quantity
        item["product"]["price"]["unitPrice"] = {"amount": unit, "currencyCode": currency}
        item["proceeds"] = {"proceedsTotal": total, "breakdowns": [{"type": "ITEM", "subtotal": total}]}
        order["proceeds"] = {"grandTotal": total, "breakdowns": [{"type": "ITEM", "subtotal": total}]}
        order["payment"]["paymentExecutions"][0]["paymentAmount"] = total


def _address_with_nul(world, order_id: str) -> None:
    with world.lock:
        address = world.orders[order_id]["recipient"]["deliveryAddress"]
        address["addressLine1"] = address["addressLine1"] + "\x00"


@pytest.mark.parametrize("spoil, job, error, says", [
    (lambda world, oid: _reprice(world, oid, "-5.00", 2), "import_order", "UnreadableOrder",
     "unit_price is negative (-5.00 USD)"),
    (lambda world, oid: _reprice(world, oid, "1.00", 1_000_000_000), "apply_order", "InvalidData",
     "is for 1000000000 units, more than [orders] max_line_quantity = 10000"),
    (_address_with_nul, "import_order", "UnreadableOrder", "ship_to.line1 holds a control character"),
])
def test_an_impossible_order_is_one_dead_letter_and_never_reaches_sage(pipeline, webhook, spoil, job, error, says):
    """Untranslatable on Amazon's side (import_order: UnreadableOrder, an InvalidData carrying the order's state)
    or refused before Sage (apply_order: InvalidData): one dead letter naming the order and the field."""
    good, bad = pipeline.generate(2, seed=47, multi_line_share=0)
    spoil(pipeline.sandbox.world, bad)  # before any worker reads it
    with pipeline.workers():
        pipeline.wait_journal([good], "written")
        pipeline.wait(lambda: pipeline.runtime.store.dead_letters.list(), what="a dead letter")
        assert pipeline.runtime.drain(30), pipeline.describe()
    letters = pipeline.runtime.store.dead_letters.list()  # one per state of the order Amazon notified
    assert {(dead.job, dead.error_class, dead.record) for dead in letters} == {(job, error, bad)}
    for dead in letters:
        assert f"order {bad}" in dead.message and says in dead.message, dead.message
        assert "\x00" not in dead.message
    assert pipeline.sage_rows(bad) == (0, 0) and pipeline.sage_rows(good) == (1, 1)
