"""Feeds API 2021-06-30: documents, feeds, background processing of JSON_LISTINGS_FEED (spapi-notes §5).

createFeedDocument returns an upload URL served by the sandbox (``documents.py``); createFeed queues the feed and
answers at once, as Amazon does: the document is parsed and validated (:func:`listings_feed.check`, seconds for
25,000 messages) by a background thread, outside the world's lock. A ticker moves feeds IN_QUEUE → IN_PROGRESS →
DONE | FATAL in sandbox time (one feed of a seller in progress at a time, as Amazon does), applying the checked
messages to ``world.listings`` under the lock and storing the processing report as the result document. A feed
ends no earlier than its check: one still being checked when its processing time is up stays IN_PROGRESS and ends
at the first tick after the check, as does a feed held by the ``stuck_feeds`` fault once that is switched off.

Feed records in ``world.feeds`` are dicts: the ``Feed`` fields (times as datetimes) plus ``inputFeedDocumentId``,
``sellerId``, ``feedOptions`` and, until the feed is processed, ``checking``: the future of its check (None for
the removed feed types, which are not read).
"""

from __future__ import annotations

import json
import logging
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, Field

from erpsync.sandbox import documents, listings_feed, query
from erpsync.sandbox.core import Caller, cancel_queued, existing, invalid_input, operation, world_of
from erpsync.sandbox.world import World, iso

log = logging.getLogger(__name__)
API = "/feeds/2021-06-30"
router = APIRouter(tags=["feeds"])
router.include_router(documents.router)  # the presigned document URLs of feeds and reports

QUEUE_SECONDS = 30  # sandbox seconds a feed waits IN_QUEUE
PROCESSING_SECONDS = 60  # sandbox seconds a feed stays IN_PROGRESS
REPORT_CONTENT_TYPE = "application/json; charset=UTF-8"
# Listings feeds Amazon removed on 2025-07-31: accepted, then FATAL (spapi-notes §5.3).
REMOVED_FEED_TYPES = frozenset({
    "POST_PRODUCT_DATA", "POST_INVENTORY_AVAILABILITY_DATA", "POST_PRODUCT_OVERRIDES_DATA",
    "POST_PRODUCT_PRICING_DATA", "POST_PRODUCT_IMAGE_DATA", "POST_PRODUCT_RELATIONSHIP_DATA",
    "POST_FLAT_FILE_INVLOADER_DATA", "POST_FLAT_FILE_BOOKLOADER_DATA", "POST_FLAT_FILE_CONVERGENCE_LISTINGS_DATA",
    "POST_FLAT_FILE_LISTINGS_DATA", "POST_FLAT_FILE_PRICEANDQUANTITYONLY_UPDATE_DATA", "POST_UIEE_BOOKLOADER_DATA",
})
# Feed documents are checked one at a time, in submission order, off the request threads and the world's lock.
_checker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sandbox-feed-check")


class CreateFeedDocumentSpecification(BaseModel):
    contentType: str = Field(min_length=1)


class CreateFeedSpecification(BaseModel):
    feedType: str = Field(min_length=1)
    marketplaceIds: list[str] = Field(min_length=1, max_length=25)
    inputFeedDocumentId: str = Field(min_length=1)
    feedOptions: dict[str, str] | None = None


def feed_view(feed: dict[str, Any]) -> dict[str, Any]:
    """The ``Feed`` object of the model."""
    view = {"feedId": feed["feedId"], "feedType": feed["feedType"], "marketplaceIds": list(feed["marketplaceIds"]),
            "createdTime": iso(feed["createdTime"]), "processingStatus": feed["processingStatus"]}
    for name in ("processingStartTime", "processingEndTime"):
        if feed.get(name):
            view[name] = iso(feed[name])
    if feed.get("resultFeedDocumentId"):
        view["resultFeedDocumentId"] = feed["resultFeedDocumentId"]
    return view


# --- processing ----------------------------------------------------------------------------------------------


def _check(document: dict[str, Any], seller_id: str) -> listings_feed.CheckedFeed:
    """On the checker thread: the document (no longer writable once it is a feed's input) parsed and validated."""
    try:
        return listings_feed.check(documents.content_of(document), seller_id=seller_id)
    except Exception as exc:  # a sandbox bug: this feed ends FATAL saying so, the ticker and other feeds go on
        log.exception("sandbox feed check failed")
        return listings_feed.CheckedFeed((f"The sandbox could not check the feed ({type(exc).__name__}: {exc}).",
                                          listings_feed.BAD_FEED), None, ())


def _checked(feed: dict[str, Any]) -> bool:
    checking: Future | None = feed["checking"]
    return checking is None or checking.done()


def _finish(world: World, feed: dict[str, Any], end: datetime) -> None:
    feed["processingEndTime"] = end
    checking: Future | None = feed.pop("checking")
    if checking is None:  # a removed feed type
        feed["processingStatus"] = "FATAL"
        return
    marketplace = world.marketplaces.get(feed["marketplaceIds"][0])
    outcome = listings_feed.apply(
        checking.result(), feed_id=feed["feedId"], seller_id=feed["sellerId"], listings=world.listings,
        marketplace_ids=feed["marketplaceIds"], currency=marketplace.currency if marketplace else "USD", now=end)
    result = documents.create(world, "feed", REPORT_CONTENT_TYPE, json.dumps(outcome.report).encode("utf-8"))
    feed["resultFeedDocumentId"] = result["id"]
    feed["processingStatus"] = outcome.status


