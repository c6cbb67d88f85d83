"""The dashboard's pages over real HTTP: filters, pagination, the site's zone, and bulk actions that do nothing
until confirmed."""

from __future__ import annotations

import re

import httpx

from erpsync.web import inventory
from tests.web.conftest import API_TOKEN, dead_letter


def test_bulk_discard_needs_a_confirmation_and_reports_each_letter(web):
    runtime = web.runtime
    first = dead_letter(runtime, "113-0000000-0000001")
    second = dead_letter(runtime, "113-0000000-0000002")
    kept = dead_letter(runtime, "113-0000000-0000003", code="total_mismatch")
    client = web.session()
    csrf = web.csrf(client)
    listed = client.get("/dead-letters", params={"reason": "unknown_sku"}).text
    assert "113-0000000-0000001" in listed and "113-0000000-0000002" in listed
    assert "113-0000000-0000003" not in listed  # filtered out by reason
    form = {"action": "discard", "id": [str(first), str(second)], "csrf_token": csrf, "back": "/dead-letters"}
    confirm = client.post("/dead-letters/action", data=form)
    assert confirm.status_code == 200 and "Discard 2 dead letter(s)?" in confirm.text
    assert {d.status for d in runtime.store.dead_letters.list(None)} == {"open"}  # nothing yet
    assert re.findall(r'name="id" value="(\d+)"', confirm.text) == [str(first), str(second)]
    done = client.post("/dead-letters/action", data={**form, "confirm": "yes"})
    assert f"dead letter {first}: discarded" in done.text and f"dead letter {second}: discarded" in done.text
    assert runtime.store.dead_letters.get(kept).status == "open"
    # a second go reports the state instead of failing
    again = client.post("/dead-letters/action", data={**form, "confirm": "yes"})
    assert again.status_code == 200 and "discarded, not open" in again.text


def test_orders_page_paginates_filters_and_shows_the_sites_zone(make_web):
    web = make_web('[web]\ntimezone = "Europe/Berlin"\n')
    store = web.runtime.store
    for n in range(5):
        store.journal_set(f"113-0000000-000000{n}", "written", so_key=n + 1, tran_no=f"{n + 1:010d}")
    store.journal_set("113-0000000-0000009", "failed", error="SKU 'X' has no Sage item")
    client = web.session()
    first = client.get("/orders", params={"status": "written", "per_page": 2})
    assert "page 1 of 3 · 5 in all" in first.text and "page=2" in first.text
    assert "113-0000000-0000009" not in first.text
    assert "CET" in first.text or "CEST" in first.text  # Berlin time, not UTC
    third = client.get("/orders", params={"status": "written", "per_page": 2, "page": 3})
    assert third.text.count('href="/orders/113-') == 1
    found = client.get("/orders", params={"q": "0000000003"})  # a Sage TranNo finds its order
    assert "113-0000000-0000002" in found.text
    assert client.get("/orders/113-9999999-9999999").status_code == 404
    for wildcard in ("%", "_13", "113-0000000-000000_"):  # a search is text, not a LIKE pattern
        assert 'href="/orders/113-' not in client.get("/orders", params={"q": wildcard}).text, wildcard
    assert client.get("/api/orders", params={"status": "nonsense"}).status_code == 400


def test_an_id_no_row_can_have_is_not_found_rather_than_a_server_error(web):
    """SQLite's INTEGER holds 64 bits: a larger id in a URL or a form names no row (it crashed the lookup)."""
    huge = str(2**64)
    client = web.session()
    for path in (f"/dead-letters/{huge}", f"/feeds/{huge}", f"/api/dead-letters/{huge}", f"/api/feeds/{huge}"):
        assert client.get(path).status_code == 404, path
    assert client.post(f"/api/dead-letters/{huge}/replay", headers={"X-CSRF-Token": web.csrf(client)}).status_code \
        == 409
    done = client.post("/dead-letters/action", data={"action": "discard", "id": huge, "confirm": "yes",
                                                     "csrf_token": web.csrf(client)})
    assert done.status_code == 200 and f"dead letter {huge} does not exist" in done.text


