"""A web app on a free loopback port over a fresh state store, with one user and an API token."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone

import httpx
import pytest

from erpsync import config as config_mod
from erpsync.runtime import deadletter
from erpsync.runtime.access import Access
from erpsync.runtime.jobs import Runtime, load_job_modules
from erpsync.web.app import Server, start

USER, PASSWORD, API_TOKEN = "alice", "correct horse battery", "test-api-token"


def dead_letter(runtime, record: str = "113-0000000-0000001", code: str = "unknown_sku") -> int:
    """An open dead letter of apply_order for ``record``, as the runtime captures one; returns its id."""

    class Refused(Exception):
        pass

    exc = Refused(f"order {record}: SKU 'NOPE' is not a Sage item")
    exc.code, exc.record = code, record
    return deadletter.capture(runtime.store, job="apply_order", queue="sage500", key=f"apply:{record}",
                              payload={"order": {"amazon_order_id": record}}, exc=exc, attempts=1,
                              first_failed_at=datetime.now(timezone.utc))


@dataclass
class Web:
    runtime: Runtime
    server: Server

    @property
    def url(self) -> str:
        return self.server.url

    def login(self, username: str = USER, password: str = PASSWORD, next_url: str = "/") -> httpx.Response:
        """Fetch the form, post it with its CSRF cookie; the response is the answer to the POST."""
        form = httpx.get(f"{self.url}/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', form.text).group(1)
        return httpx.post(f"{self.url}/login", cookies={"erpsync_login_csrf": form.cookies["erpsync_login_csrf"]},
                          data={"username": username, "password": password, "csrf_token": token, "next": next_url})

    def session(self) -> httpx.Client:
        """A client logged in as the test user (the cookie set by hand: http.cookiejar holds back Secure cookies
        on plain http, where browsers exempt loopback)."""
        answer = self.login()
        assert answer.status_code == 303, answer.text
        client = httpx.Client(base_url=self.url, headers={"Accept": "text/html"})
        client.headers["Cookie"] = f"erpsync_session={answer.cookies['erpsync_session']}"
        return client

    def csrf(self, client: httpx.Client, path: str = "/dead-letters") -> str:
        return re.search(r'name="csrf_token" value="([^"]+)"', client.get(path).text).group(1)


@pytest.fixture
def make_web(workdir, monkeypatch) -> Iterator:
    monkeypatch.setenv("ERPSYNC_API_TOKEN", API_TOKEN)
    load_job_modules()
    made: list[Web] = []

    def make(toml: str = "") -> Web:
        (workdir / "erpsync.toml").write_text(toml)
        runtime = Runtime(config_mod.load(workdir / "erpsync.toml"), config_path=workdir / "erpsync.toml")
        Access(runtime.store).add_user(USER, PASSWORD)
        web = Web(runtime, start(runtime))
        made.append(web)
        return web

    yield make
    for web in made:
        web.server.stop()
        web.runtime.close()


@pytest.fixture
def web(make_web) -> Web:
    return make_web()


# the order pipeline (sandbox, Sage replica, queues) of the flow tests, for the browser test
from tests.flows.conftest import make_pipeline, pipeline, sage_template, sandbox  # noqa: E402,F401
