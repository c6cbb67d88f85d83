"""Every log line of a web request carries its request id as the correlation id: the caller's ``X-Request-Id``
when it sends a sane one, else a new one; the response echoes it."""

from __future__ import annotations

import re
import secrets

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from erpsync import logs

_SANE = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


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

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []),
                                                  (b"x-request-id", request_id.encode())]}
            await send(message)

        await self.app(scope, receive, send_with_id)
