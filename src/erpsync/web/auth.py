"""Access control for the web app: everything but ``/health``, the webhook (its own token) and the login page
needs a login session or the API token.

* **Login session** — ``POST /login`` (user name and password, ``erpsync users add``) sets the cookie
  ``erpsync_session``: HttpOnly, SameSite=Strict, Secure (``[web] cookie_secure``, on by default). Failed logins
  are counted per user name and per client in the state store: past ``[web] login_attempts`` within
  ``login_window_seconds`` the login answers 429 with Retry-After, right password or not.
* **API token** — ``Authorization: Bearer <ERPSYNC_API_TOKEN>`` for scripts and Prometheus; no cookie involved, so
  no CSRF token either.
* **CSRF** — a request that changes something (POST, PUT, PATCH, DELETE) on a session must carry the session's
  token, as the form field ``csrf_token`` (every form has it) or the header ``X-CSRF-Token``; the login form
  carries a token bound to a short-lived cookie of its own. Otherwise 403.
* ``/metrics`` is protected too, unless ``[web] metrics_public = true``.

Without credentials a browser (Accept: text/html) gets the login form with status 401, anything else a JSON 401
with ``WWW-Authenticate: Bearer``.
"""

from __future__ import annotations

import hmac
import secrets
from datetime import timedelta
from urllib.parse import parse_qs, quote

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from erpsync import logs
from erpsync.runtime.access import Access
from erpsync.runtime.jobs import Runtime
from erpsync.web import render

log = logs.get(__name__)

SESSION_COOKIE = "erpsync_session"
LOGIN_CSRF_COOKIE = "erpsync_login_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
PUBLIC = ("/health", "/notifications", "/login")  # and anything under them (e.g. /health/live)
UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}
MAX_FORM_BYTES = 1 << 20
API_USER = "api-token"


def is_public(path: str) -> bool:
    return any(path == p or path.startswith(p + "/") for p in PUBLIC)


def _header(scope: Scope, name: bytes) -> str:
    for key, value in scope.get("headers", []):
        if key == name:
            return value.decode("latin-1")
    return ""


def _cookie(scope: Scope, name: str) -> str | None:
    for part in _header(scope, b"cookie").split(";"):
        key, _, value = part.strip().partition("=")
        if key == name and value:
            return value
    return None


def _client(scope: Scope) -> str:
    client = scope.get("client")
    return client[0] if client else "unknown"


def _equal(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


class AccessControl:
    """ASGI middleware in front of the whole app (pages, API, ``/metrics``, routes other modules add later)."""

    def __init__(self, app: ASGIApp, runtime: Runtime, access: Access):
        self.app, self.runtime, self.access = app, runtime, access

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or is_public(scope["path"]):
            await self.app(scope, receive, send)
            return
        settings = self.runtime.settings
        if scope["path"] == "/metrics" and settings.web.metrics_public:
            await self.app(scope, receive, send)
            return
        authorization = _header(scope, b"authorization")
        if authorization:
            scheme, _, given = authorization.partition(" ")
            token = settings.secrets.api_token
            if scheme.lower() != "bearer" or token is None or not _equal(given.strip(),
                                                                         token.get_secret_value()):
                log.warning("web.token_refused", path=scope["path"], client=_client(scope))
                reason = ("no API token is configured (ERPSYNC_API_TOKEN)" if token is None
                          else "wrong API token")
                await self._refuse(scope, receive, send, 401, reason)
                return
            scope.setdefault("state", {})["user"] = API_USER
            await self.app(scope, receive, send)
            return
        cookie = _cookie(scope, SESSION_COOKIE)
        session = await run_in_threadpool(self.access.session, cookie) if cookie else None
        if session is None:
            await self._refuse(scope, receive, send, 401, "log in, or send Authorization: Bearer <API token>")
            return
        state = scope.setdefault("state", {})
        state.update(user=session.username, csrf_token=session.csrf_token, session_token=cookie)
        if scope["method"] in UNSAFE:
            body, given = await _csrf_given(scope, receive)
            if not given or not _equal(given, session.csrf_token):
                log.warning("web.csrf_refused", path=scope["path"], user=session.username)
                await _json(send, 403, {"error": "missing or wrong CSRF token: reload the page and submit the form "
                                                 "again (scripts: send X-CSRF-Token, or use the API token)"})
                return
            receive = _replay(body)
        await self.app(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, status: int, reason: str) -> None:
        if "text/html" in _header(scope, b"accept") and scope["method"] == "GET":
            request = Request(scope, receive)
            target = scope["path"] + (("?" + scope["query_string"].decode()) if scope.get("query_string") else "")
            response = login_page(request, status=status, next_url=target, error=None)
            await response(scope, receive, send)
            return
        await _json(send, status, {"error": reason}, {"www-authenticate": 'Bearer realm="erpsync"'})


async def _json(send: Send, status: int, body: dict, headers: dict[str, str] | None = None) -> None:
    response = JSONResponse(body, status_code=status, headers=headers)
    await response({"type": "http"}, _no_receive, send)


async def _no_receive() -> Message:  # pragma: no cover - a response never reads the request
    return {"type": "http.disconnect"}


async def _csrf_given(scope: Scope, receive: Receive) -> tuple[bytes, str | None]:
    """The request body (read whole, to hand on) and the CSRF token it or its header carries."""
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_FORM_BYTES:
            break
        chunks.append(chunk)
        if not message.get("more_body"):
            break
    body = b"".join(chunks)
    header = _header(scope, b"x-csrf-token")
    if header:
        return body, header
    if _header(scope, b"content-type").startswith("application/x-www-form-urlencoded"):
        values = parse_qs(body.decode("utf-8", "replace")).get(CSRF_FIELD)
        return body, values[0] if values else None
    return body, None


def _replay(body: bytes) -> Receive:
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive


def form_values(body: bytes) -> dict[str, list[str]]:
    """An urlencoded form's fields, each a list of values."""
    return parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)


