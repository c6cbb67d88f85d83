"""Reports API 2021-06-30: find settlement reports (Amazon makes them; they cannot be requested), download
report documents as text (whole, or as a stream of lines for large ones), and request + poll the all-orders report
used for backfill and reconciliation."""

from __future__ import annotations

import gzip
import io
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, TextIO
from urllib.parse import quote

from erpsync.errors import AmazonUnavailable, InvalidData

if TYPE_CHECKING:
    from erpsync.amazon.client import AmazonClient

BASE = "/reports/2021-06-30"  # Amazon's model reports_2021-06-30.json (paths, methods, operationIds)
SETTLEMENT = "GET_V2_SETTLEMENT_REPORT_DATA_FLAT_FILE_V2"
ALL_ORDERS = "GET_FLAT_FILE_ALL_ORDERS_DATA_BY_LAST_UPDATE_GENERAL"
MERCHANT_LISTINGS = "GET_MERCHANT_LISTINGS_ALL_DATA"


@dataclass(frozen=True)
class ReportInfo:
    report_id: str
    report_type: str
    status: str  # IN_QUEUE | IN_PROGRESS | DONE | CANCELLED (no data) | FATAL
    created: datetime | None
    data_start: datetime | None
    data_end: datetime | None
    document_id: str | None

    @classmethod
    def from_api(cls, report: dict[str, Any]) -> ReportInfo:
        return cls(str(report["reportId"]), report["reportType"], report["processingStatus"],
                   _time(report.get("createdTime")), _time(report.get("dataStartTime")),
                   _time(report.get("dataEndTime")), report.get("reportDocumentId"))


class Reports:
    def __init__(self, client: AmazonClient):
        self._client = client

    def settlement_reports(self, since: datetime, *, until: datetime | None = None) -> list[ReportInfo]:
        """Settlement reports (V2 flat file) created since ``since`` and ready to download, oldest first."""
        params: dict[str, Any] = {"reportTypes": [SETTLEMENT], "processingStatuses": ["DONE"],
                                  "createdSince": since, "createdUntil": until, "pageSize": 100}
        found: list[ReportInfo] = []
        while True:
            body = self._client.call("getReports", "GET", f"{BASE}/reports", params=params).body or {}
            found += [ReportInfo.from_api(report) for report in body.get("reports") or ()]
            token = body.get("nextToken")
            if not token:
                break
            params = {"nextToken": token}  # Amazon wants the token alone
        return sorted(found, key=lambda r: (r.created or since, r.report_id))

    def download_document(self, document_id: str, *, encoding: str = "utf-8") -> str:
        """A report document's content as text (GZIP unpacked), decoded strictly as ``encoding``."""
        with self.open_document(document_id, encoding=encoding) as lines:
            return "".join(lines)

    @contextmanager
    def open_document(self, document_id: str, *, encoding: str = "utf-8") -> Iterator[Iterator[str]]:
        """A report document's lines, read as they are consumed: the download goes to a temporary file (in memory
        up to SPOOL_BYTES, then on disk, deleted on leaving) and is unpacked and decoded line by line, so a
        million-row settlement report is never whole in memory. A broken GZIP stream (retryable: download it
        again) or undecodable bytes surface while the lines are read, before the reader acts on them."""
        document = self._client.call("getReportDocument", "GET",
                                     f"{BASE}/documents/{quote(document_id, safe='')}").body
        compression = document.get("compressionAlgorithm")
        if compression not in (None, "GZIP"):
            raise AmazonUnavailable(f"report document {document_id} uses unknown compression {compression!r}")
        with tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES) as raw:
            self._client.download_to(document["url"], raw)
            raw.seek(0)
            binary = gzip.GzipFile(fileobj=raw, mode="rb") if compression else raw
            yield _lines(io.TextIOWrapper(binary, encoding=encoding, newline=""), document_id, encoding)

    def request_all_orders_report(self, start: datetime, end: datetime | None = None, *,
                                  marketplace_ids: Iterable[str] | None = None) -> str:
        """Ask for the all-orders-by-last-update flat file over [start, end]; the report id."""
        body: dict[str, Any] = {"reportType": ALL_ORDERS,
                                "marketplaceIds": list(marketplace_ids or self._client.marketplace_ids),
                                "dataStartTime": _iso(start)}
        if end is not None:
            body["dataEndTime"] = _iso(end)
        return str(self._client.call("createReport", "POST", f"{BASE}/reports", body=body).body["reportId"])

    def request_merchant_listings_report(self, marketplace_id: str) -> str:
        """Ask for the All Listings Report (every SKU, active or not, with price, quantity and fulfillment channel)
        of one marketplace (Amazon reads only the first); the report id."""
        return str(self._client.call("createReport", "POST", f"{BASE}/reports", body={
            "reportType": MERCHANT_LISTINGS, "marketplaceIds": [marketplace_id]}).body["reportId"])

    def report_status(self, report_id: str) -> ReportInfo:
        return ReportInfo.from_api(self._client.call("getReport", "GET",
                                                     f"{BASE}/reports/{quote(report_id, safe='')}").body)


SPOOL_BYTES = 8 * 1024 * 1024


def _lines(text: TextIO, document_id: str, encoding: str) -> Iterator[str]:
    try:
        yield from text
    except UnicodeDecodeError as exc:
        raise InvalidData(f"report document {document_id} is not {encoding} ({exc.reason}); read it with the "
                          f"marketplace's encoding, e.g. encoding='cp1252'", record=document_id) from None
    except (OSError, EOFError) as exc:  # gzip.BadGzipFile is an OSError; EOFError: the stream ends early
        raise AmazonUnavailable(f"report document {document_id} is not valid GZIP: {exc}") from None


def _iso(moment: datetime) -> str:
    if moment.utcoffset() is None:
        raise ValueError(f"timestamp {moment!r} has no timezone")
    return moment.isoformat().replace("+00:00", "Z")


def _time(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) and value else None