def advance(world: World) -> None:
    """Move feeds along at the current sandbox time (a world ticker; runs under ``world.lock``)."""
    with world.lock:
        now = world.now()
        while True:
            active = next((f for f in world.feeds.values() if f["processingStatus"] == "IN_PROGRESS"), None)
            if active is not None:
                due = active["processingStartTime"] + timedelta(seconds=PROCESSING_SECONDS)
                if now < due:
                    return
                if world.faults.stuck_feeds or not _checked(active):
                    active["held"] = True  # ends at the first tick it is free to, not at the due time passed
                    return
                _finish(world, active, now if active.pop("held", False) else due)
                continue
            waiting = [f for f in world.feeds.values() if f["processingStatus"] == "IN_QUEUE"]
            if not waiting:
                return
            feed = min(waiting, key=lambda f: f["createdTime"])
            ended = [f["processingEndTime"] for f in world.feeds.values() if f.get("processingEndTime")]
            start = max([feed["createdTime"] + timedelta(seconds=QUEUE_SECONDS), *ended])
            if now < start:
                return
            feed["processingStatus"], feed["processingStartTime"] = "IN_PROGRESS", start


def _ensure_ticker(world: World) -> None:
    with world.lock:
        if advance not in world.tickers:
            world.tickers.append(advance)


# --- routes --------------------------------------------------------------------------------------------------


@router.post(f"{API}/documents", status_code=201)
def create_feed_document(spec: CreateFeedDocumentSpecification, request: Request,
                         caller: Caller = Depends(operation("createFeedDocument"))) -> dict[str, str]:
    document = documents.create(world_of(request), "feed", spec.contentType)
    return {"feedDocumentId": document["id"], "url": documents.presign(request, document, "PUT")}


@router.get(f"{API}/documents/{{feedDocumentId}}")
def get_feed_document(feedDocumentId: str, request: Request,
                      caller: Caller = Depends(operation("getFeedDocument"))) -> dict[str, str]:
    document = existing(world_of(request).feed_documents, feedDocumentId, "Feed document")
    return documents.download_view(request, document, "feedDocumentId")


@router.post(f"{API}/feeds", status_code=202)
def create_feed(spec: CreateFeedSpecification, request: Request,
                caller: Caller = Depends(operation("createFeed"))) -> dict[str, str]:
    world = world_of(request)
    if spec.feedType != listings_feed.FEED_TYPE and spec.feedType not in REMOVED_FEED_TYPES:
        raise invalid_input(f"feedType {spec.feedType!r} is not supported by the sandbox; it processes "
                            f"{listings_feed.FEED_TYPE}.")
    query.known_marketplaces(world, "marketplaceIds", spec.marketplaceIds)
    with world.lock:
        document = world.feed_documents.get(spec.inputFeedDocumentId)
        if document is None:
            raise invalid_input(f"inputFeedDocumentId {spec.inputFeedDocumentId!r} does not exist; create it with "
                                "createFeedDocument.")
        if document["content"] is None:
            raise invalid_input(f"Feed document {spec.inputFeedDocumentId} has no content: upload the feed to the "
                                "url returned by createFeedDocument before calling createFeed.")
        if document.get("feedId"):
            raise invalid_input(f"Feed document {spec.inputFeedDocumentId} is already the input of feed "
                                f"{document['feedId']}; create a new document for a new feed.")
        feed_id = world.next_id(11)
        document["feedId"] = feed_id  # no more uploads to it
        created = world.now()
    # the slow part of processing (parsing, schema checks) runs in the background; the ticker applies its result
    checking = None if spec.feedType in REMOVED_FEED_TYPES else _checker.submit(_check, document, caller.seller_id)
    with world.lock:
        world.feeds[feed_id] = {
            "feedId": feed_id, "feedType": spec.feedType, "marketplaceIds": spec.marketplaceIds,
            "createdTime": created, "processingStatus": "IN_QUEUE", "processingStartTime": None,
            "processingEndTime": None, "resultFeedDocumentId": None,
            "inputFeedDocumentId": spec.inputFeedDocumentId, "sellerId": caller.seller_id,
            "feedOptions": spec.feedOptions or {}, "checking": checking,
        }
    _ensure_ticker(world)
    return {"feedId": feed_id}


@router.get(f"{API}/feeds")
def get_feeds(request: Request, caller: Caller = Depends(operation("getFeeds"))) -> dict[str, Any]:
    world = world_of(request)
    return query.created_page(request, world, "feed", world.feeds, feed_view)


@router.get(f"{API}/feeds/{{feedId}}")
def get_feed(feedId: str, request: Request, caller: Caller = Depends(operation("getFeed"))) -> dict[str, Any]:
    world = world_of(request)
    with world.lock:
        return feed_view(existing(world.feeds, feedId, "Feed"))


@router.delete(f"{API}/feeds/{{feedId}}")
def cancel_feed(feedId: str, request: Request, caller: Caller = Depends(operation("cancelFeed"))) -> Response:
    world = world_of(request)
    with world.lock:
        feed = existing(world.feeds, feedId, "Feed")
        cancel_queued(feed, "Feed", feedId)
        checking = feed.pop("checking")
    if checking is not None:
        checking.cancel()  # dropped unless already running
    return Response(status_code=200)

