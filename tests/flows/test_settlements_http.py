"""The settlement cycle over HTTP: the sandbox closes settlement periods (FBA orders, a refund, FBA fees, reserves,
subscription, storage; US and EU formats, the format-change variant) and publishes V2 flat files; the workers list
them with getReports, download, parse, categorise and post them to the replica's GL, once per settlement-id. An
unknown fee type becomes one dead letter naming it and nothing is posted; after a mapping is added, the replay
posts it."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import func, select

from erpsync.runtime import deadletter
from erpsync.sage500 import schema as s

UNKNOWN = ("other-transaction", "other-transaction", "Vine Enrollment Fee")


def _posted(pipeline, sid: str) -> dict[str, Decimal]:
    """GL amounts per account of the settlement's posted batches; each batch balances."""
    b, t, a = s.tciBatchLog, s.tglTransaction, s.tglAccount
    with pipeline.engine.connect() as conn:
        keys = list(conn.execute(select(b.c.BatchKey).where(b.c.BatchCmnt.like(f"AMZ:{sid}/%"), b.c.Status == 6))
                    .scalars())
        for key in keys:
            assert conn.execute(select(func.sum(t.c.PostAmt)).where(t.c.BatchKey == key)).scalar() == 0
        rows = conn.execute(select(a.c.GLAcctNo, func.sum(t.c.PostAmt)).join(a, a.c.GLAcctKey == t.c.GLAcctKey)
                            .where(t.c.BatchKey.in_(keys)).group_by(a.c.GLAcctNo)).all()
    return {no: Decimal(str(amount)) for no, amount in rows}


def _sync_until_posted(pipeline, sid: str) -> None:
    pipeline.runtime.enqueue("sync_settlements", key="sync_settlements")
    pipeline.wait(lambda: (r := pipeline.runtime.store.settlement_get(sid)) is not None and r.status == "posted",
                  timeout=60, what=f"settlement {sid} posted")


def _sync_until_import_dead_letter(pipeline) -> None:
    pipeline.runtime.enqueue("sync_settlements", key="sync_settlements")
    pipeline.wait(lambda: pipeline.runtime.store.dead_letters.list("open", job="import_settlement"), timeout=60,
                  what="the import dead letter")
    assert pipeline.runtime.drain(30)


def test_sandbox_settlements_post_once_each_us_eu_and_changed_format(pipeline):
    store = pipeline.runtime.store
    fba = pipeline.generate(30, afn_share=1.0)  # Amazon ships them at once: Order rows with FBA fees
    pipeline.control("POST", f"orders/{fba[0]}/refund", json={})
    first = pipeline.control("POST", "settlements", json={})
    assert pipeline.sandbox.world.report_documents[first["reportDocumentId"]]["compression"] == "GZIP"
    with pipeline.workers():
        _sync_until_posted(pipeline, first["settlementId"])
        ledger = _posted(pipeline, first["settlementId"])
        assert ledger["1010"] == Decimal(first["totalAmount"]) and sum(ledger.values()) == 0
        assert ledger["4010"] < 0 and ledger["4060"] > 0 and ledger["6120"] > 0  # FBA revenue, refund, FBA fees
        assert "1210" not in ledger  # FBA orders are not in Sage (orders.afn = "skip"): nothing to clear
        assert ledger["6140"] == Decimal("39.99")  # the first period's subscription
        document_rows = store.settlement_rows_of(first["settlementId"])
        assert {r["order_id"] for r in document_rows if r["transaction_type"] == "Refund"} == {fba[0]}

        pipeline.generate(2, afn_share=1.0)
        eu = pipeline.control("POST", "settlements", json={"locale": "EU"})
        pipeline.generate(2, afn_share=1.0)
        changed = pipeline.control("POST", "settlements", json={"formatChange": True})
        _sync_until_posted(pipeline, eu["settlementId"])
        _sync_until_posted(pipeline, changed["settlementId"])
        for closed in (eu, changed):
            ledger = _posted(pipeline, closed["settlementId"])
            assert ledger["1010"] == Decimal(closed["totalAmount"]) and sum(ledger.values()) == 0
            reserves = {r["amount_description"] for r in store.settlement_rows_of(closed["settlementId"])
                        if r["account"] == "1260"}
            assert reserves == {"Previous Reserve Amount Balance", "Current Reserve Amount"}

        before = {r.settlement_id: r.batches for r in store.settlement_list()}
        pipeline.runtime.enqueue("sync_settlements", key="sync_settlements")
        assert pipeline.runtime.drain(30)
        assert {r.settlement_id: r.batches for r in store.settlement_list()} == before  # each posted once
    assert not store.dead_letters.list("open")


