"""Reports API 2021-06-30 (spapi-notes §7): report registry, settlement reports, the all-orders report.

* Settlement reports (``GET_V2_SETTLEMENT_REPORT_DATA_FLAT_FILE_V2``) cannot be requested, as on Amazon. They are
  made by :func:`close_settlement` (also ``POST /_sandbox/settlements``), and for every 14-day period of sandbox
  time that has passed (periods start when the world starts; they are closed when a Reports operation next
  runs). A settlement holds the period's ledger events of one marketplace plus the period charges of
  :func:`period_charges`; the fault switches pick the file format (``settlement_locale`` "EU" or a DE
  marketplace: decimal comma and dd.mm.yyyy; ``settlement_format_change``: extra column, swapped columns).
* ``GET_FLAT_FILE_ALL_ORDERS_DATA_BY_LAST_UPDATE_GENERAL`` can be requested: IN_QUEUE → IN_PROGRESS → DONE in
  sandbox time (CANCELLED when no order was updated in the range), one row per order item.

Report records in ``world.reports`` are dicts: the ``Report`` fields (times as datetimes) plus private keys
starting with ``_``. Documents are served by ``documents.py`` (gzip-compressed from 16 KiB).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, Field

from erpsync.sandbox import documents, query, settlement
from erpsync.sandbox.core import Caller, cancel_queued, existing, invalid_input, operation, world_of
from erpsync.sandbox.notifications import V0_STATUS
from erpsync.sandbox.orders import components
from erpsync.sandbox.world import Marketplace, World, cents, iso

router = APIRouter(tags=["reports"])
API = "/reports/2021-06-30"

SETTLEMENT = "GET_V2_SETTLEMENT_REPORT_DATA_FLAT_FILE_V2"
ALL_ORDERS = "GET_FLAT_FILE_ALL_ORDERS_DATA_BY_LAST_UPDATE_GENERAL"
MERCHANT_LISTINGS = "GET_MERCHANT_LISTINGS_ALL_DATA"
SETTLEMENT_PERIOD = timedelta(days=14)
DEPOSIT_DELAY = timedelta(days=2)
QUEUE_SECONDS = 10
PROCESSING_SECONDS = 20
DEFAULT_RANGE = timedelta(days=30)  # dataStartTime when only dataEndTime (or nothing) is given
DOCUMENT_CONTENT_TYPE = "text/plain; charset=UTF-8"

# Period charges (positive; settlement.py applies the sign).
SUBSCRIPTION_FEE = Decimal("39.99")  # Professional selling plan, monthly
ADVERTISING_RATE = Decimal("0.04")  # of the period's principal
STORAGE_PER_UNIT = Decimal("0.05")  # monthly, per unit stored at Amazon
INBOUND_PER_UNIT = Decimal("0.30")
RESERVE_RATE = Decimal("0.10")  # of the last 7 days' order proceeds, held back
REIMBURSEMENT_CHANCE = 0.5
REIMBURSEMENT_RATE = Decimal("0.80")  # of the listing price

ALL_ORDERS_COLUMNS = (
    "amazon-order-id", "merchant-order-id", "purchase-date", "last-updated-date", "order-status",
    "fulfillment-channel", "sales-channel", "order-channel", "ship-service-level", "product-name", "sku", "asin",
    "item-status", "quantity", "currency", "item-price", "item-tax", "shipping-price", "shipping-tax",
    "gift-wrap-price", "gift-wrap-tax", "item-promotion-discount", "ship-promotion-discount", "ship-city",
    "ship-state", "ship-postal-code", "ship-country", "promotion-ids", "is-business-order", "purchase-order-number",
    "price-designation",
)


# The All Listings Report, Amazon's "Inventory reports attributes" page, in that order (tab-separated).
MERCHANT_LISTINGS_COLUMNS = (
    "item-name", "item-description", "listing-id", "seller-sku", "price", "quantity", "open-date", "image-url",
    "item-is-marketplace", "product-id-type", "zshop-shipping-fee", "item-note", "item-condition", "zshop-category1",
    "zshop-browse-path", "zshop-storefront-feature", "asin1", "asin2", "asin3", "will-ship-internationally",
    "expedited-shipping", "zshop-boldface", "product-id", "bid-for-featured-placement", "add-delete",
    "pending-quantity", "fulfillment-channel", "merchant-shipping-group", "status",
)
CONDITION_CODES = {"new_new": "11", "used_like_new": "1", "used_very_good": "2", "used_good": "3",
                   "used_acceptable": "4", "collectible_like_new": "5", "refurbished_refurbished": "10"}


def merchant_listings_file(listings: list[Any], currency: str) -> str | None:
    """GET_MERCHANT_LISTINGS_ALL_DATA over the seller's listings of ``currency`` (active and inactive): one row per
    SKU; an Amazon-fulfilled listing has no quantity (Amazon counts it: FBA inventory) and its channel in
    ``fulfillment-channel``. None when the seller has no listing."""
    rows = []
    for listing in sorted(listings, key=lambda item: item.sku):
        if listing.currency != currency:
            continue
        seller_fulfilled = listing.fulfillment_channel == "DEFAULT"
        opened = listing.created or listing.updated
        values = {
            "item-name": listing.title, "listing-id": listing.asin[-10:] + listing.sku[-4:],
            "seller-sku": listing.sku, "price": f"{cents(listing.price):f}",
            "quantity": str(listing.quantity) if seller_fulfilled else "",
            "open-date": opened.strftime("%Y-%m-%d %H:%M:%S PST") if opened else "",
            "item-is-marketplace": "y", "product-id-type": "1",
            "item-condition": CONDITION_CODES.get(listing.condition, "11"), "asin1": listing.asin,
            "will-ship-internationally": "1", "product-id": listing.asin, "pending-quantity": "0",
            "fulfillment-channel": listing.fulfillment_channel,
            "merchant-shipping-group": "Migrated Template" if seller_fulfilled else "",
            "status": "Active" if "BUYABLE" in listing.status else "Inactive",
        }
        rows.append("\t".join(str(values.get(c, "")).replace("\t", " ") for c in MERCHANT_LISTINGS_COLUMNS))
    if not rows:
        return None
    return "\t".join(MERCHANT_LISTINGS_COLUMNS) + "\n" + "\n".join(rows) + "\n"


def report_view(report: dict[str, Any]) -> dict[str, Any]:
    """The ``Report`` object of the model."""
    view: dict[str, Any] = {"reportId": report["reportId"], "reportType": report["reportType"],
                            "marketplaceIds": list(report["marketplaceIds"])}
    for name in ("dataStartTime", "dataEndTime", "createdTime", "processingStartTime", "processingEndTime"):
        if report.get(name):
            view[name] = iso(report[name])
    view["processingStatus"] = report["processingStatus"]
    if report.get("reportDocumentId"):
        view["reportDocumentId"] = report["reportDocumentId"]
    return view


def _new_report(world: World, report_type: str, marketplace_ids: list[str], start: datetime, end: datetime,
                created: datetime, seller_id: str | None) -> dict[str, Any]:
    report_id = world.next_id(11)
    report = {"reportId": report_id, "reportType": report_type, "marketplaceIds": marketplace_ids,
              "dataStartTime": start, "dataEndTime": end, "createdTime": created, "processingStatus": "IN_QUEUE",
              "processingStartTime": None, "processingEndTime": None, "reportDocumentId": None,
              "_sellerId": seller_id}
    world.reports[report_id] = report
    return report


# --- settlements ---------------------------------------------------------------------------------------------


def _month_starts(start: datetime, end: datetime) -> bool:
    """Whether the first instant of a month lies in (start, end]."""
    first = (start.replace(day=1, hour=0, minute=0, second=0, microsecond=0) + timedelta(days=32)).replace(day=1)
    return first <= end


def period_charges(world: World, marketplace: Marketplace, events: list[Any], start: datetime, end: datetime,
                   first: bool, previous_reserve: Decimal) -> settlement.PeriodCharges:
    """The seller-level money Amazon books at the end of a period, from the period's activity and FBA stock."""
    principal = sum((e.amount for e in events if (e.transaction_type, e.amount_type, e.amount_description)
                     == ("Order", "ItemPrice", "Principal")), Decimal("0"))
    recent = sum((e.amount for e in events if e.transaction_type == "Order" and e.posted > end - timedelta(days=7)),
                 Decimal("0"))
    stocked = [listing for listing in world.listings.values()
               if listing.fulfillment_channel != "DEFAULT" and listing.currency == marketplace.currency]
    units = sum(listing.quantity for listing in stocked)
    monthly = first or _month_starts(start, end)
    reimbursements: tuple[settlement.Reimbursement, ...] = ()
    inbound: tuple[settlement.InboundShipment, ...] = ()
    if stocked and world.rng.random() < REIMBURSEMENT_CHANCE:
        listing = world.rng.choice(sorted(stocked, key=lambda item: item.sku))
        reimbursements = (settlement.Reimbursement(listing.sku, 1, cents(listing.price * REIMBURSEMENT_RATE),
                                                   world.rng.choice(("WAREHOUSE_DAMAGE", "WAREHOUSE_LOST")),
                                                   f"RB{world.next_id(9)}"),)
    if units:
        inbound = (settlement.InboundShipment(f"FBA15{world.next_id(7)}", INBOUND_PER_UNIT * min(units, 100)),)
    return settlement.PeriodCharges(
        advertising=cents(principal * ADVERTISING_RATE) if principal > 0 else Decimal("0"),
        subscription=SUBSCRIPTION_FEE if monthly else Decimal("0"),
        storage=cents(units * STORAGE_PER_UNIT) if monthly else Decimal("0"),
        current_reserve=cents(recent * RESERVE_RATE) if recent > 0 else Decimal("0"),
        previous_reserve=previous_reserve, reimbursements=reimbursements, inbound_shipments=inbound)


