"""Binder: which Sage sales order is this Amazon order, and where does erpsync stand with it.

The Sage extension table ``tsoSalesOrderExt_AMZ`` (AmazonOrderId, unique) is the truth about what Sage holds; the
state store's order journal says what erpsync did (received → writing → written → shipped → confirmed, or skipped,
voided, failed) and which job is in flight. Flows ask here instead of reading either directly.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

from erpsync import mapping
from erpsync.sage500.draft import WrittenOrder
from erpsync.sage500.gateway import Sage500Gateway, SalesOrder

if TYPE_CHECKING:
    from erpsync.runtime.store import JournalEntry, Store

SO_STATUS = {1: "open", 3: "canceled", 4: "closed"}  # tsoSalesOrder.Status


def write_key(amazon_order_id: str) -> str:
    return f"write_order:{amazon_order_id}"


def void_key(amazon_order_id: str) -> str:
    return f"void_order:{amazon_order_id}"


class Binder:
    def __init__(self, store: Store, gateway: Sage500Gateway):
        self.store, self.gateway = store, gateway

    # Amazon order -> Sage ----------------------------------------------------------------------------------------

    def to_internal(self, amazon_order_id: str) -> SalesOrder | None:
        """The Sage sales order written for ``amazon_order_id`` (via the extension table), or None."""
        return self.gateway.order_by_amazon_id(amazon_order_id)

    def sage_state(self, amazon_order_id: str) -> mapping.SageOrderState | None:
        """What :func:`mapping.order_action` needs to know of the Sage order; None when Sage has none."""
        order = self.to_internal(amazon_order_id)
        return None if order is None else state_of(order)

    def in_flight(self, amazon_order_id: str) -> str | None:
        """The key of a write or void of this order that is queued, scheduled or running, if any."""
        for key in (write_key(amazon_order_id), void_key(amazon_order_id)):
            if self.store.job_key_get(key) is not None:
                return key
        return None

    # journal -----------------------------------------------------------------------------------------------------

    def journal(self, amazon_order_id: str) -> JournalEntry | None:
        return self.store.journal_get(amazon_order_id)

    def bind(self, written: WrittenOrder) -> None:
        """Record that ``written`` is the Sage order of its Amazon order (a later 'shipped' or 'confirmed' stays)."""
        self.store.journal_set(written.AmazonOrderId, "written", so_key=written.SOKey, tran_no=written.TranNo,
                               only_from={None, "received", "writing", "skipped", "failed", "written"})


def state_of(order: SalesOrder) -> mapping.SageOrderState:
    return mapping.SageOrderState(
        status=SO_STATUS.get(order.Status, "open"),  # type: ignore[arg-type]
        quantity_open=sum((line.QtyOpenToShip for line in order.lines), Decimal(0)),
        quantity_shipped=sum((line.QtyShip for line in order.lines), Decimal(0)),
        on_hold=bool(order.Hold))
