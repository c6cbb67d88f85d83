"""FBA Inventory API v1: the seller's inventory summaries in Amazon's warehouses, every page."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from erpsync import model
from erpsync.amazon import translate

if TYPE_CHECKING:
    from erpsync.amazon.client import AmazonClient


class Inventory:
    def __init__(self, client: AmazonClient):
        self._client = client

    def summaries(self, *, marketplace_id: str | None = None, skus: Iterable[str] | None = None,
                  changed_since: datetime | None = None, details: bool = True) -> list[dict[str, Any]]:
        """Every ``InventorySummary`` (pages followed at once: Amazon's ``nextToken`` lives only 30 s)."""
        marketplace = marketplace_id or self._client.marketplace_ids[0]
        sku_list = list(skus or ())
        if len(sku_list) > 50:
            raise ValueError(f"getInventorySummaries takes at most 50 SKUs, got {len(sku_list)}")
        params: dict[str, Any] = {"granularityType": "Marketplace", "granularityId": marketplace,
                                  "marketplaceIds": [marketplace], "details": details,
                                  "sellerSkus": sku_list or None, "startDateTime": changed_since}
        found: list[dict[str, Any]] = []
        while True:
            body = self._client.call("getInventorySummaries", "GET", "/fba/inventory/v1/summaries",
                                     params=params).body or {}
            found += (body.get("payload") or {}).get("inventorySummaries") or []
            token = (body.get("pagination") or {}).get("nextToken")
            if not token:
                return found
            params = {**params, "nextToken": token}

    def levels(self, **filters: Any) -> list[model.StockLevel]:
        """:meth:`summaries` as canonical stock levels (fulfillable quantity)."""
        return translate.inventory_levels(self.summaries(**filters), datetime.now(timezone.utc))
