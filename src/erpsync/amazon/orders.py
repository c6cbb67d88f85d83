"""Orders: read with Orders API v2026-01-01 (searchOrders, getOrder); confirm shipments with Orders v0.

Reads come back canonical (:mod:`translate`). A search page keeps every order it could not translate as the
:class:`errors.InvalidData` that names it, so one bad order never hides the rest of its page.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING
from urllib.parse import quote

from erpsync import model
from erpsync.amazon import translate
from erpsync.errors import InvalidData

if TYPE_CHECKING:
    from erpsync.amazon.client import AmazonClient

BASE = "/orders/2026-01-01/orders"  # Amazon's model orders_2026-01-01.json; confirmShipment: ordersV0.json
# everything an ERP import needs, in one getOrder call (no Restricted Data Token with v2026)
INCLUDED_DATA = ("BUYER", "RECIPIENT", "PROCEEDS", "PROMOTION", "FULFILLMENT", "PACKAGES", "EXPENSE", "TAX",
                 "PAYMENT", "CANCELLATION")
STATUSES = frozenset({"PENDING_AVAILABILITY", "PENDING", "UNSHIPPED", "PARTIALLY_SHIPPED", "SHIPPED", "CANCELLED",
                      "UNFULFILLABLE"})


class UnreadableOrder(InvalidData):
    """Amazon sent an order erpsync cannot translate; ``last_update_date`` is the state it was in (None when even
    that cannot be read), so one state of the order makes one dead letter, however often it is read again."""

    def __init__(self, error: InvalidData, order_id: str | None, last_update_date: datetime | None):
        super().__init__(str(error), record=error.record or order_id)
        self.last_update_date = last_update_date


@dataclass(frozen=True)
class OrdersPage:
    """One searchOrders page. ``next_token`` resumes the search (None on the last page)."""

    orders: list[model.Order]
    rejected: list[UnreadableOrder] = field(default_factory=list)  # orders Amazon sent that cannot be translated
    next_token: str | None = None
    created_before: datetime | None = None
    last_updated_before: datetime | None = None


class Orders:
    def __init__(self, client: AmazonClient):
        self._client = client

    def search_orders(self, *, last_updated_after: datetime | None = None, created_after: datetime | None = None,
                      last_updated_before: datetime | None = None, created_before: datetime | None = None,
                      statuses: Iterable[str] = (), marketplace_ids: Iterable[str] | None = None,
                      fulfilled_by: str | None = None, page_size: int = 100,
                      included_data: Iterable[str] = INCLUDED_DATA,
                      pagination_token: str | None = None) -> Iterator[OrdersPage]:
        """Yield searchOrders pages (one call each, rate-limited) until Amazon has no next page.

        Exactly one of ``last_updated_after`` / ``created_after``; ``statuses`` are v2026 fulfillment statuses
        (``UNSHIPPED`` …); ``pagination_token`` resumes an interrupted search with the same filters.
        """
        if (last_updated_after is None) == (created_after is None):
            raise ValueError("searchOrders needs exactly one of last_updated_after and created_after")
        if not 1 <= page_size <= 100:
            raise ValueError(f"page_size must be 1..100, got {page_size}")
        unknown = set(statuses) - STATUSES
        if unknown:
            raise ValueError(f"unknown fulfillment statuses {sorted(unknown)}; use {sorted(STATUSES)}")
        params = {
            "marketplaceIds": list(marketplace_ids or self._client.marketplace_ids),
            "lastUpdatedAfter": last_updated_after, "createdAfter": created_after,
            "lastUpdatedBefore": last_updated_before, "createdBefore": created_before,
            "fulfillmentStatuses": list(statuses) or None, "fulfilledBy": fulfilled_by,
            "maxResultsPerPage": page_size, "includedData": list(included_data),
        }
        token = pagination_token
        while True:
            body = self._client.call("searchOrders", "GET", BASE, params={**params, "paginationToken": token}).body
            page = _page(body or {})
            yield page
            token = page.next_token
            if not token:
                return

    def get_order(self, order_id: str, included_data: Iterable[str] = INCLUDED_DATA) -> model.Order:
        """One order, items included, translated; :class:`InvalidData` names the order when it cannot be."""
        reply = self._client.call("getOrder", "GET", f"{BASE}/{quote(order_id, safe='')}",
                                  params={"includedData": list(included_data)})
        body = reply.body or {}
        if not isinstance(body.get("order"), dict):
            raise InvalidData(f"order {order_id}: getOrder answered without an order (request id "
                              f"{reply.request_id})", record=order_id)
        return _translated(body["order"])

    def confirm_shipment(self, order_id: str, marketplace_id: str, package: model.Package,
                         ship_date: datetime) -> str | None:
        """Confirm one package of an MFN order (Orders v0 confirmShipment; 204). Returns Amazon's request id."""
        body = translate.package_detail(package, marketplace_id, ship_date)
        reply = self._client.call("confirmShipment", "POST",
                                  f"/orders/v0/orders/{quote(order_id, safe='')}/shipmentConfirmation", body=body)
        return reply.request_id


def _page(body: dict) -> OrdersPage:
    orders, rejected = [], []
    for raw in body.get("orders") or ():
        try:
            orders.append(_translated(raw))
        except UnreadableOrder as exc:
            rejected.append(exc)
    pagination = body.get("pagination") or {}
    return OrdersPage(orders, rejected, pagination.get("nextToken") or None,
                      _maybe_time(body.get("createdBefore")), _maybe_time(body.get("lastUpdatedBefore")))


def _translated(raw: dict) -> model.Order:
    try:
        return translate.order_from_api(raw)
    except InvalidData as exc:
        order_id = raw.get("orderId") if isinstance(raw, dict) else None
        last = _maybe_time(raw.get("lastUpdatedTime")) if isinstance(raw, dict) else None
        raise UnreadableOrder(exc, order_id if isinstance(order_id, str) else None,
                              last if last is not None and last.tzinfo is not None else None) from None


def _maybe_time(value: object) -> datetime | None:
    try:
        return datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None
