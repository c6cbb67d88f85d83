"""The Feeds and Reconciliation pages over real HTTP, after a real stock sync against the sandbox: each feed with its
counts from the processing report, its messages' SKUs and results (a refused one linked to its dead letter), the
last reconciliation's differences with their cause, and the fix queued only after its confirmation page."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
from typer.testing import CliRunner

from erpsync.cli import app
from erpsync.runtime.access import Access
from erpsync.web import inventory
from erpsync.web.app import start as start_web
from tests.flows.listing_helpers import SKUS, expected_quantities, feeds_done, listed, sandbox_listings, sync
from tests.web.conftest import PASSWORD, USER, Web
from tests.web.test_browser import browser, shots  # noqa: F401 - the browser test's fixtures

US = "ATVPDKIKX0DER"
BEARER = {"Authorization": "Bearer test-api-token"}  # tests/flows/conftest.py's API_TOKEN


@pytest.fixture
def shop(make_pipeline):
    pipeline = make_pipeline(inventory={"include": SKUS, "feed_poll_seconds": 20}, prices={"enabled": False},
                             web={"timezone": "America/Chicago"})
    listed(pipeline)
    Access(pipeline.runtime.store).add_user(USER, PASSWORD)
    server = start_web(pipeline.runtime)
    yield pipeline, Web(pipeline.runtime, server)
    server.stop()


def reconcile(shop) -> dict:
    result = CliRunner().invoke(app, ["reconcile", "inventory", "--json", "--config", str(shop.config_path)])
    assert result.exit_code == 0, result.output
    [one] = json.loads(result.stdout)
    return one


def test_the_feeds_pages_show_a_synced_feed_and_its_refused_message(shop):
    pipeline, web = shop
    for path in ("/feeds", "/feeds/1", "/reconciliation", "/api/feeds", "/api/feeds/1", "/api/reconciliation"):
        assert httpx.get(web.url + path).status_code == 401, path
    refused = "JACKET-BLU-L"
    with pipeline.sandbox.world.lock:  # no listing on Amazon: its PATCH message is refused, the others accepted
        del pipeline.sandbox.world.listings[refused]
    sync(pipeline)
    with pipeline.workers():
        pipeline.wait(lambda: feeds_done(pipeline), what="the feed to finish")
    [feed] = pipeline.runtime.store.listings.feeds()
    dead = next(d for d in pipeline.runtime.store.dead_letters.list() if d.record == refused)

    client = web.session()
    page = client.get("/feeds")
    assert page.status_code == 200
    row = re.search(rf'<tr data-feed="{feed.id}">(.*?)</tr>', page.text, re.S).group(1)
    cells = [re.sub(r"<[^>]+>", "", cell).strip() for cell in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]
    shown = feed.submitted_at.astimezone(ZoneInfo("America/Chicago")).strftime("%Y-%m-%d %H:%M:%S %Z")
    assert cells[:8] == [str(feed.id), US, feed.feed_id, "DONE", shown, cells[5], str(len(SKUS)), str(len(SKUS) - 1)]
    assert cells[8] == "1" and cells[9] == "0"  # refused by the processing report; no resubmission
    assert client.get("/feeds", params={"status": "FATAL"}).text.count("<tr data-feed=") == 0
    assert client.get("/feeds", params={"status": "DONE"}).text.count("<tr data-feed=") == 1

    detail = client.get(f"/feeds/{feed.id}").text
    assert f'<a href="/dead-letters/{dead.id}">dead letter {dead.id}</a>' in detail
    for message in pipeline.runtime.store.listings.feed(feed.id).messages:
        assert message["sku"] in detail
    assert client.get("/feeds/999").status_code == 404

    data = httpx.get(f"{web.url}/api/feeds/{feed.id}", headers=BEARER).json()
    results = {m["sku"]: (m["result"], m["dead_letter"]) for m in data["message_results"]}
    assert results == {sku: ("refused", dead.id) if sku == refused else ("accepted", None) for sku in SKUS}
    listed_feeds = httpx.get(f"{web.url}/api/feeds", params={"status": "DONE"}, headers=BEARER).json()
    assert [(f["id"], f["accepted"], f["refused"], f["messages"]) for f in listed_feeds["feeds"]] == \
        [(feed.id, len(SKUS) - 1, 1, len(SKUS))]
    assert httpx.get(f"{web.url}/api/feeds", params={"status": "nope"}, headers=BEARER).status_code == 400


def test_the_reconciliation_page_shows_the_drift_and_the_fix_waits_for_its_confirmation(shop, monkeypatch):
    pipeline, web = shop
    monkeypatch.setattr(inventory, "CONFIRM_SHOWN", 1)  # the confirmation lists one of the two drifted SKUs
    client = web.session()
    assert "Never reconciled" in client.get("/reconciliation").text
    sync(pipeline)
    with pipeline.workers():
        pipeline.wait(lambda: feeds_done(pipeline), what="the first sync")
    moved = pipeline.control("POST", "listings/drift", json={"skus": [SKUS[1], SKUS[2]], "delta": 3})["drifted"]
    drifted = next(d for d in moved if d["sku"] == SKUS[1])
    found = reconcile(pipeline)
    assert [d["cause"] for d in found["differences"]] == ["drift", "drift"]

    page = client.get("/reconciliation").text
    section = re.search(rf'<section data-marketplace="{US}">(.*?)</section>', page, re.S).group(1)
    row = next(r for r in re.findall(r"<tr>(.*?)</tr>", section, re.S) if SKUS[1] in r)
    cells = [re.sub(r"<[^>]+>", "", cell).strip() for cell in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]
    assert cells[:5] == [SKUS[1], "MFN", str(drifted["before"]), str(drifted["after"]), "drift"]
    assert cells[6] == next(d for d in found["differences"] if d["sku"] == SKUS[1])["age"]
    assert "CST" in section or "CDT" in section  # the site's zone
    api = httpx.get(f"{web.url}/api/reconciliation", headers=BEARER).json()
    assert api["marketplaces"][0]["differences"] == found["differences"]

    csrf = web.csrf(client, "/reconciliation")
    assert client.post("/reconciliation/fix", data={"confirm": "yes"}).status_code == 403  # no CSRF token
    confirm = client.post("/reconciliation/fix", data={"csrf_token": csrf})
    assert confirm.status_code == 200 and "Confirm fix" in confirm.text and "2 SKU(s)" in confirm.text
    assert "and 1 more" in confirm.text and sum(sku in confirm.text for sku in SKUS[1:3]) == 1
    assert not pipeline.runtime.store.job_keys_pending(limit=10), "nothing is queued before the confirmation"
    done = client.post("/reconciliation/fix", data={"csrf_token": csrf, "confirm": "yes"})
    assert "reconcile_inventory queued with fix" in done.text
    assert "already queued" in client.post("/reconciliation/fix", data={"csrf_token": csrf, "confirm": "yes"}).text
    with pipeline.workers():
        pipeline.wait(lambda: (pipeline.runtime.store.listings.reconciliation_last(US)[1].get("fixed")
                               == sorted(SKUS[1:3]) and feeds_done(pipeline)),
                      timeout=60, what="the fix to be reconciled and sent")
    for sku in SKUS[1:3]:  # the one not listed on the confirmation page too
        assert sandbox_listings(pipeline)[sku]["quantity"] == expected_quantities(pipeline)[sku]
    assert "fixed 2" in client.get("/reconciliation").text


def test_screenshots_of_the_feeds_and_reconciliation_pages(shop, request):
    """The pages in a real browser after a sync with one refused SKU and a drift reconciled (the README's
    screenshots: ``ERPSYNC_SCREENSHOTS=docs/screenshots``)."""
    from tests.web import test_browser

    if not Path(test_browser.CHROMIUM).exists() and os.environ.get("CI") != "true":
        pytest.skip(f"{test_browser.CHROMIUM} is missing (apt-get install chromium; .ci/run installs it)")
    chromium, folder = request.getfixturevalue("browser"), request.getfixturevalue("shots")
    pipeline, web = shop
    with pipeline.sandbox.world.lock:
        del pipeline.sandbox.world.listings["JACKET-BLU-L"]
    sync(pipeline)
    with pipeline.workers():
        pipeline.wait(lambda: feeds_done(pipeline), what="the feed to finish")
    pipeline.control("POST", "listings/drift", json={"skus": [SKUS[1]], "delta": 3})
    reconcile(pipeline)
    page = chromium.new_context(viewport={"width": 1280, "height": 860}).new_page()
    page.goto(f"{web.url}/login?next=/feeds")
    page.fill("input[name=username]", USER)
    page.fill("input[name=password]", PASSWORD)
    page.click("button:has-text('Log in')")
    page.wait_for_url(f"{web.url}/feeds")
    assert page.locator("tr[data-feed]").count() == 1
    page.screenshot(path=folder / "feeds.png", full_page=True)
    page.click("tr[data-feed] a")
    assert "refused" in page.inner_text("main") and "accepted" in page.inner_text("main")
    page.screenshot(path=folder / "feed.png", full_page=True)
    page.click("header >> text=Reconciliation")
    assert "drift" in page.inner_text("main")
    page.screenshot(path=folder / "reconciliation.png", full_page=True)
    page.click("button:has-text('fix drift')")
    assert page.locator("h1").inner_text().startswith("Reconcile") and SKUS[1] in page.inner_text("main")
    page.screenshot(path=folder / "reconciliation-fix.png", full_page=True)