def safe_next(url: str | None) -> str:
    """Only a path on this site (never ``//host`` or a scheme): an open redirect is a phishing tool."""
    if not url or not url.startswith("/") or url.startswith("//") or "\\" in url:
        return "/"
    return url


def set_cookie(response: Response, request: Request, name: str, value: str, max_age: int) -> None:
    settings = request.app.state.erpsync_runtime.settings
    response.set_cookie(name, value, max_age=max_age, path="/", httponly=True, samesite="strict",
                        secure=settings.web.cookie_secure or request.url.scheme == "https")


def login_page(request: Request, *, status: int, next_url: str | None, error: str | None,
               username: str = "") -> Response:
    token = secrets.token_urlsafe(32)
    response = render.page(request, "login.html", code=status, login_csrf=token, next_url=safe_next(next_url),
                           error=error, username=username)
    set_cookie(response, request, LOGIN_CSRF_COOKIE, token, max_age=3600)
    return response


def router(runtime: Runtime, access: Access) -> APIRouter:
    routes = APIRouter(include_in_schema=False)

    @routes.get("/login")
    def login_form(request: Request, next: str = "/") -> Response:  # noqa: A002 - the query parameter's name
        return login_page(request, status=200, next_url=next, error=None)

    @routes.post("/login")
    async def login(request: Request) -> Response:
        web = runtime.settings.web
        form = form_values(await request.body())
        username = (form.get("username") or [""])[0].strip()
        password = (form.get("password") or [""])[0]
        next_url = (form.get("next") or ["/"])[0]
        given = (form.get(CSRF_FIELD) or [""])[0]
        expected = request.cookies.get(LOGIN_CSRF_COOKIE, "")
        if not given or not expected or not _equal(given, expected):
            error = "the form expired or came from another site: please log in again"
            if not expected and request.url.scheme == "http" and web.cookie_secure:
                error += (" (if this repeats, the browser keeps Secure cookies from plain http: serve erpsync "
                          "over HTTPS, or set [web] cookie_secure = false on a network you trust)")
            return login_page(request, status=403, next_url=next_url, username=username, error=error)
        client = request.client.host if request.client else "unknown"
        window = timedelta(seconds=web.login_window_seconds)
        if await run_in_threadpool(access.failures, username, client, window) >= web.login_attempts:
            log.warning("web.login_throttled", user=username, client=client)
            response = login_page(request, status=429, next_url=next_url, username=username,
                                  error=f"too many failed logins: try again in {web.login_window_seconds // 60 or 1}"
                                        f" minute(s)")
            response.headers["Retry-After"] = str(web.login_window_seconds)
            return response
        if not username or not await run_in_threadpool(access.verify, username, password):
            await run_in_threadpool(access.record_failure, username, client, window)
            log.warning("web.login_failed", user=username, client=client)
            return login_page(request, status=401, next_url=next_url, username=username,
                              error="wrong user name or password")
        await run_in_threadpool(access.forget_failures, username)
        token, _session = await run_in_threadpool(access.open_session, username,
                                                  timedelta(hours=web.session_hours))
        log.info("web.login", user=username, client=client)
        response = RedirectResponse(safe_next(next_url), status_code=303)
        set_cookie(response, request, SESSION_COOKIE, token, max_age=int(web.session_hours * 3600))
        response.delete_cookie(LOGIN_CSRF_COOKIE, path="/")
        return response

    @routes.post("/logout")
    async def logout(request: Request) -> Response:
        token = request.scope.get("state", {}).get("session_token")
        if token:
            await run_in_threadpool(access.close_session, token)
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    return routes


def login_url(next_url: str) -> str:
    return "/login?next=" + quote(next_url, safe="/")
