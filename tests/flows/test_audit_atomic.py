"""Audit trail after a kill: a journal change and its audit row are one state-store transaction. A fault injected
in the database between the two (a trigger refusing the audit row) rolls the journal change back with it; the rerun
records both, so Sage never holds an order the audit trail does not show written."""

from __future__ import annotations

from tests.stepping import run_all

FAULT = ("CREATE TRIGGER audit_fault BEFORE INSERT ON audit WHEN NEW.event = '{event}' "
         "BEGIN SELECT RAISE(ABORT, 'injected fault: the audit row was not written'); END")


def inject(store, event: str) -> None:
    with store.engine.begin() as conn:
        conn.exec_driver_sql(FAULT.format(event=event))


def heal(store) -> None:
    with store.engine.begin() as conn:
        conn.exec_driver_sql("DROP TRIGGER audit_fault")


def test_a_failed_order_written_audit_row_rolls_back_the_journal_and_the_rerun_writes_both(pipeline):
    [oid] = pipeline.generate(1, seed=61)
    runtime, store = pipeline.runtime, pipeline.runtime.store
    assert runtime.run("import_order", {"amazon_order_id": oid, "read": True}).value == "write"
    inject(store, "order.written")
    [failed] = run_all(runtime, ("sage500",))
    assert failed.status == "retry" and "injected fault" in failed.error
    assert pipeline.sage_rows(oid) == (1, 1)  # Sage committed before the journal
    assert pipeline.journal(oid) == "writing"  # not 'written' without its audit row
    assert store.audit_list(event="order.written") == []

    heal(store)
    [done] = run_all(runtime, ("sage500",))
    assert done.status == "done" and done.value["created"] is False  # the rerun found the order in Sage
    assert pipeline.journal(oid) == "written" and pipeline.sage_rows(oid) == (1, 1)
    [written] = store.audit_list(event="order.written")
    assert written.detail["amazon_order_id"] == oid and written.detail["so_key"] == pipeline.sage_order(oid).SOKey


def test_a_void_and_its_audit_row_are_one_transaction(pipeline):
    [oid] = pipeline.generate(1, seed=62)
    runtime, store = pipeline.runtime, pipeline.runtime.store
    runtime.run("import_order", {"amazon_order_id": oid, "read": True})
    assert [o.status for o in run_all(runtime, ("sage500",))] == ["done"]
    pipeline.control("POST", f"orders/{oid}/cancel", json={"reason": "NoInventory"})
    assert runtime.run("import_order", {"amazon_order_id": oid, "read": True}).value == "apply"
    inject(store, "order.voided")
    [failed] = run_all(runtime, ("sage500",))
    assert failed.status == "retry" and "injected fault" in failed.error
    assert pipeline.journal(oid) == "written" and store.audit_list(event="order.voided") == []
    heal(store)
    assert [o.status for o in run_all(runtime, ("sage500",))] == ["done"]
    assert pipeline.journal(oid) == "voided"
    assert [e.detail["amazon_order_id"] for e in store.audit_list(event="order.voided")] == [oid]
