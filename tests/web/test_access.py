"""Access control of the web app over real HTTP: 401 without credentials on every protected route, the API token,
login sessions and their cookie flags, CSRF, the login rate limit, and /metrics."""

from __future__ import annotations

import re
from typing import ClassVar

import httpx
import pytest
from fastapi.routing import iter_route_contexts

from erpsync.web import demo
from erpsync.web.auth import is_public
from tests.web.conftest import API_TOKEN, PASSWORD, USER, dead_letter

BEARER = {"Authorization": f"Bearer {API_TOKEN}"}


def protected_routes(app) -> list[tuple[str, str]]:
    """(method, path with its parameters filled in) of every route the app serves but the public ones, as FastAPI
    routes them: a router included in another one keeps the prefixes of both (``/api`` + ``/feeds``)."""
    found = []
    for route in iter_route_contexts(app.routes):
        assert route.path and route.methods, f"{route!r}: not an HTTP route, so this test cannot request it"
        if is_public(route.path):
            continue
        path = re.sub(r"\{(\w+)(:\w+)?\}", lambda m: PARAMETERS[m.group(1)], route.path)
        for method in sorted(route.methods - {"HEAD"}):
            found.append((method, path))
    return found


PARAMETERS = {"amazon_order_id": "113-0000000-0000001", "dead_letter_id": "1", "action": "discard",
              "batch_id": "1", "settlement_id": "23456789012"}  # a new parameter fails the test until named here


class NoControls:
    actions: ClassVar[dict[str, str]] = {}

    def act(self, action: str) -> str:  # pragma: no cover - refused before it is called
        raise AssertionError(action)


def test_every_route_but_health_and_the_webhook_refuses_a_visitor_without_credentials(web):
    dead_letter(web.runtime)
    app = web.server._server.config.app
    demo.install(app, NoControls())  # the guided demo's page (erpsync demo --serve) is behind the login too
    routes = protected_routes(app)
    paths = {path for _, path in routes}
    assert {"/", "/orders", "/dead-letters", "/api/status", "/metrics", "/openapi.json", "/logout",
            "/dead-letters/action", "/feeds", "/feeds/1", "/reconciliation", "/reconciliation/fix", "/settlements",
            "/settlements/23456789012", "/api/settlements", "/api/settlements/23456789012", "/api/feeds",
            "/api/feeds/1", "/api/reconciliation", "/api/reconciliation/fix", "/demo"} <= paths
    assert len(routes) == len(set(routes)), "a route was counted twice: its path lost a prefix"
    public = {route.path for route in iter_route_contexts(app.routes) if is_public(route.path)}
    assert public == {"/health", "/notifications", "/login"}
    for method, path in routes:
        answer = httpx.request(method, web.url + path)
        assert answer.status_code == 401, (method, path, answer.text)
        assert answer.headers["www-authenticate"].startswith("Bearer")
        wrong = httpx.request(method, web.url + path, headers={"Authorization": "Bearer not-the-token"})
        assert wrong.status_code == 401, (method, path)
    # a browser gets the login form (status 401) that brings it back where it was going
    page = httpx.get(f"{web.url}/dead-letters?reason=unknown_sku", headers={"Accept": "text/html"})
    assert page.status_code == 401 and 'action="/login"' in page.text
    assert 'name="next" value="/dead-letters?reason=unknown_sku"' in page.text
    # nothing was done on the way: the dead letter is still open
    assert web.runtime.store.dead_letters.get(1).status == "open"
    # a path nothing serves is no way around the login: the same 401 as a real page, so it tells a visitor nothing
    for path in ("/nonexistent", "/orders/does-not-exist-route/x", "/api/nonexistent"):
        assert httpx.get(web.url + path).status_code == 401, path
        page = httpx.get(web.url + path, headers={"Accept": "text/html"})
        assert page.status_code == 401 and 'action="/login"' in page.text, path
    beside = httpx.get(f"{web.url}/health/nonexistent", headers={"Accept": "text/html"})  # under a public path
    assert beside.status_code == 404 and beside.json() == {"detail": "Not Found"}  # no page, no navigation
    # public: the probe and the webhook (which refuses on its own token)
    assert httpx.get(f"{web.url}/health").status_code == 200
    assert httpx.post(f"{web.url}/notifications", content=b"{}").status_code in (401, 503)


def test_the_api_token_opens_the_api_and_the_pages(web):
    dead = dead_letter(web.runtime)
    status = httpx.get(f"{web.url}/api/status", headers=BEARER)
    assert status.status_code == 200 and status.json()["dead_letters_open"] == 1
    listed = httpx.get(f"{web.url}/api/dead-letters", headers=BEARER).json()
    assert listed["reasons"] == [{"job": "apply_order", "reason": "unknown_sku", "count": 1}]
    assert [d["id"] for d in listed["dead_letters"]] == [dead]
    # a script needs no CSRF token: there is no cookie to ride on
    done = httpx.post(f"{web.url}/api/dead-letters/{dead}/discard", headers=BEARER)
    assert done.status_code == 200 and done.json()["dead_letter"]["status"] == "discarded"
    again = httpx.post(f"{web.url}/api/dead-letters/{dead}/discard", headers=BEARER)
    assert again.status_code == 409 and "discarded, not open" in again.json()["detail"]
    spec = httpx.get(f"{web.url}/openapi.json", headers=BEARER).json()
    assert {"/api/status", "/api/orders", "/api/orders/{amazon_order_id}", "/api/dead-letters",
            "/api/dead-letters/{dead_letter_id}", "/api/dead-letters/{dead_letter_id}/{action}",
            "/api/feeds", "/api/feeds/{batch_id}", "/api/reconciliation", "/api/reconciliation/fix",
            "/api/settlements", "/api/settlements/{settlement_id}"} == set(spec["paths"])


