"""The dashboard's pages and JSON endpoints for stock and prices (issue 10's flows): ``/feeds`` the listing feeds
(filter by status), ``/feeds/{id}`` one feed's messages with their results as stored, ``/reconciliation`` the last
reconciliation per marketplace, with a form (confirmed on a second page) that queues ``reconcile_inventory`` with
``fix`` — what ``erpsync reconcile inventory --fix`` does, run by a sage500 worker. Included by
:mod:`erpsync.web.dashboard` into its page and API routers (the API under ``/api``, in ``/openapi.json``).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from erpsync.flows.reconcile import CAUSES
from erpsync.runtime import views
from erpsync.runtime.jobs import Runtime
from erpsync.web import auth, render

FEED_STATUSES = ("queued", "IN_QUEUE", "IN_PROGRESS", "DONE", "FATAL", "CANCELLED", "STUCK")
MESSAGE_RESULTS = ("accepted", "refused", "in flight", "not applied")
FIX_JOB, FIX_KEY = "reconcile_inventory", "reconcile_inventory:fix"
CONFIRM_SHOWN = 50  # drifted SKUs listed on the fix's confirmation page; its count and the fix cover them all


def _queue_fix(runtime: Runtime) -> str:
    """Queue a reconciliation that sends Sage's values of the drifted SKUs; what happened, in words."""
    if runtime.enqueue(FIX_JOB, key=FIX_KEY, fix=True):
        return ("reconcile_inventory queued with fix: a sage500 worker records what Sage says now, the amazon side "
                "compares it with a fresh listings report and sends Sage's quantity of every SKU still drifted")
    return "a reconcile_inventory with fix is already queued; nothing added"


def _sku_matches(sku: str, search: str | None) -> bool:
    return not search or search.strip().lower() in sku.lower()


def _reconciliation_json(marketplace_id: str, last: views.Reconciliation | None) -> dict[str, Any]:
    return last.as_dict() if last else {"marketplace_id": marketplace_id, "at": None, "differences": []}


def overview(runtime: Runtime) -> dict[str, Any]:
    """The overview page's feeds and reconciliation cards."""
    store = runtime.store
    return {"feed_counts": views.feed_statuses(store), "oldest_feed": views.oldest_unfinished_feed(store),
            "reconciled": views.last_reconciliations(store, runtime.settings.amazon.marketplace_ids)}


def api_router(runtime: Runtime) -> APIRouter:
    api = APIRouter()
    store = runtime.store

    @api.get("/feeds", summary="Listing feeds (JSON_LISTINGS_FEED), newest first, without their messages")
    def feeds(status: str | None = Query(None, description=f"one of {', '.join(FEED_STATUSES)}"),
              page: int = Query(1, ge=1), per_page: int = Query(50, ge=1, le=views.MAX_PAGE)) -> dict[str, Any]:
        if status and status not in FEED_STATUSES:
            raise HTTPException(400, f"status {status!r}: use one of {', '.join(FEED_STATUSES)}")
        result = views.feeds(store, status=status, page=page, per_page=per_page)
        return {"page": result.page, "pages": result.pages, "total": result.total,
                "feeds": [row.as_dict() for row in result.items]}

    @api.get("/feeds/{batch_id}", summary="One listing feed with its messages (SKU, values, result as stored)")
    def feed(batch_id: int) -> dict[str, Any]:
        found = store.listings.feed(batch_id)
        if found is None:
            raise HTTPException(404, f"listing feed {batch_id} does not exist")
        row = views.FeedRow(found, len(found.messages or ())).as_dict()
        row["message_results"] = [{"message_id": m.message_id, "sku": m.sku, "values": m.values,
                                   "result": m.result, "dead_letter": m.dead_letter}
                                  for m in views.feed_messages(store, found)]
        return row

    @api.get("/reconciliation", summary="The last inventory reconciliation of each configured marketplace")
    def reconciliation() -> dict[str, Any]:
        last = views.last_reconciliations(store, runtime.settings.amazon.marketplace_ids)
        return {"causes": list(CAUSES),
                "marketplaces": [_reconciliation_json(m, r) for m, r in last.items()]}

    @api.post("/reconciliation/fix", summary="Queue reconcile_inventory with fix (as `erpsync reconcile inventory "
                                             "--fix`): Sage's quantities of the drifted SKUs are sent")
    def fix() -> dict[str, Any]:
        return {"result": _queue_fix(runtime)}

    return api


def pages_router(runtime: Runtime) -> APIRouter:
    pages = APIRouter(include_in_schema=False)
    store = runtime.store

    @pages.get("/feeds")
    def feeds(request: Request, status: str | None = None, page: int = Query(1, ge=1),
              per_page: int = Query(50, ge=1, le=views.MAX_PAGE)) -> Response:
        status = status if status in FEED_STATUSES else None
        result = views.feeds(store, status=status, page=page, per_page=per_page)
        return render.page(request, "feeds.html", nav="feeds", result=result, status=status or "",
                           statuses=FEED_STATUSES, counts=views.feed_statuses(store),
                           oldest=views.oldest_unfinished_feed(store))

    @pages.get("/feeds/{batch_id}")
    def feed(request: Request, batch_id: int, result: str | None = None, q: str | None = None,
             page: int = Query(1, ge=1), per_page: int = Query(50, ge=1, le=views.MAX_PAGE)) -> Response:
        found = store.listings.feed(batch_id)
        messages = views.feed_messages(store, found) if found else []
        result = result if result in MESSAGE_RESULTS else None
        counts = {r: sum(m.result == r for m in messages) for r in MESSAGE_RESULTS}
        shown = [m for m in messages if (result is None or m.result == result) and _sku_matches(m.sku, q)]
        return render.page(request, "feed.html", code=200 if found else 404, nav="feeds", feed=found,
                           batch_id=batch_id, messages=views.page_of(shown, page, per_page), total=len(messages),
                           results=MESSAGE_RESULTS, counts=counts, result_filter=result or "", q=q or "")

    @pages.get("/reconciliation")
    def reconciliation(request: Request, cause: str | None = None, q: str | None = None,
                       page: int = Query(1, ge=1), per_page: int = Query(50, ge=1, le=views.MAX_PAGE)) -> Response:
        last = views.last_reconciliations(store, runtime.settings.amazon.marketplace_ids)
        cause = cause if cause in CAUSES else None
        shown = {m: views.page_of([d for d in r.differences if (cause is None or d["cause"] == cause)
                                   and _sku_matches(d["sku"], q)], page, per_page)
                 for m, r in last.items() if r}
        pager = max(shown.values(), key=lambda p: p.total, default=views.page_of([], page, per_page))
        return render.page(request, "reconciliation.html", nav="reconciliation", last=last, shown=shown,
                           result=pager, causes=CAUSES, cause=cause or "", q=q or "")

    @pages.post("/reconciliation/fix")
    async def fix(request: Request) -> Response:
        form = auth.form_values(await request.body())
        if (form.get("confirm") or [""])[0] != "yes":
            last = views.last_reconciliations(store, runtime.settings.amazon.marketplace_ids)
            drifted = [(m, d) for m, r in last.items() if r for d in r.differences if d["cause"] == "drift"]
            return render.page(request, "reconciliation_fix.html", nav="reconciliation",
                               drifted=views.page_of(drifted, 1, CONFIRM_SHOWN))
        return render.page(request, "message.html", nav="reconciliation", title="Reconciliation with fix",
                           lines=[await run_in_threadpool(_queue_fix, runtime)], back="/reconciliation")

    return pages
