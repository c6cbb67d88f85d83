"""The Settlements page and its API over real HTTP, with hand-made settlement files imported and posted to a Sage
replica through the real flow (`erpsync settlements import`): the list (filters, pagination, the site's zone, an
empty state), one settlement's row detail summed per account as the journal posts it, its Sage batches, and the dead
letters of a refused one (closed period, unknown fee type), which the erpsync_settlements_rejected gauge counts."""

from __future__ import annotations

import re
import shutil
from datetime import datetime, timezone
from decimal import Decimal

import httpx
import pytest
from sqlalchemy import select, update
from typer.testing import CliRunner

from erpsync.cli import app
from erpsync.flows import settlements as flow
from erpsync.runtime import deadletter
from erpsync.sage500 import schema as s
from erpsync.sage500.engine import make_engine
from tests.flows.test_settlements import MFN, SID, mfn_and_afn_rows, row, settlement_file
from tests.web.conftest import API_TOKEN

BEARER = {"Authorization": f"Bearer {API_TOKEN}"}


@pytest.fixture
def site(make_web, workdir, sage_template):
    """A web app in Chicago time over the state store that `settlements import` writes, with a seeded replica."""
    (workdir / ".erpsync").mkdir(exist_ok=True)
    shutil.copy(sage_template, workdir / ".erpsync" / "sage500.db")
    return make_web('[web]\ntimezone = "America/Chicago"\n')


def import_file(workdir, text: str, name: str = "settlement.txt"):
    path = workdir / name
    path.write_text(text)
    return CliRunner().invoke(app, ["settlements", "import", str(path), "--config", str(workdir / "erpsync.toml")])


def sage_batches(workdir, sid: str) -> dict[str, int]:
    engine = make_engine(f"sqlite:///{workdir / '.erpsync' / 'sage500.db'}")
    try:
        with engine.connect() as conn:
            rows = conn.execute(select(s.tciBatchLog.c.BatchCmnt, s.tciBatchLog.c.BatchKey)
                                .where(s.tciBatchLog.c.BatchCmnt.like(f"AMZ:{sid}/%"))).all()
    finally:
        engine.dispose()
    return {cmnt.split("/")[1]: key for cmnt, key in rows}


def test_pages_and_api_refuse_a_visitor_and_show_an_empty_state(site):
    for path in ("/settlements", f"/settlements/{SID}", "/api/settlements", f"/api/settlements/{SID}"):
        assert httpx.get(site.url + path).status_code == 401, path
    client = site.session()
    page = client.get("/settlements")
    assert page.status_code == 200 and "no settlements imported yet" in page.text
    assert client.get(f"/settlements/{SID}").status_code == 404
    answer = httpx.get(f"{site.url}/api/settlements/{SID}", headers=BEARER)
    assert answer.status_code == 404 and "never imported" in answer.json()["detail"]
    assert httpx.get(f"{site.url}/api/settlements", params={"status": "lost"}, headers=BEARER).status_code == 400


def test_a_posted_settlement_across_a_month_end_shows_its_lines_batches_and_times(site, workdir):
    rows = mfn_and_afn_rows("2026-03-30") + [
        row("Order", "ItemPrice", "Principal", "40.00", "2026-04-02", order_id="112-3333333-3333333", fid="AFN"),
        row("ServiceFee", "Subscription", "Subscription Fee", "-39.99", "2026-04-03")]
    result = import_file(workdir, settlement_file(rows, start="2026-03-24", end="2026-04-07"))
    assert result.exit_code == 0, result.output
    batches = sage_batches(workdir, SID)
    assert set(batches) == {"2026-03", "2026-04"}

    listed = httpx.get(f"{site.url}/api/settlements", headers=BEARER).json()
    assert listed["total"] == 1 and listed["counts"] == {"posted": 1} and listed["dead_letters_open"] == 0
    [item] = listed["settlements"]
    assert item["settlement_id"] == SID and item["status"] == "posted" and item["currency"] == "USD"
    assert item["total_amount"] == "127.79" and item["report_id"] is None  # exact text; a file, not a report
    assert item["batches"] == batches and item["end_date"] == "2026-04-07T08:00:00+00:00"

    detail = httpx.get(f"{site.url}/api/settlements/{SID}", headers=BEARER).json()
    assert detail["rows"] == 13 and detail["orders"] == 3 and detail["complete"] is True
    assert detail["rows_total"] == "127.79"
    assert (detail["first_posted_date"], detail["last_posted_date"]) == ("2026-03-30", "2026-04-03")
    lines = {(line["account"], line["rule"]): line for line in detail["lines"]}
    clearing = lines[("1210", "clearing")]  # MFN 100 + 5 + 8.40 - 10: the receivable, not revenue
    assert (clearing["debit"], clearing["credit"], clearing["rows"]) == ("0.00", "103.40", 4)
    assert clearing["memo"] == "AR clearing, order in Sage: MFN Principal, MFN Shipping, MFN Tax"
    assert lines[("4010", "revenue")]["credit"] == "100.00"  # AFN principal of both months
    assert lines[("6140", "mapped")]["debit"] == "39.99"
    assert detail["deposit"]["debit"] == "127.79" and detail["deposit"]["credit"] == "0.00"
    debits = sum(Decimal(x["debit"]) for x in [*detail["lines"], detail["deposit"]])
    assert debits == sum(Decimal(x["credit"]) for x in [*detail["lines"], detail["deposit"]])  # balanced

    client = site.session()
    page = client.get("/settlements").text
    assert f'href="/settlements/{SID}"' in page and "127.79" in page
    assert f"2026-03: {batches['2026-03']}, 2026-04: {batches['2026-04']}" in page
    assert "2026-04-07 03:00:00 CDT" in page  # 08:00 UTC end date in Chicago time
    one = client.get(f"/settlements/{SID}").text
    assert "AR clearing, order in Sage: MFN Principal, MFN Shipping, MFN Tax" in one and "103.40" in one
    assert f"BatchKey {batches['2026-04']}" in one and "equals total-amount" in one
    assert f"deposit: settlement {SID} total-amount 127.79 USD" in one
    assert f'href="/orders/{MFN["order_id"]}"' in one  # rows link to their order
    just_afn = client.get(f"/settlements/{SID}", params={"account": "4010"}).text
    assert "112-3333333-3333333" in just_afn and MFN["order_id"] not in just_afn.split('id="rows"')[1]