def _settlements(world: World, marketplace_id: str) -> list[dict[str, Any]]:
    return sorted((r for r in world.reports.values()
                   if r["reportType"] == SETTLEMENT and r["marketplaceIds"] == [marketplace_id]),
                  key=lambda r: r["dataEndTime"])


def close_settlement(world: World, marketplace_id: str | None = None, end: datetime | None = None, *,
                     locale: str | None = None, format_change: bool | None = None) -> str:
    """Close the open settlement period of ``marketplace_id`` (default: the seller's first marketplace) at ``end``
    (default: now): book its period charges, write the flat file, register the DONE report. Returns its reportId.
    ``locale`` ("US"/"EU") and ``format_change`` choose this file's format (default: the fault switches)."""
    with world.lock:
        marketplace_id = marketplace_id or next(iter(world.marketplaces))
        marketplace = world.marketplaces.get(marketplace_id)
        if marketplace is None:
            raise invalid_input(f"Marketplace {marketplace_id!r} is not a marketplace of this seller.")
        end = end or world.now()
        earlier = _settlements(world, marketplace_id)
        start = earlier[-1]["dataEndTime"] if earlier else world.clock.start
        if end <= start:
            raise invalid_input(f"The settlement period of {marketplace_id} starts at {iso(start)}; close it later.")
        events = [e for e in world.ledger if e.marketplace_id == marketplace_id and start < e.posted <= end]
        previous = earlier[-1]["_reserve"] if earlier else Decimal("0")
        charges = period_charges(world, marketplace, events, start, end, not earlier, previous)
        booked = settlement.period_events(charges, end, marketplace.currency, marketplace_id)
        world.record(booked)
        period = settlement.Settlement(world.next_id(11), start, end, end + DEPOSIT_DELAY, marketplace.currency,
                                       marketplace.settlement_name, tuple(events + booked))
        eu = (locale or world.faults.settlement_locale) == "EU" or (locale is None and marketplace.country == "DE")
        fmt = settlement.EU_FORMAT if eu else settlement.US_FORMAT
        if world.faults.settlement_format_change if format_change is None else format_change:
            fmt = settlement.changed(fmt)
        document = documents.create(world, "report", DOCUMENT_CONTENT_TYPE,
                                    settlement.render(period, fmt).encode("utf-8"))
        report = _new_report(world, SETTLEMENT, [marketplace_id], start, end, end, world.seller_id)
        report.update(processingStatus="DONE", processingStartTime=end, processingEndTime=end,
                      reportDocumentId=document["id"], _settlementId=period.settlement_id,
                      _reserve=charges.current_reserve, _total=period.total)
        return report["reportId"]


