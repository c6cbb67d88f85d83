"""Feeds API 2021-06-30 for ``JSON_LISTINGS_FEED``: document, upload, feed, status, processing report.

``submit_listings_feed`` is three calls (createFeedDocument, PUT to the pre-signed URL, createFeed); if a later
step fails the job simply runs again — an unused feed document costs nothing. The processing report is read
with ``feed_result`` once the feed is DONE (or FATAL with a report), GZIP unpacked.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from erpsync.amazon import translate
from erpsync.errors import AmazonRejected, AmazonUnavailable, Retryable

if TYPE_CHECKING:
    from erpsync.amazon.client import AmazonClient

BASE = "/feeds/2021-06-30"  # Amazon's model feeds_2021-06-30.json (paths, methods, operationIds)
CONTENT_TYPE = "application/json; charset=UTF-8"
TERMINAL = frozenset({"DONE", "CANCELLED", "FATAL"})


@dataclass(frozen=True)
class FeedStatus:
    feed_id: str
    feed_type: str | None
    status: str  # IN_QUEUE | IN_PROGRESS | DONE | CANCELLED | FATAL
    created: datetime | None
    started: datetime | None
    ended: datetime | None
    result_document_id: str | None

    @property
    def finished(self) -> bool:
        return self.status in TERMINAL

    @classmethod
    def from_api(cls, feed: dict[str, Any]) -> FeedStatus:
        return cls(str(feed["feedId"]), feed.get("feedType"), feed["processingStatus"], _time(feed.get("createdTime")),
                   _time(feed.get("processingStartTime")), _time(feed.get("processingEndTime")),
                   feed.get("resultFeedDocumentId"))


class Feeds:
    def __init__(self, client: AmazonClient):
        self._client = client

    def submit_listings_feed(self, messages: list[dict[str, Any]], *,
                             marketplace_ids: list[str] | None = None) -> str:
        """Send ``messages`` (see :func:`translate.listings_messages`) as one JSON_LISTINGS_FEED; the feed id."""
        document = translate.listings_feed(self._client.seller_id, messages)
        data = json.dumps(document, default=translate.json_number, ensure_ascii=False).encode("utf-8")
        created = self._client.call("createFeedDocument", "POST", f"{BASE}/documents",
                                    body={"contentType": CONTENT_TYPE}).body
        self._client.upload(created["url"], data, CONTENT_TYPE)
        feed = self._client.call("createFeed", "POST", f"{BASE}/feeds", body={
            "feedType": "JSON_LISTINGS_FEED", "marketplaceIds": marketplace_ids or self._client.marketplace_ids,
            "inputFeedDocumentId": created["feedDocumentId"]}).body
        return str(feed["feedId"])

    def feed_status(self, feed_id: str) -> FeedStatus:
        reply = self._client.call("getFeed", "GET", f"{BASE}/feeds/{quote(feed_id, safe='')}")
        return FeedStatus.from_api(reply.body)

    def feed_result(self, feed_id: str) -> dict[str, Any]:
        """The processing report (JSON) of a finished feed. Not finished yet: :class:`Retryable`; cancelled, or
        FATAL without a report: :class:`AmazonRejected`."""
        status = self.feed_status(feed_id)
        if not status.finished:
            raise Retryable(f"feed {feed_id} is still {status.status}; read its report later", retry_after=30.0)
        if status.result_document_id is None:
            raise AmazonRejected(f"feed {feed_id} ended {status.status} without a processing report",
                                 amazon_code=status.status)
        document = self._client.call(
            "getFeedDocument", "GET", f"{BASE}/documents/{quote(status.result_document_id, safe='')}").body
        data = self._client.download(document["url"], compression=document.get("compressionAlgorithm"))
        try:
            report = json.loads(data)
        except ValueError:
            raise AmazonUnavailable(f"feed {feed_id}: the processing report is not JSON") from None
        if not isinstance(report, dict) or "summary" not in report:
            raise AmazonUnavailable(f"feed {feed_id}: the processing report has no summary")
        return report


def _time(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) and value else None


def cancel_feed(client: AmazonClient, feed_id: str) -> None:
    """cancelFeed: only a feed still IN_QUEUE can be cancelled (Amazon answers 400 otherwise)."""
    client.call("cancelFeed", "DELETE", f"{BASE}/feeds/{quote(feed_id, safe='')}")