def test_mfn_order_in_sage_and_fba_orders_in_one_settlement_count_revenue_once(pipeline):
    """The whole cycle over HTTP: an MFN order the order flow wrote into Sage, shipped from Sage's warehouse and
    confirmed to Amazon, and FBA orders Sage never sees (orders.afn = "skip") settle together. The MFN order's
    invoiced amounts clear the Amazon receivable (Sage's order holds its revenue) and equal its Sage total; only
    the FBA orders' principal reaches the revenue account; each journal line's memo names its rule."""
    from erpsync.flows.binder import apply_key
    from erpsync.sage500 import warehouse

    runtime, store = pipeline.runtime, pipeline.runtime.store
    [mfn] = pipeline.generate(1, seed=41)  # afn_share 0: merchant fulfilled
    runtime.run("import_order", {"amazon_order_id": mfn, "read": True})
    runtime.run("apply_order", store.job_key_get(apply_key(mfn)).message["payload"])
    store.job_key_release(apply_key(mfn))
    order = pipeline.sage_order(mfn)
    ship_key = warehouse.ship_order(pipeline.engine, order.SOKey, [
        {"lines": {line.SOLineKey: line.QtyOrd for line in order.lines}, "tracking_no": "1Z999AA10000000041"}])
    warehouse.commit_shipment(pipeline.engine, ship_key)
    fba = pipeline.generate(3, afn_share=1.0, seed=42)
    with pipeline.workers():
        runtime.enqueue("scan_shipments", key="scan_shipments")
        pipeline.wait_journal([mfn], "confirmed")  # Amazon books the MFN order's amounts when it ships
        closed = pipeline.control("POST", "settlements", json={})
        _sync_until_posted(pipeline, closed["settlementId"])
    rows = store.settlement_rows_of(closed["settlementId"])
    invoiced = [r for r in rows if r["transaction_type"] == "Order" and r["amount_type"] in ("ItemPrice", "Promotion")]
    assert {r["order_id"] for r in invoiced} == {mfn, *fba}
    assert {(r["fulfillment_id"], r["account"], r["rule"]) for r in invoiced if r["order_id"] == mfn} == {
        ("MFN", "1210", "clearing")}
    cleared = sum(Decimal(r["amount"]) for r in invoiced if r["order_id"] == mfn)
    assert cleared == Decimal(str(order.TranAmt))  # what Sage's order will invoice, cleared once, not earned twice
    fba_principal = sum(Decimal(r["amount"]) for r in invoiced if r["order_id"] in fba
                        and (r["amount_type"], r["amount_description"]) == ("ItemPrice", "Principal"))
    ledger = _posted(pipeline, closed["settlementId"])
    assert ledger["1210"] == -cleared and ledger["4010"] == -fba_principal  # credits
    assert ledger["1010"] == Decimal(closed["totalAmount"]) and sum(ledger.values()) == 0
    t = s.tglTransaction
    with pipeline.engine.connect() as conn:
        memos = set(conn.execute(select(t.c.ExtCmnt)).scalars())
    assert any(m.startswith("AR clearing, order in Sage: ") and "MFN Principal" in m for m in memos)
    assert "revenue, order not in Sage: AFN Principal" in memos
    assert not store.dead_letters.list("open")