def test_settlement_list_filters_and_pages(site, workdir):
    for n, sid in enumerate(("31000000001", "31000000002", "31000000003")):
        text = settlement_file(mfn_and_afn_rows(f"2026-03-1{n}"), sid=sid, start=f"2026-03-0{n + 1}",
                               end=f"2026-03-1{n + 5}")
        assert import_file(workdir, text, f"s{n}.txt").exit_code == 0
    client = site.session()
    first = client.get("/settlements", params={"per_page": 2}).text
    assert "page 1 of 2 · 3 in all" in first
    assert re.findall(r'data-settlement="(\d+)"', first) == ["31000000003", "31000000002"]  # latest period first
    second = client.get("/settlements", params={"per_page": 2, "page": 2}).text
    assert re.findall(r'data-settlement="(\d+)"', second) == ["31000000001"]
    found = client.get("/settlements", params={"q": "31000000002"}).text
    assert re.findall(r'data-settlement="(\d+)"', found) == ["31000000002"]
    assert "no settlements match" in client.get("/settlements", params={"status": "imported"}).text
    api = httpx.get(f"{site.url}/api/settlements", params={"status": "posted", "per_page": 1}, headers=BEARER).json()
    assert api["total"] == 3 and api["pages"] == 3 and len(api["settlements"]) == 1


def _capture(runtime, job: str, key: str, exc: Exception) -> int:
    return deadletter.capture(runtime.store, job=job, queue="amazon" if job == "import_settlement" else "sage500",
                              key=key, payload={}, exc=exc, attempts=1, first_failed_at=datetime.now(timezone.utc))


def _metric(site) -> float:
    text = httpx.get(f"{site.url}/metrics", headers=BEARER).text
    return float(re.search(r"^erpsync_settlements_rejected (\S+)$", text, re.M).group(1))


def test_refused_settlements_link_their_dead_letters_and_are_counted(site, workdir):
    """A closed period (the settlement imported, not posted) and an unknown fee type (nothing kept), each the dead
    letter the runtime captures from the real flow's error."""
    runtime = site.runtime
    assert _metric(site) == 0
    engine = make_engine(f"sqlite:///{workdir / '.erpsync' / 'sage500.db'}")
    with engine.begin() as conn:
        p = s.tglFiscalPeriod
        conn.execute(update(p).where(p.c.FiscYear == "2026", p.c.FiscPer == 3).values(Status=2))
    engine.dispose()
    outcome = runtime.run("post_settlement", {"settlement": flow.read(
        settlement_file(mfn_and_afn_rows()).splitlines(), runtime.settings, source="test",
        store=runtime.store)[0].payload()}, key=f"post_settlement:{SID}")
    assert outcome.status == "dead"
    closed = outcome.dead_letter_id

    unknown_sid = "45678901234"
    text = settlement_file([*mfn_and_afn_rows(), row("other-transaction", "other-transaction", "Vine Enrollment Fee",
                                                     "-200.00")], sid=unknown_sid)
    with pytest.raises(flow.UnmappedSettlementAmounts) as refused:
        flow.read(text.splitlines(), runtime.settings, source="report R-9", store=runtime.store, report_id="R-9")
    unknown = _capture(runtime, "import_settlement", "import_settlement:R-9", refused.value)
    assert _metric(site) == 2

    client = site.session()
    listed = client.get("/settlements").text
    assert "2 settlement(s) could not be posted to the ledger" in listed
    assert f'href="/dead-letters/{closed}"' in listed and f'href="/dead-letters/{unknown}"' in listed
    assert "closed_period" in listed and "unmapped_settlement_amount" in listed
    imported = client.get("/settlements", params={"status": "imported"}).text
    assert re.findall(r'data-settlement="(\d+)"', imported) == [SID, unknown_sid]  # same period: by id
    api = httpx.get(f"{site.url}/api/settlements", params={"status": "imported"}, headers=BEARER).json()
    assert {x["settlement_id"]: x["dead_letters_open"] for x in api["settlements"]} == {SID: 1, unknown_sid: 1}
    assert api["dead_letters_open"] == 2
    one = client.get(f"/settlements/{SID}").text
    assert f'href="/dead-letters/{closed}"' in one and "fiscal period 2026-03 is closed" in one
    assert "not posted yet" in one and "AR clearing, order in Sage" in one  # its row detail was kept
    other = client.get(f"/settlements/{unknown_sid}").text
    assert f'href="/dead-letters/{unknown}"' in other and "Vine Enrollment Fee" in other
    assert "no row detail kept" in other
    # the dead letter's page leads back to the settlement, not to an order
    assert f'href="/settlements/{SID}"' in client.get(f"/dead-letters/{closed}").text

    deadletter.discard(runtime.store, unknown)
    assert _metric(site) == 1
