"""Shipments to Amazon: committed Sage shipments of Amazon orders become confirmShipment calls, one per package.

* ``scan_shipments`` (queue sage500, periodic) — reads shipments committed in Sage since the cursor
  ``shipments.ship_key``; one still pending (picked, not committed) is passed and remembered in
  ``shipments.pending``, and re-checked on its own by every later scan until it commits (or Sage deletes it).
  It marks the order 'shipped' and queues one ``confirm_shipment`` per package with everything Amazon needs: the
  cloud side never reads Sage.
  Quantities are summed per OrderItemId (the translator may split one Amazon item into two Sage lines).
* ``confirm_shipment`` (queue amazon) — confirms one package (Orders v0) unless it is recorded as confirmed, then
  records it once. The journal says 'confirmed' when the shipment that completed the Sage order is confirmed.
  Amazon refusing the package (a carrier code or tracking number it does not accept) is a dead letter that keeps
  Amazon's message.

Amazon's packageReferenceId must be unique within an order, and Sage numbers packages from 1 in every shipment:
the reference is the ShipKey followed by the package number on three digits (shipment 57, package 2 → "57002").
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from erpsync import errors, logs, mapping, model
from erpsync.config import MappingSettings
from erpsync.flows import connections
from erpsync.flows.binder import Binder
from erpsync.flows.jobs import JobContext, job
from erpsync.flows.orders import sage_outage
from erpsync.sage500.gateway import PackageRecord, ShipmentRecord

log = logs.get(__name__)

CURSOR = "shipments.ship_key"
PENDING = "shipments.pending"  # ShipKeys the cursor passed while pending (picked, not committed)


def confirm_key(ship_key: int, package_no: int) -> str:
    return f"confirm:{ship_key}:{package_no}"


def package_reference(ship_key: int, package_no: int) -> str:
    return f"{ship_key}{package_no:03d}"


@job("scan_shipments", queue="sage500")
def scan_shipments(ctx: JobContext) -> dict[str, int]:
    """Queue a confirmation for every package of every newly committed Sage shipment of an Amazon order: first
    those a previous scan passed while they were still pending (re-checked on their own), then forward from the
    cursor, which passes pending shipments after remembering them, so a pick never committed stops nothing."""
    store = ctx.store
    binder = Binder(store, connections.sage(ctx))
    cursor = store.cursor(CURSOR, initial=0)
    counts = {"shipments": 0, "packages": 0}
    position = cursor.last_value or 0
    pending = store.key_set(PENDING)
    with sage_outage(ctx):
        if pending:
            page = binder.gateway.shipments(pending)
            _queue_page(ctx, binder, page.records, counts)
            if set(page.pending) != pending:  # committed (queued just now) or deleted in Sage
                pending = set(page.pending)
                store.key_set_put(PENDING, pending)
        while True:
            page = binder.gateway.shipments_since(position)
            if page.cursor <= position:
                break
            _queue_page(ctx, binder, page.records, counts)
            if page.pending:
                pending |= set(page.pending)
                store.key_set_put(PENDING, pending)  # remembered before the cursor passes them
            cursor.commit(page.cursor)  # everything up to it is queued or remembered: durable
            position = page.cursor
    log.info("shipments.scanned", cursor=position, pending=len(pending), **counts)
    return counts


def _queue_page(ctx: JobContext, binder: Binder, records: list[ShipmentRecord], counts: dict[str, int]) -> None:
    if not records:
        return
    last = {record.AmazonOrderId: record.ShipKey for record in records}  # oldest first
    parked = {d.key for d in ctx.store.dead_letters.list("open", job="confirm_shipment", limit=100_000)}
    for record in records:
        counts["packages"] += _queue_confirmations(ctx, binder, record, parked,
                                                   last=last[record.AmazonOrderId] == record.ShipKey)
        counts["shipments"] += 1


def _queue_confirmations(ctx: JobContext, binder: Binder, record: ShipmentRecord, parked: set[str], *,
                         last: bool) -> int:
    """Queue the packages of one shipment not yet confirmed nor parked as a dead letter (a shipment can be read
    again while an older one is still pending); ``last``: no later shipment of its order is in this scan."""
    oid = record.AmazonOrderId
    order = binder.to_internal(oid)
    if order is not None and order.FulfillmentChannel == "AFN":
        return 0  # Amazon shipped it; nothing to confirm
    done = ctx.store.confirmed_packages(record.ShipKey)
    # this shipment completes the Sage order: once its packages are confirmed, the whole order is
    final = last and order is not None and all(line.QtyOpenToShip <= 0 for line in order.lines)
    ctx.store.journal_set(oid, "shipped", only_from={None, "received", "writing", "written", "shipped"})
    numbers = [package.PackageNo for package in record.packages]
    queued = 0
    for package in record.packages or (None,):
        number = package.PackageNo if package else 0
        if number in done or confirm_key(record.ShipKey, number) in parked:
            continue
        queued += ctx.enqueue(
            "confirm_shipment", key=confirm_key(record.ShipKey, number), amazon_order_id=oid,
            marketplace_id=record.MarketplaceId or (order.MarketplaceId if order else None),
            ship_key=record.ShipKey, package_no=number, ship_date=_ship_date(record).isoformat(),
            package=_package(record, package), final=final, packages=numbers)
    return queued


def _ship_date(record: ShipmentRecord) -> datetime:
    return record.ShipDate or model.utcnow()


def _package(record: ShipmentRecord, package: PackageRecord | None) -> dict | None:
    """What Sage says of the package (the carrier is mapped when it is confirmed, so a corrected [mapping]
    carriers applies to a replay), or None when Sage lacks what Amazon requires."""
    if package is None or not package.TrackingNo or not package.ShipMethID:
        return None
    quantities: dict[str, Decimal] = {}
    for line in package.lines:
        if line.OrderItemId:
            quantities[line.OrderItemId] = quantities.get(line.OrderItemId, Decimal(0)) + line.Qty
    if not quantities:
        return None
    return {"package_reference_id": package_reference(record.ShipKey, package.PackageNo),
            "tracking_number": package.TrackingNo, "ship_meth_id": package.ShipMethID,
            "items": [{"order_item_id": item, "quantity": str(qty)} for item, qty in quantities.items()]}


def _parcel(package: dict, settings: MappingSettings, where: str) -> model.Package:
    carrier = mapping.carrier_for(package["ship_meth_id"], settings)
    return model.parse(model.Package, {
        "package_reference_id": package["package_reference_id"], "tracking_number": package["tracking_number"],
        "carrier_code": carrier.carrier_code, "carrier_name": carrier.carrier_name,
        "shipping_method": carrier.shipping_method, "items": package["items"]}, record=where)


@job("confirm_shipment", queue="amazon")
def confirm_shipment(ctx: JobContext, amazon_order_id: str, marketplace_id: str | None, ship_key: int,
                     package_no: int, ship_date: str, package: dict | None, final: bool,
                     packages: list[int]) -> str:
    """Confirm one package on Amazon and record it once."""
    oid, store = amazon_order_id, ctx.store
    if package_no in store.confirmed_packages(ship_key):
        return "already confirmed"
    where = f"order {oid}, Sage shipment {ship_key} package {package_no}"
    if package is None or marketplace_id is None:
        raise errors.InvalidData(
            f"{where}: Sage has no tracking number, ship method or Amazon order item for it, which confirmShipment "
            f"requires; confirm it in Seller Central and discard this dead letter", record=oid)
    try:
        parcel = _parcel(package, ctx.settings.mapping, where)
    except model.InvalidRecord as exc:
        raise errors.InvalidData(f"{exc}; correct [mapping] carriers and replay this dead letter", record=oid) \
            from None
    shipped = datetime.fromisoformat(ship_date)
    client = connections.amazon(ctx)
    try:
        client.orders.confirm_shipment(oid, marketplace_id, parcel, shipped)
    except errors.AmazonRejected as exc:
        if not _shipped_on_amazon(client, oid, parcel):
            raise errors.AmazonRejected(
                f"{where} (carrier {parcel.carrier_code}"
                f"{' ' + parcel.carrier_name if parcel.carrier_name else ''}, tracking {parcel.tracking_number}): "
                f"{exc}; correct the carrier under [mapping] carriers or the tracking number in Sage, then "
                f"confirm it in Seller Central or replay this dead letter",
                amazon_code=exc.amazon_code, request_id=exc.request_id, status=exc.status, record=oid) from None
        log.info("shipment.already_on_amazon", amazon_order_id=oid, ship_key=ship_key, package_no=package_no)
    store.confirmation_add(ship_key, package_no, oid, audit=("shipment.confirmed", {
        "amazon_order_id": oid, "ship_key": ship_key, "package_no": package_no,
        "package_reference_id": parcel.package_reference_id, "carrier_code": parcel.carrier_code}))
    if final and set(packages) <= store.confirmed_packages(ship_key):
        store.journal_set(oid, "confirmed", only_from={"written", "shipped"})
    log.info("shipment.confirmed", amazon_order_id=oid, ship_key=ship_key, package_no=package_no)
    return "confirmed"


def _shipped_on_amazon(client, oid: str, parcel: model.Package) -> bool:
    """After a refusal: does Amazon already show this package's items shipped (an earlier attempt whose reply
    was lost confirmed the order's last package)? Then the refusal is Amazon saying 'done'."""
    try:
        order = client.orders.get_order(oid)
    except errors.Permanent:
        return False
    if order.status not in (model.OrderStatus.SHIPPED, model.OrderStatus.INVOICE_UNCONFIRMED):
        return False
    shipped = {line.order_item_id: line.quantity_shipped for line in order.lines}
    return all(shipped.get(item.order_item_id, Decimal(0)) >= item.quantity for item in parcel.items)