def test_unknown_fee_is_one_dead_letter_and_replay_posts_it_after_mapping(pipeline):
    store = pipeline.runtime.store
    pipeline.generate(2, afn_share=1.0)
    pipeline.control("POST", "ledger", json={"transaction_type": UNKNOWN[0], "amount_type": UNKNOWN[1],
                                             "amount_description": UNKNOWN[2], "amount": "-200.00"})
    closed = pipeline.control("POST", "settlements", json={})
    sid = closed["settlementId"]
    with pipeline.workers():
        _sync_until_import_dead_letter(pipeline)
        [letter] = store.dead_letters.list("open")
        assert letter.error_code == "unmapped_settlement_amount" and letter.record == sid
        assert f"{UNKNOWN!r} on line" in letter.message and "nothing posted" in letter.message
        assert _posted(pipeline, sid) == {} and not store.settlement_rows_of(sid)

        pipeline.runtime.enqueue("sync_settlements", key="sync_settlements")  # the next sync leaves it parked
        assert pipeline.runtime.drain(30)
        assert [d.id for d in store.dead_letters.list("open")] == [letter.id]

        pipeline.configure("mapping.settlement", accounts={"/".join(UNKNOWN): "6160"})
        deadletter.replay(pipeline.runtime, letter.id)
        pipeline.wait(lambda: (r := store.settlement_get(sid)) is not None and r.status == "posted", timeout=60,
                      what=f"settlement {sid} posted after the replay")
    ledger = _posted(pipeline, sid)
    assert ledger["6160"] == Decimal("200.00") and ledger["1010"] == Decimal(closed["totalAmount"])
    assert not store.dead_letters.list("open")


def test_report_missing_a_column_is_one_dead_letter_naming_it_and_nothing_is_posted(pipeline):
    """Amazon drops a column the journal needs from its report: the import job fails permanently, once, with
    "settlement format changed: <what>, <where>"; no row detail is kept and nothing reaches Sage."""
    from erpsync.sandbox import documents

    store = pipeline.runtime.store
    pipeline.generate(2, afn_share=1.0)
    closed = pipeline.control("POST", "settlements", json={})
    document = pipeline.sandbox.world.report_documents[closed["reportDocumentId"]]
    lines = documents.content_of(document).decode().splitlines(keepends=True)
    drop = lines[0].split("\t").index("amount")
    cut = "".join("\t".join(f for i, f in enumerate(line.split("\t")) if i != drop) for line in lines)
    documents.store(document, cut.encode(), pipeline.sandbox.world.now(), compress=True)
    with pipeline.workers():
        _sync_until_import_dead_letter(pipeline)
    [letter] = store.dead_letters.list("open")
    assert letter.error_code == "settlement_format" and letter.attempts == 1
    assert letter.message.startswith("settlement format changed: required column 'amount' missing, in the header")
    assert f"(line 1 of report {closed['reportId']}: 23 columns" in letter.message  # where: the report
    assert _posted(pipeline, closed["settlementId"]) == {} and not store.settlement_rows_of(closed["settlementId"])


def test_cli_sync_runs_the_cycle_and_reports_dead_letters(pipeline):
    from typer.testing import CliRunner

    from erpsync.cli import app

    pipeline.generate(2, afn_share=1.0)
    closed = pipeline.control("POST", "settlements", json={"locale": "EU"})
    result = CliRunner().invoke(app, ["settlements", "sync", "--config", str(pipeline.config_path)])
    assert result.exit_code == 0, result.output
    assert f"settlement {closed['settlementId']}: posted" in result.output
    assert _posted(pipeline, closed["settlementId"])["1010"] == Decimal(closed["totalAmount"])

    pipeline.control("POST", "ledger", json={"transaction_type": UNKNOWN[0], "amount_type": UNKNOWN[1],
                                             "amount_description": UNKNOWN[2], "amount": "-5.00"})
    second = pipeline.control("POST", "settlements", json={})
    result = CliRunner().invoke(app, ["settlements", "sync", "--config", str(pipeline.config_path)])
    assert result.exit_code == 1 and "(import_settlement): settlement" in result.output
    assert "Vine Enrollment Fee" in result.output and _posted(pipeline, second["settlementId"]) == {}
