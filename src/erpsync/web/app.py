"""The web app (FastAPI): the ORDER_CHANGE webhook receiver, ``/health`` and ``/metrics`` (Prometheus).

``POST /notifications`` takes an ORDER_CHANGE envelope when the header ``amazon.notifications.webhook_header``
equals ``secrets.webhook_token`` (compared in constant time): 202 queued, 200 a NotificationId seen before
(nothing queued), 400 not a valid envelope (too deep, a field missing or not in Amazon's format: the message names
it; recorded, nothing queued), 401 a missing or wrong token, 403 another seller's or an unconfigured marketplace's
order (recorded, nothing queued), 413 a body over 256 KiB (recorded), 503 no token configured — the receiver refuses
everything rather than accept unauthenticated orders.

:func:`start` serves an app from a background thread (the demo, tests).
"""

from __future__ import annotations

import hmac
import socket
import threading
import time

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, generate_latest
from prometheus_client.core import GaugeMetricFamily
from starlette.concurrency import run_in_threadpool

from erpsync import logs
from erpsync.amazon import listing_notifications
from erpsync.amazon.notifications import MAX_BYTES, parse_notification
from erpsync.errors import InvalidData
from erpsync.flows import intake, listing_intake
from erpsync.flows.orders import intake_lag
from erpsync.runtime import views
from erpsync.runtime.jobs import Runtime
from erpsync.runtime.store import utcnow

log = logs.get(__name__)


def create_app(runtime: Runtime) -> FastAPI:
    app = FastAPI(title="erpsync", docs_url=None, redoc_url=None, openapi_url=None)
    registry = CollectorRegistry()
    received = Counter("erpsync_webhook_notifications", "ORDER_CHANGE webhook requests by outcome", ["outcome"],
                       registry=registry)
    registry.register(_RuntimeCollector(runtime))

    def answer(status: int, outcome: str, **body) -> JSONResponse:
        received.labels(outcome).inc()
        return JSONResponse({"outcome": outcome, **body}, status_code=status)

    @app.post("/notifications")
    async def notifications(request: Request) -> JSONResponse:
        settings = runtime.settings
        token = settings.secrets.webhook_token
        if token is None:
            log.error("webhook.no_token")
            return answer(503, "disabled", error="the webhook has no token configured, so it accepts nothing: set "
                                                 "ERPSYNC_WEBHOOK_TOKEN (or webhook_token in the secrets file)")
        given = request.headers.get(settings.amazon.notifications.webhook_header, "")
        if not hmac.compare_digest(given.encode(), token.get_secret_value().encode()):
            log.warning("webhook.unauthorized", client=request.client.host if request.client else None)
            return answer(401, "unauthorized",
                          error=f"missing or wrong {settings.amazon.notifications.webhook_header} header")
        body = await _body(request, MAX_BYTES)
        if body is None:
            error = InvalidData(f"ORDER_CHANGE notification is larger than the {MAX_BYTES} bytes an envelope may "
                                f"have", code="too_large")
            await run_in_threadpool(intake.reject, runtime, error, source="webhook")
            return answer(413, "too_large", error=str(error))
        if listing_notifications.handles(body):  # inventory and listing notifications (issue 10)
            try:
                taken = await run_in_threadpool(listing_intake.receive, runtime, body, source="webhook")
            except InvalidData as exc:
                await run_in_threadpool(intake.reject, runtime, exc, source="webhook")
                return answer(400, "invalid", error=str(exc))
            return answer(202, "queued") if taken else answer(200, "duplicate")
        try:
            change = parse_notification(body)
        except InvalidData as exc:
            await run_in_threadpool(intake.reject, runtime, exc, source="webhook")
            return answer(400, "invalid", error=str(exc))
        refused = await run_in_threadpool(intake.admit, runtime, change, source="webhook")
        if refused is not None:
            return answer(403, "refused", error=refused)
        if await run_in_threadpool(intake.receive, runtime, change, source="webhook"):
            return answer(202, "queued", notification_id=change.notification_id)
        return answer(200, "duplicate", notification_id=change.notification_id)

    @app.get("/health")
    def health() -> JSONResponse:
        """Each component's state, from one cheap read of each: the state store (its schema revision) and the
        queues (messages waiting). A component that fails is "unavailable" here and its driver's error goes to the
        log only (it may name hosts, paths or users): 503 when any is."""
        components: dict[str, dict] = {}
        for name, probe in (("state_store", lambda: {"schema": runtime.store.revision}),
                            ("queues", lambda: {"messages": runtime.pending()})):
            try:
                components[name] = {"status": "ok", **probe()}
            except Exception as exc:  # noqa: BLE001 - report, do not raise: this is what a probe asks
                log.error("health.unavailable", component=name, error=f"{type(exc).__name__}: {exc}")
                components[name] = {"status": "unavailable", "error": f"{name} unreachable; see the erpsync web log"}
        ok = all(component["status"] == "ok" for component in components.values())
        body = {"status": "ok" if ok else "unavailable", "components": components}
        if ok:  # the flat fields of earlier versions
            body.update(state_schema=components["state_store"]["schema"], queues=components["queues"]["messages"])
        return JSONResponse(body, status_code=200 if ok else 503)

    @app.get("/metrics")
    def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    from erpsync.web import dashboard  # login, access control, dashboard, JSON API (web/auth.py, web/dashboard.py)
    dashboard.install(app, runtime, registry)
    return app


