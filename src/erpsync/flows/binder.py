"""Binder: which Sage sales order is this Amazon order, and where does erpsync stand with it.

The Sage extension table ``tsoSalesOrderExt_AMZ`` (AmazonOrderId, unique) is the truth about what Sage holds; the
state store says what erpsync did: the order journal (received → writing → written → shipped → confirmed, or
skipped, voided, failed), which Amazon state of the order Sage has applied (a per-order cursor), and whether an
``apply_order`` of it is in flight. Flows ask here instead of reading either directly. The amazon queue's jobs use
a binder without a gateway: they never read Sage.
"""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal
from typing import TYPE_CHECKING

from erpsync import mapping
from erpsync.sage500.draft import WrittenOrder
from erpsync.sage500.gateway import Sage500Gateway, SalesOrder

if TYPE_CHECKING:
    from erpsync.runtime.store import Cursor, JournalEntry, Store

SO_STATUS = {1: "open", 3: "canceled", 4: "closed"}  # tsoSalesOrder.Status
NEVER = datetime.min.replace(tzinfo=timezone.utc)


def apply_key(amazon_order_id: str) -> str:
    """The identity key of the one ``apply_order`` of an order: two jobs never change it in Sage at once."""
    return f"apply_order:{amazon_order_id}"


class Binder:
    def __init__(self, store: Store, gateway: Sage500Gateway | None = None):
        self.store, self._gateway = store, gateway

    @property
    def gateway(self) -> Sage500Gateway:
        if self._gateway is None:
            raise RuntimeError("this binder has no Sage gateway: the amazon queue's jobs never read Sage")
        return self._gateway

    # Amazon order -> Sage ----------------------------------------------------------------------------------------

    def to_internal(self, amazon_order_id: str) -> SalesOrder | None:
        """The Sage sales order written for ``amazon_order_id`` (via the extension table), or None."""
        return self.gateway.order_by_amazon_id(amazon_order_id)

    def in_flight(self, amazon_order_id: str) -> str | None:
        """The key of the ``apply_order`` of this order when one is queued, scheduled or running."""
        key = apply_key(amazon_order_id)
        return key if self.store.job_key_get(key) is not None else None

    def pending_state(self, amazon_order_id: str) -> datetime | None:
        """The LastUpdateDate of the order as the pending ``apply_order`` carries it (None: none is pending)."""
        pending = self.store.job_key_get(apply_key(amazon_order_id))
        try:
            return datetime.fromisoformat(pending.message["payload"]["order"]["last_update_date"])
        except (AttributeError, KeyError, TypeError, ValueError):
            return None

    # journal -----------------------------------------------------------------------------------------------------

    def journal(self, amazon_order_id: str) -> JournalEntry | None:
        return self.store.journal_get(amazon_order_id)

    def bind(self, written: WrittenOrder, *, audit: tuple[str, dict] | list[tuple[str, dict]] | None = None) -> bool:
        """Record that ``written`` is the Sage order of its Amazon order (a later 'shipped' or 'confirmed' stays),
        with its ``audit`` row (event, detail), or rows, in the same transaction."""
        return self.store.journal_set(written.AmazonOrderId, "written", so_key=written.SOKey,
                                      tran_no=written.TranNo,
                                      only_from={None, "received", "writing", "skipped", "failed", "written"},
                                      audit=audit)

    def applied(self, amazon_order_id: str) -> datetime:
        """Amazon's LastUpdateDate of the newest state of the order Sage has applied (``NEVER`` before the first):
        a state read again (a repeated notification, the sync window's overlap) is nothing new for Sage."""
        return self._applied(amazon_order_id).last_value or NEVER

    def mark_applied(self, amazon_order_id: str, last_update: datetime) -> None:
        """Sage has applied (or refused, see its dead letter) the order as Amazon reported it at ``last_update``."""
        self._applied(amazon_order_id, read=False).commit(last_update)

    def _applied(self, amazon_order_id: str, *, read: bool = True) -> Cursor[datetime]:
        return self.store.cursor(f"orders.applied:{amazon_order_id}", initial=NEVER, read=read)


def state_of(order: SalesOrder) -> mapping.SageOrderState:
    """What :func:`mapping.order_action` needs to know of the Sage order."""
    return mapping.SageOrderState(
        status=SO_STATUS.get(order.Status, "open"),  # type: ignore[arg-type]
        quantity_open=sum((line.QtyOpenToShip for line in order.lines), Decimal(0)),
        quantity_shipped=sum((line.QtyShip for line in order.lines), Decimal(0)),
        on_hold=bool(order.Hold))