def catch_up(world: World) -> None:
    """Close every 14-day settlement period that has fully passed, for each marketplace with money activity."""
    with world.lock:
        now = world.now()
        active = {e.marketplace_id for e in world.ledger} | {next(iter(world.marketplaces))}
        for marketplace_id in sorted(active):
            while True:
                earlier = _settlements(world, marketplace_id)
                start = earlier[-1]["dataEndTime"] if earlier else world.clock.start
                if start + SETTLEMENT_PERIOD > now:
                    break
                close_settlement(world, marketplace_id, start + SETTLEMENT_PERIOD)


# --- the all-orders report -----------------------------------------------------------------------------------


def _amount(value: Decimal) -> str:
    return f"{cents(value):f}"


def all_orders_file(orders: list[dict[str, Any]], marketplace_ids: list[str], start: datetime,
                    end: datetime) -> str | None:
    """The tab-separated all-orders file for orders last updated in [start, end]; None when there are none."""
    lines = []
    chosen = [o for o in orders if o["salesChannel"]["marketplaceId"] in marketplace_ids
              and start <= datetime.fromisoformat(o["lastUpdatedTime"].replace("Z", "+00:00")) <= end]
    for order in sorted(chosen, key=lambda o: o["lastUpdatedTime"]):
        status = order["fulfillment"]["fulfillmentStatus"]
        address = (order.get("recipient") or {}).get("deliveryAddress") or {}
        business = "AMAZON_BUSINESS" in order.get("programs", [])
        for item in order["orderItems"]:
            money = components(item)
            fulfilled = item["fulfillment"]["quantityUnfulfilled"] == 0
            promotions = [p["promotionId"] for p in (item.get("promotion") or {}).get("breakdowns", [])
                          if p.get("promotionId")]
            values = {
                "amazon-order-id": order["orderId"],
                "purchase-date": order["createdTime"].replace("Z", "+00:00"),
                "last-updated-date": order["lastUpdatedTime"].replace("Z", "+00:00"),
                "order-status": "Cancelled" if status == "CANCELLED" else V0_STATUS.get(status, status.title()),
                "fulfillment-channel": "Amazon" if order["fulfillment"]["fulfilledBy"] == "AMAZON" else "Merchant",
                "sales-channel": order["salesChannel"].get("marketplaceName", ""),
                "ship-service-level": order["fulfillment"].get("fulfillmentServiceLevel", "").replace("_", " ")
                .title(),
                "product-name": item["product"].get("title", ""),
                "sku": item["product"]["sellerSku"],
                "asin": item["product"].get("asin", ""),
                "item-status": "Cancelled" if status == "CANCELLED" else ("Shipped" if fulfilled else "Unshipped"),
                "quantity": str(item["quantityOrdered"]),
                "currency": item["product"]["price"]["unitPrice"]["currencyCode"],
                "item-price": _amount(money["item"]),
                "item-tax": _amount(money["item_tax"] - money["discount_tax"]),
                "shipping-price": _amount(money["shipping"]),
                "shipping-tax": _amount(money["shipping_tax"]),
                "gift-wrap-price": _amount(money["gift_wrap"]),
                "gift-wrap-tax": _amount(money["gift_wrap_tax"]),
                "item-promotion-discount": _amount(-money["promo_item"]),
                "ship-promotion-discount": _amount(-money["promo_shipping"]),
                "ship-city": address.get("city", ""),
                "ship-state": address.get("stateOrRegion", ""),
                "ship-postal-code": address.get("postalCode", ""),
                "ship-country": address.get("countryCode", ""),
                "promotion-ids": ",".join(promotions),
                "is-business-order": "true" if business else "false",
                "purchase-order-number": (order.get("buyer") or {}).get("buyerPurchaseOrderNumber", ""),
                "price-designation": "BusinessPrice" if business else "",
            }
            lines.append("\t".join(str(values.get(c, "")).replace("\t", " ") for c in ALL_ORDERS_COLUMNS))
    if not lines:
        return None
    return "\t".join(ALL_ORDERS_COLUMNS) + "\n" + "\n".join(lines) + "\n"