async def _body(request: Request, limit: int) -> bytes | None:
    """The request body, or None as soon as it is larger than ``limit`` bytes (declared or streamed)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return None
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


class _RuntimeCollector:
    """Gauges read at scrape time: queued and scheduled messages, pending jobs, open dead letters, the age of the
    oldest unfinished listing feed (the stuck-feed alert of deploy/prometheus/erpsync-rules.yml)."""

    def __init__(self, runtime: Runtime):
        self.runtime = runtime

    def describe(self):
        return []

    def collect(self):
        messages = GaugeMetricFamily("erpsync_queue_messages", "Messages waiting in a queue", labels=["queue", "state"])
        for queue, counts in self.runtime.pending().items():
            for state, count in counts.items():
                messages.add_metric([queue, state], count)
        yield messages
        store = self.runtime.store
        yield GaugeMetricFamily("erpsync_jobs_pending", "Jobs queued, scheduled or running (identity keys held)",
                                value=len(store.job_keys_pending(limit=100_000)))
        yield GaugeMetricFamily("erpsync_dead_letters_open", "Dead letters waiting for replay or discard",
                                value=len(store.dead_letters.list("open", limit=100_000)))
        oldest = GaugeMetricFamily("erpsync_feed_oldest_unfinished_seconds", "Seconds since erpsync queued the "
                                   "oldest feed Amazon has not finished (0: none unfinished)", labels=["feed_type"])
        oldest.add_metric([views.FEED_TYPE], views.oldest_unfinished_feed(store) or 0.0)
        yield oldest

        yield GaugeMetricFamily("erpsync_order_intake_lag_seconds",
                                "Age of the oldest Amazon order not yet decided in Sage (0: intake is caught up)",
                                value=intake_lag(store, utcnow()).total_seconds())


class Server:
    """An app served by uvicorn from a daemon thread; ``url``; :meth:`stop`."""

    def __init__(self, app: FastAPI, host: str = "127.0.0.1", port: int = 0):
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._sock.bind((host, port))
        self._sock.listen(128)
        self.url = f"http://{host}:{self._sock.getsockname()[1]}"
        config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._sock]},
                                        name="erpsync-web", daemon=True)

    def start(self, timeout: float = 10.0) -> Server:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the web app did not start on {self.url}")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._sock.close()


def start(runtime: Runtime, host: str = "127.0.0.1", port: int = 0) -> Server:
    """Serve :func:`create_app` for ``runtime`` on ``host:port`` (0: a free port) until ``stop()``."""
    return Server(create_app(runtime), host, port).start()
