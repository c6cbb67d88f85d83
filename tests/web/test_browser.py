"""The dashboard in a real browser (Playwright driving Debian's chromium): a person logs in, finds the dead letter
of an order with an unknown SKU, fixes the mapping, replays it from the dashboard and sees the order in Sage, then
finds the settlement Amazon paid posted to the ledger; a visitor without a login gets the login form on every page. A screenshot of each page is saved (into
``$ERPSYNC_SCREENSHOTS`` when set — ``docs/screenshots`` for the README — else into the test's directory)."""

from __future__ import annotations

import os
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from erpsync.runtime.access import Access
from erpsync.web.app import start as start_web
from tests.conftest import REPO

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
PAGES = ("/", "/orders", "/dead-letters", "/feeds", "/reconciliation", "/settlements")

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists() and os.environ.get("CI") != "true",
                                reason=f"{CHROMIUM} is missing (apt-get install chromium; .ci/run installs it)")


@pytest.fixture
def browser():
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def shots(tmp_path) -> Path:
    given = os.environ.get("ERPSYNC_SCREENSHOTS")
    target = REPO / given if given else tmp_path / "screenshots"  # relative to the repository
    target.mkdir(parents=True, exist_ok=True)
    return target


def test_a_person_repairs_an_unknown_sku_from_the_dashboard(make_pipeline, browser, shots):
    pipeline = make_pipeline(web={"timezone": "America/Chicago"})
    Access(pipeline.runtime.store).add_user("operator", "a long enough password")
    server = start_web(pipeline.runtime)
    pipeline.webhook_to(f"{server.url}/notifications")
    url = server.url
    try:
        good = pipeline.generate(2, seed=21, multi_line_share=0)
        [oid] = pipeline.generate(1, seed=22, skus=["WIDGET-BLUE-L"], multi_line_share=0)
        with pipeline.workers():
            pipeline.wait_journal(good, ("written",), timeout=60)
            pipeline.wait(lambda: pipeline.runtime.store.dead_letters.list(), what="the unknown SKU's dead letter")
            page = browser.new_context(viewport={"width": 1280, "height": 860}).new_page()

            # a visitor without a login is refused on every page, and shown the login form
            for path in (*PAGES, f"/orders/{oid}"):
                answer = page.goto(url + path)
                assert answer.status == 401, path
                assert page.locator("form[action='/login']").is_visible()
            page.screenshot(path=shots / "login.png")

            page.fill("input[name=username]", "operator")
            page.fill("input[name=password]", "a long enough password")
            page.click("button:has-text('Log in')")
            page.wait_for_url(url + "/orders/" + oid)  # back where the visitor was going
            page.goto(url + "/")
            assert page.locator("[data-flow=orders]").is_visible()
            assert "Oldest unfinished" in page.locator("[data-flow=feeds]").inner_text()
            page.screenshot(path=shots / "overview.png", full_page=True)

            page.click("header >> text=Dead letters")
            row = page.locator("tr", has_text=oid)
            assert "unknown_sku" in row.inner_text() and "WIDGET-BLUE-L" in row.inner_text()
            page.screenshot(path=shots / "dead-letters.png", full_page=True)
            row.locator("a").first.click()
            assert "closest items: WIDGET-BLU-L" in page.inner_text("main")
            page.screenshot(path=shots / "dead-letter.png", full_page=True)

            # the operator fixes the mapping as the message says, then replays from the page
            pipeline.configure("mapping", sku_aliases={"WIDGET-BLUE-L": "WIDGET-BLU-L"})
            page.click("button:has-text('Replay')")
            assert page.locator("h1").inner_text() == "Replay 1 dead letter(s)?"
            page.screenshot(path=shots / "confirm.png", full_page=True)
            assert pipeline.runtime.store.dead_letters.list("open"), "nothing happens before the confirmation"
            page.click("button:has-text('Confirm replay')")
            assert "queued again" in page.inner_text("ul.result")
            page.screenshot(path=shots / "replayed.png", full_page=True)
            pipeline.wait_journal([oid], ("written",), timeout=60)

            # before any settlement the page says so; then Amazon closes one and the workers post it
            page.goto(url + "/settlements")
            assert "no settlements imported yet" in page.inner_text("main")
            pipeline.generate(3, seed=23, afn_share=1.0)  # FBA orders: Amazon ships them, the settlement pays
            closed = pipeline.control("POST", "settlements", json={})
            sid = closed["settlementId"]
            pipeline.runtime.enqueue("sync_settlements", key="sync_settlements")
            pipeline.wait(lambda: (r := pipeline.runtime.store.settlement_get(sid)) is not None
                          and r.status == "posted", timeout=60, what=f"settlement {sid} posted")

        sage = pipeline.sage_order(oid)
        assert sage is not None and {line.ItemID for line in sage.lines} == {"WIDGET-BLU-L"}
        page.goto(f"{url}/orders?q={oid}")
        assert page.locator("tr", has_text=oid).locator(".badge").inner_text() == "written"
        page.goto(f"{url}/orders")
        page.screenshot(path=shots / "orders.png", full_page=True)
        page.goto(f"{url}/orders/{oid}")
        main = page.inner_text("main")
        entry = pipeline.runtime.store.journal_get(oid)
        assert entry.tran_no and entry.tran_no in main and "order.written" in main
        shown = entry.updated_at.astimezone(ZoneInfo("America/Chicago")).strftime("%Y-%m-%d %H:%M:%S %Z")
        assert shown in main and "Times in America/Chicago" in main  # the site's zone, not UTC
        page.screenshot(path=shots / "order.png", full_page=True)
        page.goto(f"{url}/feeds")  # their screenshots, with a feed and a reconciliation: test_inventory_pages.py
        assert "no feeds match" in page.inner_text("main")
        page.goto(f"{url}/reconciliation")
        assert "Never reconciled" in page.inner_text("main")
        page.goto(f"{url}/settlements")
        row = page.locator(f"tr[data-settlement='{sid}']")
        assert row.locator(".badge").inner_text() == "posted" and closed["totalAmount"] in row.inner_text()
        page.screenshot(path=shots / "settlements.png", full_page=True)
        row.locator("a").first.click()
        main = page.inner_text("main")
        assert f"Settlement {sid}" in main and "equals total-amount" in main and "BatchKey" in main
        assert f"deposit: settlement {sid} total-amount {closed['totalAmount']}" in main
        page.screenshot(path=shots / "settlement.png", full_page=True)
    finally:
        server.stop()