def advance(world: World) -> None:
    """Move requested reports along at the current sandbox time (a world ticker; runs under ``world.lock``)."""
    with world.lock:
        now = world.now()
        for report in world.reports.values():
            if report["processingStatus"] == "IN_QUEUE":
                started = report["createdTime"] + timedelta(seconds=QUEUE_SECONDS)
                if now < started:
                    continue
                report["processingStatus"], report["processingStartTime"] = "IN_PROGRESS", started
            if report["processingStatus"] != "IN_PROGRESS":
                continue
            ended = report["processingStartTime"] + timedelta(seconds=PROCESSING_SECONDS)
            if now < ended:
                continue
            if report["reportType"] == MERCHANT_LISTINGS:
                marketplace = world.marketplaces[report["marketplaceIds"][0]]
                content = merchant_listings_file(list(world.listings.values()), marketplace.currency)
            else:
                content = all_orders_file(list(world.orders.values()), report["marketplaceIds"],
                                          report["dataStartTime"], report["dataEndTime"])
            report["processingEndTime"] = ended
            if content is None:
                report["processingStatus"] = "CANCELLED"
                continue
            document = documents.create(world, "report", DOCUMENT_CONTENT_TYPE, content.encode("utf-8"))
            report.update(processingStatus="DONE", reportDocumentId=document["id"])


