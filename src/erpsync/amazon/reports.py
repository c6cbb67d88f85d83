"""Reports API 2021-06-30: find settlement reports (Amazon makes them; they cannot be requested), download
report documents as text, and request + poll the all-orders report used for backfill and reconciliation."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from erpsync.errors import InvalidData

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
        document = self._client.call("getReportDocument", "GET",
                                     f"{BASE}/documents/{quote(document_id, safe='')}").body
        data = self._client.download(document["url"], compression=document.get("compressionAlgorithm"))
        try:
            return data.decode(encoding)
        except UnicodeDecodeError as exc:
            raise InvalidData(f"report document {document_id} is not {encoding} (byte {exc.start}); read it with "
                              f"the marketplace's encoding, e.g. encoding='cp1252'", record=document_id) from None

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


def _iso(moment: datetime) -> str:
    if moment.utcoffset() is None:
        raise ValueError(f"timestamp {moment!r} has no timezone")
    return moment.isoformat().replace("+00:00", "Z")


def _time(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) and value else None
