"""The dashboard (server-rendered pages, plain forms) and the JSON API it is built on, described at
``/openapi.json``. :func:`install` adds both, the login (:mod:`erpsync.web.auth`) and the status gauges to the app.

Pages: ``/`` sync status per flow, ``/orders`` the order journal (filter by status, search an order id or TranNo),
``/orders/{id}`` one order's history, ``/dead-letters`` grouped by reason with review, replay and discard (one or
many, always through a confirmation page), ``/dead-letters/{id}``; ``/feeds`` and ``/reconciliation`` from
:mod:`erpsync.web.inventory`. ``/settlements`` the settlements from the state store (filter by
status, search a settlement or report id), ``/settlements/{id}`` one settlement's row detail summed per account
and its dead letters.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, FastAPI, HTTPException, Query, Request
from fastapi.exception_handlers import http_exception_handler, request_validation_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, Response
from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

import erpsync
from erpsync.errors import ErpsyncError
from erpsync.runtime import deadletter, views
from erpsync.runtime.access import Access
from erpsync.runtime.jobs import Runtime
from erpsync.runtime.store import DEAD_LETTER_STATUSES, JOURNAL_STATUSES, SettlementRecord
from erpsync.web import auth, inventory, render
from erpsync.web.correlation import RequestCorrelation

ACTIONS = ("replay", "discard")


def install(app: FastAPI, runtime: Runtime, registry: CollectorRegistry, demo: Any = None) -> None:
    """Put access control in front of ``app`` and add the login, the dashboard, the API and the status gauges."""
    access = Access(runtime.store)
    app.state.erpsync_runtime = runtime
    app.state.erpsync_demo = demo
    registry.register(StatusCollector(runtime))
    app.include_router(auth.router(runtime, access))
    api = api_router(runtime)
    app.include_router(api)
    app.include_router(pages_router(runtime))
    app.add_middleware(auth.AccessControl, runtime=runtime, access=access)
    app.add_middleware(RequestCorrelation)  # outermost: refusals are logged with the request id too
    schema = get_openapi(title="erpsync", version=erpsync.__version__, routes=api.routes,
                         description="The JSON API behind the erpsync dashboard. Authenticate with "
                                     "`Authorization: Bearer <ERPSYNC_API_TOKEN>` or a login session "
                                     "(then send the session's CSRF token as `X-CSRF-Token` on POST).")

    @app.get("/openapi.json", include_in_schema=False)
    def openapi() -> JSONResponse:
        return JSONResponse(schema)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Response:
        """A page asked for with a bad parameter (``?page=abc``) answers a page that says which, not JSON."""
        if not _wants_page(request):
            return await request_validation_exception_handler(request, exc)
        lines = [f"{' '.join(str(part) for part in error['loc'][1:]) or 'request'}: {error['msg']}"
                 for error in exc.errors()]
        return render.page(request, "message.html", code=422, title="Bad request", lines=lines,
                           back=request.url.path)

    @app.exception_handler(StarletteHTTPException)
    async def not_found(request: Request, exc: StarletteHTTPException) -> Response:
        """A path nothing serves, asked for by a signed-in browser, answers the dashboard's 404 page rather than
        JSON. Access control runs first: a visitor was sent the login form before routing, and one on a public
        prefix (``/health/x``) keeps the JSON answer, so the page tells a stranger nothing."""
        if exc.status_code != 404 or not _wants_page(request) or not request.scope.get("state", {}).get("user"):
            return await http_exception_handler(request, exc)
        what = f"no page at {request.url.path}" if exc.detail == "Not Found" else str(exc.detail)
        return render.page(request, "message.html", code=404, title="Not found", lines=[what], back="/",
                           back_label="Overview")


def _wants_page(request: Request) -> bool:
    return (request.method == "GET" and not request.url.path.startswith("/api/")
            and "text/html" in request.headers.get("accept", ""))


# --- the JSON API --------------------------------------------------------------------------------------------


def _dead_letter_json(d) -> dict[str, Any]:
    data = d.as_dict()
    data.pop("payload")
    return data


def _act(runtime: Runtime, action: str, dead_id: int) -> str:
    """Replay (queue again) or discard one dead letter; returns what happened, in words."""
    if action == "replay":
        result = deadletter.replay(runtime, dead_id)
        return f"dead letter {dead_id}: {result.dead_letter.job} queued again on {result.dead_letter.queue}"
    deadletter.discard(runtime.store, dead_id)
    return f"dead letter {dead_id}: discarded"


def api_router(runtime: Runtime) -> APIRouter:
    api = APIRouter(prefix="/api", tags=["dashboard"])
    api.include_router(inventory.api_router(runtime))  # /api/feeds, /api/reconciliation (web/inventory.py)
    store = runtime.store

    @api.get("/status", summary="Sync status per flow, queues and the journal by status")
    def status() -> dict[str, Any]:
        return {"flows": [f.as_dict() for f in views.flow_status(store)], "queues": runtime.pending(),
                "journal": views.journal_counts(store),
                "dead_letters_open": sum(n for _, _, n in views.dead_letter_reasons(store))}

    @api.get("/orders", summary="The order journal, most recently changed first")
    def orders(status: str | None = Query(None, description=f"one of {', '.join(JOURNAL_STATUSES)}"),
               q: str | None = Query(None, description="an Amazon order id (or its start) or a Sage TranNo"),
               page: int = Query(1, ge=1), per_page: int = Query(50, ge=1, le=views.MAX_PAGE)) -> dict[str, Any]:
        if status and status not in JOURNAL_STATUSES:
            raise HTTPException(400, f"status {status!r}: use one of {', '.join(JOURNAL_STATUSES)}")
        result = views.orders(store, status=status, search=q, page=page, per_page=per_page)
        return {"page": result.page, "pages": result.pages, "total": result.total,
                "orders": [_entry_json(e) for e in result.items]}

    @api.get("/orders/{amazon_order_id}", summary="One order: journal entry, confirmations, events, dead letters")
    def order(amazon_order_id: str) -> dict[str, Any]:
        history = views.order_history(store, amazon_order_id)
        if history.entry is None and not history.dead_letters and not history.notifications:
            raise HTTPException(404, f"order {amazon_order_id} is not in the journal, the inbox or the dead letters")
        return {"journal": _entry_json(history.entry) if history.entry else None,
                "confirmations": [{**c, "confirmed_at": c["confirmed_at"].isoformat()}
                                  for c in history.confirmations],
                "events": [{"event": e["event"], "at": e["at"].isoformat(), "detail": e["detail"]}
                           for e in history.events],
                "dead_letters": [_dead_letter_json(d) for d in history.dead_letters],
                "pending_jobs": history.pending}

    @api.get("/dead-letters", summary="Dead letters, newest first, and their counts by reason")
    def dead_letters(status: str | None = Query("open", description=f"one of {', '.join(DEAD_LETTER_STATUSES)}"
                                                                        f"; empty for all"),
                     reason: str | None = Query(None, description="the error code, e.g. unknown_sku"),
                     job: str | None = None, q: str | None = Query(None, description="an order id or a job key"),
                     page: int = Query(1, ge=1),
                     per_page: int = Query(50, ge=1, le=views.MAX_PAGE)) -> dict[str, Any]:
        result = views.dead_letter_list(store, status=status or None, reason=reason, job=job, search=q, page=page,
                                        per_page=per_page)
        return {"page": result.page, "pages": result.pages, "total": result.total,
                "reasons": [{"job": j, "reason": r, "count": n}
                            for j, r, n in views.dead_letter_reasons(store, status or None)],
                "dead_letters": [_dead_letter_json(d) for d in result.items]}

    @api.get("/dead-letters/{dead_letter_id}", summary="One dead letter with its payload")
    def dead_letter(dead_letter_id: int) -> dict[str, Any]:
        dead = store.dead_letters.get(dead_letter_id)
        if dead is None:
            raise HTTPException(404, f"dead letter {dead_letter_id} does not exist")
        return dead.as_dict()

    @api.post("/dead-letters/{dead_letter_id}/{action}",
              summary="Replay (queue its job again, with the current code and mapping) or discard a dead letter")
    def act(dead_letter_id: int, action: str) -> dict[str, Any]:
        if action not in ACTIONS:
            raise HTTPException(404, f"action {action!r}: use replay or discard")
        try:
            message = _act(runtime, action, dead_letter_id)
        except (deadletter.DeadLetterError, ErpsyncError) as exc:
            raise HTTPException(409, str(exc)) from None
        return {"result": message, "dead_letter": _dead_letter_json(store.dead_letters.get(dead_letter_id))}

    @api.get("/settlements", summary="Settlements, the latest settlement period first (amounts as exact text)")
    def settlements(status: str | None = Query(None, description=f"one of {', '.join(views.SETTLEMENT_STATUSES)}"),
                    q: str | None = Query(None, description="a settlement id (or its start) or a report id"),
                    page: int = Query(1, ge=1),
                    per_page: int = Query(50, ge=1, le=views.MAX_PAGE)) -> dict[str, Any]:
        if status and status not in views.SETTLEMENT_STATUSES:
            raise HTTPException(400, f"status {status!r}: use one of {', '.join(views.SETTLEMENT_STATUSES)}")
        result = views.settlement_list(store, status=status, search=q, page=page, per_page=per_page)
        return {"page": result.page, "pages": result.pages, "total": result.total,
                "counts": views.settlement_counts(store),
                "dead_letters_open": views.settlements_rejected(store),
                "settlements": [{**_settlement_json(r), "dead_letters_open": n} for r, n in result.items]}

    @api.get("/settlements/{settlement_id}",
             summary="One settlement: its row detail summed per GL account and rule, its Sage batches, its dead "
                     "letters")
    def settlement(settlement_id: str) -> dict[str, Any]:
        detail = views.settlement_detail(store, settlement_id)
        if detail is None:
            raise HTTPException(404, f"settlement {settlement_id} is not in the state store: it was never imported "
                                     f"(see the settlement dead letters for a refused file)")
        return {**_settlement_json(detail.record), "rows": detail.rows, "orders": detail.orders,
                "rows_total": str(detail.rows_total),
                "first_posted_date": detail.first_posted.isoformat() if detail.first_posted else None,
                "last_posted_date": detail.last_posted.isoformat() if detail.last_posted else None,
                "complete": detail.complete, "lines": [line.as_dict() for line in detail.lines],
                "deposit": detail.deposit.as_dict(),
                "dead_letters": [_dead_letter_json(d) for d in detail.dead_letters]}

    return api


def _settlement_json(record: SettlementRecord) -> dict[str, Any]:
    return {"settlement_id": record.settlement_id, "report_id": record.report_id, "status": record.status,
            "currency": record.currency, "total_amount": record.total_amount,
            "start_date": record.start_date.isoformat(), "end_date": record.end_date.isoformat(),
            "deposit_date": record.deposit_date.isoformat() if record.deposit_date else None,
            "batches": record.batches or {}, "created_at": record.created_at.isoformat(),
            "updated_at": record.updated_at.isoformat()}


def _entry_json(entry) -> dict[str, Any]:
    return {"amazon_order_id": entry.amazon_order_id, "status": entry.status, "so_key": entry.so_key,
            "tran_no": entry.tran_no, "created_at": entry.created_at.isoformat(),
            "updated_at": entry.updated_at.isoformat(), "last_error": entry.last_error}


# --- the pages -----------------------------------------------------------------------------------------------


def pages_router(runtime: Runtime) -> APIRouter:
    pages = APIRouter(include_in_schema=False)
    pages.include_router(inventory.pages_router(runtime))  # /feeds, /reconciliation (web/inventory.py)
    store = runtime.store

    @pages.get("/")
    def overview(request: Request) -> Response:
        return render.page(request, "overview.html", nav="overview", flows=views.flow_status(store),
                           queues=runtime.pending(), journal=views.journal_counts(store),
                           reasons=views.dead_letter_reasons(store),
                           **inventory.overview(runtime))

    @pages.get("/orders")
    def orders(request: Request, status: str | None = None, q: str | None = None, page: int = Query(1, ge=1),
               per_page: int = Query(50, ge=1, le=views.MAX_PAGE)) -> Response:
        status = status if status in JOURNAL_STATUSES else None
        result = views.orders(store, status=status or None, search=q or None, page=page, per_page=per_page)
        return render.page(request, "orders.html", nav="orders", result=result, status=status, q=q or "",
                           statuses=JOURNAL_STATUSES, counts=views.journal_counts(store))

    @pages.get("/orders/{amazon_order_id}")
    def order(request: Request, amazon_order_id: str) -> Response:
        history = views.order_history(store, amazon_order_id)
        found = history.entry is not None or history.dead_letters or history.notifications
        return render.page(request, "order.html", code=200 if found else 404, nav="orders",
                           oid=amazon_order_id, history=history)

    @pages.get("/dead-letters")
    def dead_letters(request: Request, status: str | None = "open", reason: str | None = None,
                     job: str | None = None, q: str | None = None, page: int = Query(1, ge=1),
                     per_page: int = Query(50, ge=1, le=views.MAX_PAGE)) -> Response:
        status = status if status in DEAD_LETTER_STATUSES else None
        result = views.dead_letter_list(store, status=status, reason=reason or None, job=job or None,
                                        search=q or None, page=page, per_page=per_page)
        return render.page(request, "dead_letters.html", nav="dead-letters", result=result, status=status or "",
                           reason=reason or "", job=job or "", q=q or "", statuses=DEAD_LETTER_STATUSES,
                           reasons=views.dead_letter_reasons(store, status))

    @pages.get("/dead-letters/{dead_letter_id}")
    def dead_letter(request: Request, dead_letter_id: int) -> Response:
        dead = store.dead_letters.get(dead_letter_id)
        return render.page(request, "dead_letter.html", code=200 if dead else 404, nav="dead-letters",
                           dead=dead, dead_id=dead_letter_id)

    @pages.post("/dead-letters/action")
    async def action(request: Request) -> Response:
        form = auth.form_values(await request.body())
        what = (form.get("action") or [""])[0]
        ids = sorted({int(i) for i in form.get("id", []) if i.isdigit()})
        back = auth.safe_next((form.get("back") or ["/dead-letters"])[0])
        if what not in ACTIONS or not ids:
            return render.page(request, "message.html", code=400, nav="dead-letters", title="Nothing to do",
                               lines=["choose replay or discard and at least one dead letter"], back=back)
        if (form.get("confirm") or [""])[0] != "yes":
            letters = [store.dead_letters.get(i) for i in ids]
            return render.page(request, "confirm.html", nav="dead-letters", what=what,
                               letters=[d for d in letters if d is not None], back=back)
        lines = []
        for dead_id in ids:
            try:
                lines.append(await run_in_threadpool(_act, runtime, what, dead_id))
            except (deadletter.DeadLetterError, ErpsyncError) as exc:
                lines.append(f"dead letter {dead_id}: {exc}")
        return render.page(request, "message.html", nav="dead-letters",
                           title=f"{what.capitalize()}: {len(ids)} dead letter(s)", lines=lines, back=back)

    @pages.get("/settlements")
    def settlements(request: Request, status: str | None = None, q: str | None = None, page: int = Query(1, ge=1),
                    per_page: int = Query(50, ge=1, le=views.MAX_PAGE)) -> Response:
        status = status if status in views.SETTLEMENT_STATUSES else None
        result = views.settlement_list(store, status=status, search=q or None, page=page, per_page=per_page)
        return render.page(request, "settlements.html", nav="settlements", result=result, status=status or "",
                           q=q or "", statuses=views.SETTLEMENT_STATUSES, counts=views.settlement_counts(store),
                           dead=views.settlement_dead_letters(store, limit=20),
                           rejected=views.settlements_rejected(store))

    @pages.get("/settlements/{settlement_id}")
    def settlement(request: Request, settlement_id: str, q: str | None = None, account: str | None = None,
                   page: int = Query(1, ge=1), per_page: int = Query(50, ge=1, le=views.MAX_PAGE)) -> Response:
        detail = views.settlement_detail(store, settlement_id)
        rows = views.settlement_row_page(store, settlement_id, search=q or None, account=account or None,
                                         page=page, per_page=per_page) if detail else None
        return render.page(request, "settlement.html", code=200 if detail else 404, nav="settlements",
                           sid=settlement_id, detail=detail, rows=rows, q=q or "", account=account or "")

    return pages


# --- gauges --------------------------------------------------------------------------------------------------


class StatusCollector:
    """Gauges read at scrape time for the alert rules (deploy/prometheus/erpsync-rules.yml)."""

    def __init__(self, runtime: Runtime):
        self.runtime = runtime

    def describe(self):
        return []

    def collect(self):
        store = self.runtime.store
        lag = GaugeMetricFamily("erpsync_sync_lag_seconds",
                                "orders: how far the order window is behind now; shipments: age of the oldest "
                                "shipped order whose confirmation Amazon has not taken", labels=["flow"])
        backlog = GaugeMetricFamily("erpsync_flow_backlog", "Jobs of a flow queued, scheduled or running",
                                    labels=["flow"])
        for flow in views.flow_status(store):
            if flow.lag_seconds is not None:
                lag.add_metric([flow.flow], flow.lag_seconds)
            backlog.add_metric([flow.flow], flow.backlog)
        yield lag
        yield backlog
        orders = GaugeMetricFamily("erpsync_orders", "Orders in the journal by status", labels=["status"])
        counts = views.journal_counts(store)
        for status in JOURNAL_STATUSES:
            orders.add_metric([status], counts.get(status, 0))
        yield orders
        reasons = GaugeMetricFamily("erpsync_dead_letters_open_by_reason", "Open dead letters by job and reason",
                                    labels=["job", "reason"])
        for job, reason, count in views.dead_letter_reasons(store):
            reasons.add_metric([job, reason], count)
        yield reasons
        retrying = GaugeMetricFamily("erpsync_jobs_retrying", "Pending jobs waiting for a retry, by the error of "
                                     "their last run (Throttled: Amazon answered 429)", labels=["error"])
        for error, count in sorted(views.retrying(store).items()):
            retrying.add_metric([error], count)
        yield retrying
        yield GaugeMetricFamily("erpsync_settlements_rejected",
                                "Settlements kept out of the ledger: open dead letters of import_settlement and "
                                "post_settlement (format change, unknown fee type, closed period, ...)",
                                value=views.settlements_rejected(store))