def test_a_feeds_messages_and_the_reconciliation_are_paginated_and_filtered(web):
    """Both lists can run to thousands of SKUs: they page (the pager keeps the page size and the filters) and
    filter by result or cause and by SKU."""
    listings = web.runtime.store.listings
    sends = {f"SKU-{n:03d}": {"quantity": n} for n in range(7)}
    [batch] = listings.record_scan("ATVPDKIKX0DER", {}, sends, {}, 100)
    causes = ("drift", "unknown SKU")
    listings.reconciliation_add("ATVPDKIKX0DER", {"compared": 7, "differences": [
        {"sku": f"SKU-{n:03d}", "channel": "MFN", "sage": n, "amazon": n + 1, "cause": causes[n % 2],
         "since": None, "age": None} for n in range(7)]})
    client = web.session()

    def skus(text: str) -> list[str]:
        return re.findall(r'<td class="id">(SKU-\d+)</td>', text)

    first = client.get(f"/feeds/{batch}", params={"per_page": 3})
    assert skus(first.text) == ["SKU-000", "SKU-001", "SKU-002"] and "page 1 of 3 · 7 in all" in first.text
    assert "per_page=3&page=2" in first.text  # the next page keeps its size
    assert skus(client.get(f"/feeds/{batch}", params={"per_page": 3, "page": 3}).text) == ["SKU-006"]
    assert skus(client.get(f"/feeds/{batch}", params={"q": "sku-004"}).text) == ["SKU-004"]
    assert skus(client.get(f"/feeds/{batch}", params={"result": "refused"}).text) == []
    assert len(skus(client.get(f"/feeds/{batch}", params={"result": "in flight"}).text)) == 7

    drift = client.get("/reconciliation", params={"cause": "drift", "per_page": 2})
    assert skus(drift.text) == ["SKU-000", "SKU-002"] and "page 1 of 2 · 4 in all" in drift.text
    assert skus(client.get("/reconciliation", params={"cause": "drift", "per_page": 2, "page": 2}).text) == \
        ["SKU-004", "SKU-006"]
    assert skus(client.get("/reconciliation", params={"q": "005"}).text) == ["SKU-005"]
    beyond = client.get("/orders", params={"page": 9, "per_page": 5})
    assert "per_page=5&page=1" in beyond.text  # past the last page, "newer" goes to the last one


def test_a_page_asked_for_with_a_bad_parameter_says_which_on_a_page(web):
    client = web.session()
    answer = client.get("/orders", params={"page": "abc"})
    assert answer.status_code == 422 and answer.headers["content-type"].startswith("text/html")
    assert "page: Input should be a valid integer" in answer.text
    api = client.get("/api/orders", params={"page": "abc"}, headers={"Accept": "application/json"})
    assert api.status_code == 422 and api.json()["detail"][0]["loc"] == ["query", "page"]  # scripts keep JSON


def test_a_path_nothing_serves_answers_the_dashboards_404_page_and_json_to_scripts(web):
    client = web.session()
    for path in ("/nonexistent", "/orders/does-not-exist-route/x"):
        answer = client.get(path)
        assert answer.status_code == 404 and answer.headers["content-type"].startswith("text/html"), path
        assert f"no page at {path}" in answer.text and '<a href="/">Overview</a>' in answer.text
        assert 'href="/dead-letters"' in answer.text  # the dashboard's layout, with its navigation
    escaped = client.get("/<b>x</b>")
    assert escaped.status_code == 404 and "<b>x" not in escaped.text  # the path is shown escaped
    scripts = (client.get("/api/nonexistent"), client.get("/nonexistent", headers={"Accept": "application/json"}),
               httpx.get(f"{web.url}/nonexistent", headers={"Authorization": f"Bearer {API_TOKEN}"}))
    for answer in scripts:
        assert answer.status_code == 404 and answer.json() == {"detail": "Not Found"}


def test_the_fix_drift_confirmation_counts_every_drifted_sku_lists_the_first_and_fixes_them_all(web):
    """A catalogue can drift by thousands of SKUs: the confirmation says how many, lists the first
    ``CONFIRM_SHOWN`` and links to the rest; what it confirms names no SKU, so the fix covers them all."""
    causes = ("drift", "drift", "unknown SKU")
    web.runtime.store.listings.reconciliation_add("ATVPDKIKX0DER", {"compared": 180, "differences": [
        {"sku": f"SKU-{n:03d}", "channel": "MFN", "sage": n, "amazon": n + 1, "cause": causes[n % 3],
         "since": None, "age": None} for n in range(180)]})
    client = web.session()
    csrf = web.csrf(client, "/reconciliation")
    confirm = client.post("/reconciliation/fix", data={"csrf_token": csrf})
    listed = re.findall(r'<td class="id">(SKU-\d+)</td>', confirm.text)
    assert confirm.status_code == 200 and "Drifted at the last reconciliation: 120 SKU(s)" in confirm.text
    assert len(listed) == inventory.CONFIRM_SHOWN == 50 and listed[0] == "SKU-000"
    assert "and 70 more" in confirm.text and 'href="/reconciliation?cause=drift"' in confirm.text
    assert not web.runtime.store.job_keys_pending(limit=10), "nothing is queued before the confirmation"
    done = client.post("/reconciliation/fix", data={"csrf_token": csrf, "confirm": "yes"})
    assert "reconcile_inventory queued with fix" in done.text
    [job] = web.runtime.store.job_keys_pending(limit=10)
    assert (job.job, job.message["payload"]) == ("reconcile_inventory", {"fix": True})  # every SKU, none named