def test_no_api_token_configured_means_no_token_is_accepted(make_web, monkeypatch):
    monkeypatch.delenv("ERPSYNC_API_TOKEN")
    web = make_web()
    answer = httpx.get(f"{web.url}/api/status", headers={"Authorization": "Bearer anything"})
    assert answer.status_code == 401 and "no API token is configured" in answer.json()["error"]


def test_login_sets_a_hardened_session_cookie_and_logout_ends_it(web):
    assert web.login(password="wrong password!").status_code == 401
    answer = web.login(next_url="/orders")
    assert answer.status_code == 303 and answer.headers["location"] == "/orders"
    cookie = next(c for c in answer.headers.get_list("set-cookie") if c.startswith("erpsync_session="))
    flags = {part.strip().lower() for part in cookie.split(";")[1:]}
    assert {"httponly", "secure", "samesite=strict", "path=/"} <= flags
    token = answer.cookies["erpsync_session"]
    session = {"Cookie": f"erpsync_session={token}"}
    page = httpx.get(f"{web.url}/orders", headers=session)
    assert page.status_code == 200 and USER in page.text
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    assert httpx.post(f"{web.url}/logout", headers=session, data={"csrf_token": csrf}).status_code == 303
    assert httpx.get(f"{web.url}/orders", headers=session).status_code == 401
    # only the store's hash of the token is kept: the token itself opens nothing from a copy of the store
    import sqlalchemy as sa

    from erpsync.runtime.store import web_sessions
    with web.runtime.store.reader.connect() as conn:
        assert token not in {row.token_hash for row in conn.execute(sa.select(web_sessions))}


def test_login_goes_only_to_paths_on_this_site(web):
    for target in ("//evil.example/x", "https://evil.example/", "/\\evil.example"):
        assert web.login(next_url=target).headers["location"] == "/"


def test_forms_refuse_a_missing_or_wrong_csrf_token(web):
    dead = dead_letter(web.runtime)
    client = web.session()
    form = {"action": "discard", "id": str(dead), "confirm": "yes"}
    for token in (None, "forged"):
        data = dict(form, **({"csrf_token": token} if token else {}))
        answer = client.post("/dead-letters/action", data=data)
        assert answer.status_code == 403 and "CSRF" in answer.json()["error"]
    assert web.runtime.store.dead_letters.get(dead).status == "open"
    # the login form has a token of its own, bound to its cookie
    login = httpx.post(f"{web.url}/login", data={"username": USER, "password": PASSWORD, "csrf_token": "x"},
                       cookies={"erpsync_login_csrf": "y"})
    assert login.status_code == 403 and "erpsync_session" not in login.cookies
    # no login cookie came back at all over plain http: the page says why that may be and what to change
    cookieless = httpx.post(f"{web.url}/login", data={"username": USER, "password": PASSWORD, "csrf_token": "x"})
    assert cookieless.status_code == 403 and "[web] cookie_secure = false" in cookieless.text
    # with the page's token it goes through (and says what it did)
    answer = client.post("/dead-letters/action", data=dict(form, csrf_token=web.csrf(client)))
    assert answer.status_code == 200 and f"dead letter {dead}: discarded" in answer.text
    assert web.runtime.store.dead_letters.get(dead).status == "discarded"


def test_login_is_rate_limited_per_user_name(make_web):
    web = make_web("[web]\nlogin_attempts = 3\nlogin_window_seconds = 600\n")
    for _ in range(3):
        assert web.login(password="not the password").status_code == 401
    refused = web.login()  # the right password, too late
    assert refused.status_code == 429 and refused.headers["retry-after"] == "600"
    assert "too many failed logins" in refused.text and "erpsync_session" not in refused.cookies


@pytest.mark.parametrize("public", [False, True])
def test_metrics_need_the_token_unless_public(make_web, public):
    web = make_web(f"[web]\nmetrics_public = {'true' if public else 'false'}\n")
    dead_letter(web.runtime)
    dead_letter(web.runtime, "113-0000000-0000002", code="total_mismatch")
    web.runtime.store.journal_set("113-0000000-0000003", "written", so_key=7, tran_no="0000007")
    anonymous = httpx.get(f"{web.url}/metrics")
    assert anonymous.status_code == (200 if public else 401)
    text = httpx.get(f"{web.url}/metrics", headers=BEARER).text
    assert "erpsync_dead_letters_open 2.0" in text
    assert 'erpsync_dead_letters_open_by_reason{job="apply_order",reason="unknown_sku"} 1.0' in text
    assert 'erpsync_orders{status="written"} 1.0' in text
    assert 'erpsync_flow_backlog{flow="orders"} 0.0' in text