def _ensure_ticker(world: World) -> None:
    with world.lock:
        if advance not in world.tickers:
            world.tickers.append(advance)


# --- routes --------------------------------------------------------------------------------------------------


class CreateReportSpecification(BaseModel):
    reportType: str = Field(min_length=1)
    marketplaceIds: list[str] = Field(min_length=1, max_length=25)
    dataStartTime: datetime | None = None
    dataEndTime: datetime | None = None
    reportOptions: dict[str, str] | None = None


@router.post(f"{API}/reports", status_code=202)
def create_report(spec: CreateReportSpecification, request: Request,
                  caller: Caller = Depends(operation("createReport"))) -> dict[str, str]:
    world = world_of(request)
    if spec.reportType == SETTLEMENT:
        raise invalid_input(f"Report type {SETTLEMENT} cannot be requested: Amazon makes settlement reports at the "
                            f"end of each settlement period; find them with getReports?reportTypes={SETTLEMENT}.")
    if spec.reportType not in (ALL_ORDERS, MERCHANT_LISTINGS):
        raise invalid_input(f"reportType {spec.reportType!r} is not supported by the sandbox; it makes {ALL_ORDERS} "
                            f"and {MERCHANT_LISTINGS} on request and {SETTLEMENT} by itself.")
    query.known_marketplaces(world, "marketplaceIds", spec.marketplaceIds)
    now = world.now()
    end = query.parse_time(spec.dataEndTime.isoformat(), "dataEndTime") if spec.dataEndTime else now
    start = query.parse_time(spec.dataStartTime.isoformat(), "dataStartTime") if spec.dataStartTime \
        else end - DEFAULT_RANGE
    if end > now or start > now:
        raise invalid_input("dataStartTime and dataEndTime must not be in the future.")
    if start > end:
        raise invalid_input("dataStartTime must be before dataEndTime.")
    with world.lock:
        report = _new_report(world, spec.reportType, spec.marketplaceIds, start, end, now, caller.seller_id)
    _ensure_ticker(world)
    return {"reportId": report["reportId"]}


@router.get(f"{API}/reports")
def get_reports(request: Request, caller: Caller = Depends(operation("getReports"))) -> dict[str, Any]:
    world = world_of(request)
    catch_up(world)
    return query.created_page(request, world, "report", world.reports, report_view)


@router.get(f"{API}/reports/{{reportId}}")
def get_report(reportId: str, request: Request, caller: Caller = Depends(operation("getReport"))) -> dict[str, Any]:
    world = world_of(request)
    catch_up(world)
    with world.lock:
        return report_view(existing(world.reports, reportId, "Report"))


@router.delete(f"{API}/reports/{{reportId}}")
def cancel_report(reportId: str, request: Request, caller: Caller = Depends(operation("cancelReport"))) -> Response:
    world = world_of(request)
    with world.lock:
        cancel_queued(existing(world.reports, reportId, "Report"), "Report", reportId)
    return Response(status_code=200)


@router.get(f"{API}/documents/{{reportDocumentId}}")
def get_report_document(reportDocumentId: str, request: Request,
                        caller: Caller = Depends(operation("getReportDocument"))) -> dict[str, str]:
    world = world_of(request)
    catch_up(world)
    document = existing(world.report_documents, reportDocumentId, "Report document")
    return documents.download_view(request, document, "reportDocumentId")


class CloseSettlement(BaseModel):
    marketplaceId: str | None = None
    locale: Literal["US", "EU"] | None = None  # this file's number and date format (default: the fault switch)
    formatChange: bool | None = None  # this file with an extra column and two columns swapped


@router.post("/_sandbox/settlements", status_code=201, tags=["sandbox control"])
def post_settlement(request: Request, body: CloseSettlement | None = None) -> dict[str, Any]:
    """Scenario control: close the open settlement period now and publish its V2 flat file."""
    world = world_of(request)
    with world.lock:
        body = body or CloseSettlement()
        report = world.reports[close_settlement(world, body.marketplaceId, locale=body.locale,
                                                format_change=body.formatChange)]
        return {"reportId": report["reportId"], "reportDocumentId": report["reportDocumentId"],
                "settlementId": report["_settlementId"], "totalAmount": str(report["_total"]),
                "dataStartTime": iso(report["dataStartTime"]), "dataEndTime": iso(report["dataEndTime"])}
