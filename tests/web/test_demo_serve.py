"""``erpsync demo --serve`` as a visitor uses it: the cycle runs, a demo login is printed, and the Demo page's buttons
drive the sandbox — an order with an unknown SKU becomes a dead letter, the map button and a replay bring it into
Sage, the ship button has it confirmed on Amazon; SIGTERM ends it all."""

from __future__ import annotations

import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest

from tests.conftest import REPO
from tests.processes import stop, wait_until
from tests.web.test_browser import ARGS, CHROMIUM

ERPSYNC = str(Path(sys.executable).parent / "erpsync")
LOGIN = re.compile(r"open (http://\S+)/demo and log in as (\S+) with password (\S+)\.")


def lines_of(process: subprocess.Popen) -> queue.Queue:
    out: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: [out.put(line) for line in process.stdout], daemon=True).start()
    return out


@pytest.mark.slow
def screenshot_demo_page(url: str, user: str, password: str, shots: Path) -> None:
    """The Demo page as a visitor sees it, in Debian's chromium (when this machine has it)."""
    if not Path(CHROMIUM).exists():
        return
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            page = browser.new_context(viewport={"width": 1280, "height": 760}).new_page()
            page.goto(f"{url}/demo")
            page.fill("input[name=username]", user)
            page.fill("input[name=password]", password)
            page.click("button:has-text('Log in')")
            page.wait_for_url(f"{url}/demo")
            page.click("button:has-text('Place 5 orders')")
            assert page.locator("[role=status]").inner_text().startswith("placed ")
            page.screenshot(path=shots / "demo.png", full_page=True)
        finally:
            browser.close()


@pytest.fixture
def shots(tmp_path) -> Path:
    given = os.environ.get("ERPSYNC_SCREENSHOTS")
    target = REPO / given if given else tmp_path / "screenshots"  # relative to the repository
    target.mkdir(parents=True, exist_ok=True)
    return target


def test_the_guided_demo_keeps_running_and_its_buttons_drive_a_repair(workdir, shots):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen([ERPSYNC, "demo", "--serve", "--orders", "3", "--port", str(port)], cwd=workdir,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output = lines_of(process)
    seen: list[str] = []

    def login_line():
        while not output.empty():
            seen.append(output.get())
        assert process.poll() is None, "".join(seen)
        return next((m for m in map(LOGIN.search, seen) if m), None)

    try:
        url, user, password = wait_until(login_line, "the demo login").groups()
        assert httpx.get(f"{url}/demo").status_code == 401  # the demo page is behind the login too
        form = httpx.get(f"{url}/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', form.text).group(1)
        answer = httpx.post(f"{url}/login", data={"username": user, "password": password, "csrf_token": token},
                            cookies={"erpsync_login_csrf": form.cookies["erpsync_login_csrf"]})
        client = httpx.Client(base_url=url, timeout=30,
                              headers={"Cookie": f"erpsync_session={answer.cookies['erpsync_session']}"})
        page = client.get("/demo")
        assert page.status_code == 200 and "Place an order with SKU WIDGET-BLUE-L" in page.text
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)

        def press(action: str) -> str:
            result = client.post("/demo", data={"action": action, "csrf_token": csrf})
            assert result.status_code == 200, result.text
            return re.search(r'role="status">([^<]*)<', result.text).group(1)

        placed = press("unknown-sku")
        oid = re.search(r"placed (\S+) with SKU", placed).group(1)
        dead = wait_until(lambda: client.get("/api/dead-letters", params={"q": oid}).json()["dead_letters"],
                        "the unknown SKU's dead letter")
        assert dead[0]["error_code"] == "unknown_sku"
        assert "now maps WIDGET-BLUE-L" in press("map-sku")
        replay = client.post("/dead-letters/action", data={"action": "replay", "id": dead[0]["id"],
                                                           "confirm": "yes", "csrf_token": csrf})
        assert "queued again" in replay.text
        wait_until(lambda: client.get(f"/api/orders/{oid}").json()["journal"]["status"] == "written", "the order")
        assert "shipped 1 order(s)" in press("ship")
        wait_until(lambda: client.get(f"/api/orders/{oid}").json()["journal"]["status"] == "confirmed",
                 "its confirmation on Amazon")
        assert press("fault-throttle").startswith("getOrder now answers 429")
        assert press("clear-faults") == "faults cleared"
        screenshot_demo_page(url, user, password, shots)
    finally:
        stop(process, signal.SIGTERM)
    assert process.returncode == 0
