"""Every log line of a web request carries its request id as the correlation id: the caller's ``X-Request-Id``
when it sends a sane one, else a new one; the response echoes it.

An exception no handler took becomes one log line too (``web.unhandled``: the request id, the exception's type and
the frames of erpsync's code it passed, never its message — a database error's message quotes the statement's
parameters, which may be buyer data) and a 500 that names the request id, instead of the server's multi-line
traceback without one."""

from __future__ import annotations

import re
import secrets
import traceback
from pathlib import Path

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from erpsync import logs

log = logs.get(__name__)

_SANE = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
_PACKAGE = str(Path(__file__).resolve().parents[1])


def frames(exc: BaseException, limit: int = 12) -> list[str]:
    """``module.py:123 function`` of each frame in erpsync's code the exception passed, innermost last."""
    found = [f"{Path(f.filename).name}:{f.lineno} {f.name}" for f in traceback.extract_tb(exc.__traceback__)
             if f.filename.startswith(_PACKAGE)]
    return found[-limit:]


class RequestCorrelation:
    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = dict(scope.get("headers", [])).get(b"x-request-id", b"").decode("latin-1")
        request_id = given if _SANE.match(given) else secrets.token_hex(8)
        logs.correlate(request_id)
        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                message = {**message, "headers": [*message.get("headers", []),
                                                  (b"x-request-id", request_id.encode())]}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception as exc:  # noqa: BLE001 - the last stop: one log line and a 500, not a traceback
            log.error("web.unhandled", method=scope.get("method"), path=scope.get("path"),
                      error=type(exc).__name__, frames=frames(exc))
            if not started:
                response = JSONResponse({"error": f"internal error: the erpsync web log's web.unhandled line of "
                                                  f"request {request_id} says where"}, status_code=500)
                await response(scope, receive, send_with_id)
