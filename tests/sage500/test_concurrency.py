"""The same Amazon order written from two processes at once yields exactly one Sage sales order."""

from __future__ import annotations

import multiprocessing

import pytest
from sqlalchemy import func, select

from erpsync.errors import RecordLocked
from erpsync.sage500 import replica, sql
from erpsync.sage500 import schema as s
from erpsync.sage500.engine import make_engine
from erpsync.sage500.gateway import Sage500Gateway

CONTEXT = multiprocessing.get_context("fork")  # the child runs this module's function without importing it


def _write(url: str, order, barrier, results) -> None:
    engine = make_engine(url)
    gateway = Sage500Gateway(engine)
    barrier.wait(timeout=30)
    try:
        results.put(("ok", gateway.create_sales_order(order)))
    except Exception as exc:  # reported to the parent, which fails the test with it
        results.put(("error", f"{type(exc).__name__}: {exc}"))
    finally:
        engine.dispose()


def _race(url: str, orders) -> list:
    barrier, results = CONTEXT.Barrier(len(orders)), CONTEXT.Queue()
    workers = [CONTEXT.Process(target=_write, args=(url, order, barrier, results)) for order in orders]
    for worker in workers:
        worker.start()
    outcomes = [results.get(timeout=60) for _ in workers]
    for worker in workers:
        worker.join(timeout=30)
        assert worker.exitcode == 0
    errors = [detail for kind, detail in outcomes if kind == "error"]
    assert not errors, errors
    return [written for _, written in outcomes]


def test_same_order_from_two_processes_is_written_once(sage_url, make_order):
    order = make_order("113-5555555-0000001", lines=[("WIDGET-BLU-L", 1, "12.99"), ("TSHIRT-BLU-L", 2, "15.00")])
    written = _race(sage_url, [order, order])
    assert sorted(w.created for w in written) == [False, True]
    assert len({(w.SOKey, w.TranNo) for w in written}) == 1
    engine = make_engine(sage_url)
    with engine.connect() as conn:
        counts = [conn.execute(select(func.count()).select_from(t)).scalar_one()
                  for t in (s.tsoSalesOrder, s.tsoSalesOrderExt_AMZ, s.tsoSOLine, s.StgSalesOrder)]
    engine.dispose()
    assert counts == [1, 1, 2, 1]


def test_different_orders_from_two_processes_get_their_own_keys(sage_url, make_order):
    orders = [make_order(f"113-5555555-000000{n}") for n in (1, 2)]
    written = _race(sage_url, orders)
    assert all(w.created for w in written)
    assert sorted(w.TranNo for w in written) == ["0000000001", "0000000002"]
    assert Sage500Gateway(make_engine(sage_url)).order_by_amazon_id(orders[1].AmazonOrderId) is not None


def test_a_held_order_lock_defers_the_writer(postgres_url, make_order):
    """While another transaction holds the order's lock, a writer gives up after its timeout with RecordLocked
    (a retry that does not spend the budget) and writes nothing."""
    engine = make_engine(postgres_url)
    replica.seed(engine, items=5)
    order = make_order("113-5555555-0000009")
    with engine.connect() as holder, holder.begin():
        holder.execute(sql.applock_postgresql(), {"resource": f"erpsync:order:{order.AmazonOrderId}"})
        with pytest.raises(RecordLocked) as locked:
            Sage500Gateway(engine, lock_timeout_ms=200).create_sales_order(order)
    assert locked.value.spend_retry is False
    assert Sage500Gateway(engine).create_sales_order(order).created
    engine.dispose()
