"""Warehouse and accounting work done inside Sage, emulated on the replica (for the demo and the tests).

* :func:`ship_order` — pick and pack: a pending shipment (``tsoPendShipment``, ``tsoShipLine``,
  ``tsoShipLineDist``, one package row per parcel with its tracking number, ``tsoShipmentLog`` TranStatus 1)
  and the picked quantity held in the bins' ``PendQtyDecrease``. Partial shipments and several packages.
* :func:`commit_shipment` — TranStatus 6: bins relieved, SO line distributions shipped, lines and order closed
  when fully shipped, ``timInventory.QtyOnSO`` reduced.
* :func:`post_shipment` — TranStatus 3: the header moves from ``tsoPendShipment`` to ``tsoShipment``.
* :func:`post_gl_batch` — ``tciBatchLog`` → ``tglPosting`` → ``tglTransaction``; refused when ΣPostAmt ≠ 0.

Each takes an Engine (own transaction) or a Connection (the caller's transaction).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from decimal import Decimal

from sqlalchemy import Connection, Engine, func, insert, select, update

from erpsync.config import SageTables
from erpsync.errors import Permanent
from erpsync.sage500 import schema as s
from erpsync.sage500 import sql
from erpsync.sage500.replica import next_keys

PENDING = 1  # tsoShipmentLog.TranStatus before commit (replica)
BATCH_BALANCED, BATCH_POSTED = 4, 6  # tciBatchLog.Status
POST_OPEN, POST_COMPLETE = 0, 500  # tciBatchLog.PostStatus
ZERO = Decimal("0")


class WarehouseError(ValueError):
    """The warehouse step cannot be done as asked (unknown line, more than is open, not enough stock...)."""


@contextmanager
def _tx(bind: Engine | Connection) -> Iterator[Connection]:
    if isinstance(bind, Connection):
        yield bind
    else:
        with bind.begin() as conn:
            yield conn


def ship_order(bind: Engine | Connection, so_key: int, packages: Sequence[Mapping], *,
               tables: SageTables | None = None, ship_date: datetime | None = None,
               user_id: str = "warehouse") -> int:
    """Pick and pack part or all of sales order ``so_key``; returns the new ShipKey.

    ``packages``: ``[{"lines": {SOLineKey: qty}, "tracking_no": "1Z...", "ship_meth_id": "UPS GROUND"}, ...]``
    (``ship_meth_id`` optional: the order line's ship method)."""
    package_table = s.package_table(tables)
    with _tx(bind) as conn:
        so = conn.execute(select(s.tsoSalesOrder).where(s.tsoSalesOrder.c.SOKey == so_key)).mappings().first()
        if so is None or so["Status"] != sql.SO_OPEN:
            raise WarehouseError(f"sales order {so_key} is not an open sales order")
        dists = {row["SOLineKey"]: row for row in conn.execute(
            select(s.tsoSOLineDist, s.tsoSOLine.c.ItemKey)
            .join(s.tsoSOLine, s.tsoSOLine.c.SOLineKey == s.tsoSOLineDist.c.SOLineKey)
            .where(s.tsoSOLine.c.SOKey == so_key)).mappings()}
        wanted: dict[int, Decimal] = {}
        for package in packages:
            for line_key, qty in package["lines"].items():
                if line_key not in dists:
                    raise WarehouseError(f"SOLineKey {line_key} is not a line of sales order {so_key}")
                wanted[line_key] = wanted.get(line_key, ZERO) + Decimal(qty)
        if not wanted:
            raise WarehouseError("nothing to ship")
        warehouses = {dists[k]["WhseKey"] for k in wanted}
        if len(warehouses) != 1:
            raise WarehouseError("one shipment ships from one warehouse; split the lines by warehouse")
        whse_key = warehouses.pop()
        for line_key, qty in wanted.items():
            open_qty = dists[line_key]["QtyOpenToShip"] - _picked(conn, dists[line_key]["SOLineDistKey"])
            if qty <= 0 or qty > open_qty:
                raise WarehouseError(f"SOLineKey {line_key}: cannot ship {qty}, {open_qty} open")
        now = s.sage_time(ship_date)
        ship_key = next_keys(conn, "tsoShipment")
        tran_no = f"{next_keys(conn, 'tsoShipment.TranNo'):010d}"
        conn.execute(insert(s.tsoPendShipment).values(
            ShipKey=ship_key, CompanyID=so["CompanyID"], TranType=810, TranNo=tran_no, WhseKey=whse_key,
            FreightAmt=ZERO, CreateDate=now, CreateUserID=user_id))
        conn.execute(insert(s.tsoShipmentLog).values(ShipKey=ship_key, TranStatus=PENDING))
        ship_lines = {}
        for line_key, qty in wanted.items():
            dist = dists[line_key]
            bin_key = _pick_bin(conn, whse_key, dist["ItemKey"], qty)
            ship_lines[line_key] = ship_line = next_keys(conn, "tsoShipLine")
            conn.execute(insert(s.tsoShipLine).values(ShipLineKey=ship_line, ShipKey=ship_key, SOLineKey=line_key,
                                                      ItemKey=dist["ItemKey"]))
            conn.execute(insert(s.tsoShipLineDist).values(
                ShipLineDistKey=next_keys(conn, "tsoShipLineDist"), ShipLineKey=ship_line,
                SOLineDistKey=dist["SOLineDistKey"], QtyShipped=qty, FreightAmt=ZERO, WhseBinKey=bin_key))
            bins = s.timWhseBinInvt
            conn.execute(update(bins).where(bins.c.WhseBinKey == bin_key, bins.c.ItemKey == dist["ItemKey"])
                         .values(PendQtyDecrease=bins.c.PendQtyDecrease + qty))
        methods = dict(conn.execute(select(s.tciShipMethod.c.ShipMethID, s.tciShipMethod.c.ShipMethKey)
                                    .where(s.tciShipMethod.c.CompanyID == so["CompanyID"])).all())
        for number, package in enumerate(packages, start=1):
            meth_id = package.get("ship_meth_id")
            if meth_id and meth_id not in methods:
                raise WarehouseError(f"ShipMethID '{meth_id}' does not exist")
            conn.execute(insert(package_table).values(
                ShipKey=ship_key, PackageNo=number, TrackingNo=package["tracking_no"],
                ShipMethKey=methods.get(meth_id) if meth_id else dists[next(iter(package["lines"]))]["ShipMethKey"]))
            conn.execute(insert(s.tsoShipPkgContent_R), [
                dict(ShipKey=ship_key, PackageNo=number, ShipLineKey=ship_lines[k], QtyPacked=Decimal(q))
                for k, q in package["lines"].items()])
        return ship_key


def _picked(conn: Connection, so_line_dist_key: int) -> Decimal:
    """Quantity of a distribution already on shipments that are not committed yet."""
    sld, sl, log = s.tsoShipLineDist, s.tsoShipLine, s.tsoShipmentLog
    return conn.execute(
        select(func.coalesce(func.sum(sld.c.QtyShipped), 0))
        .select_from(sld.join(sl, sl.c.ShipLineKey == sld.c.ShipLineKey).join(log, log.c.ShipKey == sl.c.ShipKey))
        .where(sld.c.SOLineDistKey == so_line_dist_key, log.c.TranStatus == PENDING)).scalar_one() or ZERO


def _pick_bin(conn: Connection, whse_key: int, item_key: int, qty: Decimal) -> int:
    bins, wb = s.timWhseBinInvt, s.timWhseBin
    free = (bins.c.QtyOnHand - bins.c.PendQtyDecrease).label("Free")
    best = conn.execute(select(bins.c.WhseBinKey, free).join(wb, wb.c.WhseBinKey == bins.c.WhseBinKey)
                        .where(wb.c.WhseKey == whse_key, wb.c.ExclFromAvail == 0, bins.c.ItemKey == item_key)
                        .order_by(free.desc(), bins.c.WhseBinKey)).first()
    if best is None or best.Free < qty:
        raise WarehouseError(f"not enough stock of item {item_key} in one bin of warehouse {whse_key} "
                             f"to pick {qty} ({best.Free if best else 0} free)")
    return best.WhseBinKey


def commit_shipment(bind: Engine | Connection, ship_key: int) -> None:
    """Commit a pending shipment (TranStatus 6): inventory relieved, the sales order's quantities shipped."""
    with _tx(bind) as conn:
        log = s.tsoShipmentLog
        status = conn.execute(select(log.c.TranStatus).where(log.c.ShipKey == ship_key)).scalar()
        if status != PENDING:
            raise WarehouseError(f"shipment {ship_key} is not pending (TranStatus {status})")
        sld, sl = s.tsoShipLineDist, s.tsoShipLine
        rows = conn.execute(select(sld.c.SOLineDistKey, sld.c.QtyShipped, sld.c.WhseBinKey, sl.c.ItemKey,
                                   sl.c.SOLineKey)
                            .join(sl, sl.c.ShipLineKey == sld.c.ShipLineKey)
                            .where(sl.c.ShipKey == ship_key)).mappings().all()
        bins, dist, line = s.timWhseBinInvt, s.tsoSOLineDist, s.tsoSOLine
        so_keys = set()
        for r in rows:
            qty = r["QtyShipped"]
            conn.execute(update(bins).where(bins.c.WhseBinKey == r["WhseBinKey"], bins.c.ItemKey == r["ItemKey"])
                         .values(QtyOnHand=bins.c.QtyOnHand - qty, PendQtyDecrease=bins.c.PendQtyDecrease - qty))
            whse_key = conn.execute(select(dist.c.WhseKey).where(dist.c.SOLineDistKey == r["SOLineDistKey"])).scalar()
            conn.execute(update(dist).where(dist.c.SOLineDistKey == r["SOLineDistKey"])
                         .values(QtyShip=dist.c.QtyShip + qty, QtyOpenToShip=dist.c.QtyOpenToShip - qty,
                                 UpdateCounter=dist.c.UpdateCounter + 1))
            conn.execute(update(dist).where(dist.c.SOLineDistKey == r["SOLineDistKey"], dist.c.QtyOpenToShip <= 0)
                         .values(Status=sql.LINE_CLOSED, QtyOpenToShip=0))
            conn.execute(sql.adjust_qty_on_so(), {"item_key": r["ItemKey"], "whse_key": whse_key, "delta": -qty})
            open_dists = conn.execute(select(func.count()).select_from(dist)
                                      .where(dist.c.SOLineKey == r["SOLineKey"], dist.c.Status == sql.LINE_OPEN))
            if open_dists.scalar_one() == 0:
                conn.execute(update(line).where(line.c.SOLineKey == r["SOLineKey"])
                             .values(Status=sql.LINE_CLOSED, CloseDate=s.sage_time()))
            so_keys.add(conn.execute(select(line.c.SOKey).where(line.c.SOLineKey == r["SOLineKey"])).scalar_one())
        for so_key in so_keys:
            still_open = conn.execute(select(func.count()).select_from(line)
                                      .where(line.c.SOKey == so_key, line.c.Status == sql.LINE_OPEN)).scalar_one()
            if not still_open:
                so = s.tsoSalesOrder
                conn.execute(update(so).where(so.c.SOKey == so_key)
                             .values(Status=sql.SO_CLOSED, CloseDate=s.sage_time(), UpdateCounter=so.c.UpdateCounter + 1))
        conn.execute(update(log).where(log.c.ShipKey == ship_key).values(TranStatus=sql.COMMITTED))


def post_shipment(bind: Engine | Connection, ship_key: int, *, post_date: datetime | None = None) -> None:
    """Post a committed shipment (TranStatus 3): its header moves from tsoPendShipment to tsoShipment."""
    with _tx(bind) as conn:
        log, pend = s.tsoShipmentLog, s.tsoPendShipment
        if conn.execute(select(log.c.TranStatus).where(log.c.ShipKey == ship_key)).scalar() != sql.COMMITTED:
            raise WarehouseError(f"shipment {ship_key} is not committed")
        hdr = conn.execute(select(pend).where(pend.c.ShipKey == ship_key)).mappings().one()
        conn.execute(insert(s.tsoShipment).values(
            ShipKey=ship_key, CompanyID=hdr["CompanyID"], BatchKey=hdr["BatchKey"], TranType=hdr["TranType"],
            TranNo=hdr["TranNo"], TranID=f"{hdr['TranNo']}-SH", TranDate=hdr["CreateDate"],
            PostDate=s.sage_time(post_date), WhseKey=hdr["WhseKey"]))
        conn.execute(pend.delete().where(pend.c.ShipKey == ship_key))
        conn.execute(update(log).where(log.c.ShipKey == ship_key).values(TranStatus=sql.POSTED))


def post_gl_batch(bind: Engine | Connection, batch_key: int, *, post_date: datetime | None = None) -> int:
    """Post an open, balanced GL batch: its tglPosting rows are copied to tglTransaction, the batch becomes
    Status 6 / PostStatus 500. Refused (:class:`Permanent`) when ΣPostAmt ≠ 0. Returns the rows posted."""
    with _tx(bind) as conn:
        batch = conn.execute(select(s.tciBatchLog).where(s.tciBatchLog.c.BatchKey == batch_key)).mappings().first()
        if batch is None:
            raise Permanent(f"GL batch {batch_key} does not exist")
        if batch["PostStatus"] != POST_OPEN:
            raise Permanent(f"GL batch {batch['BatchID']} is already posted (PostStatus {batch['PostStatus']})")
        postings = conn.execute(select(s.tglPosting).where(s.tglPosting.c.BatchKey == batch_key)
                                .order_by(s.tglPosting.c.PostingKey)).mappings().all()
        total = sum((p["PostAmt"] for p in postings), ZERO)
        if not postings or total != 0:
            raise Permanent(f"GL batch {batch['BatchID']} is not balanced: debits - credits = {total} "
                            f"over {len(postings)} postings; nothing posted", code="gl_unbalanced")
        now = s.sage_time(post_date)
        first = next_keys(conn, "tglTransaction", len(postings))
        conn.execute(insert(s.tglTransaction), [dict(
            glTranKey=first + n, BatchKey=batch_key, GLAcctKey=p["GLAcctKey"], AcctRefKey=p["AcctRefKey"],
            CreateType=1, CreateDate=now, CurrExchRate=1.0, CurrID=p["CurrID"], ExtCmnt=p["ExtCmnt"],
            FiscYear=str((p["TranDate"] or now).year), FiscPer=(p["TranDate"] or now).month, JrnlKey=p["JrnlKey"], JrnlNo=p["JrnlNo"],
            PostAmt=p["PostAmt"], PostAmtHC=p["PostAmtHC"], PostCmnt=p["PostCmnt"], PostDate=now,
            PostQty=p["PostQty"], SourceModuleNo=p["SourceModuleNo"], TranDate=p["TranDate"], TranKey=p["TranKey"],
            TranNo=p["TranNo"], TranType=p["TranType"]) for n, p in enumerate(postings)])
        conn.execute(update(s.tciBatchLog).where(s.tciBatchLog.c.BatchKey == batch_key)
                     .values(Status=BATCH_POSTED, PostStatus=POST_COMPLETE, PostDate=now))
        return len(postings)
