"""FBA Inventory API v1 (Amazon's model fbaInventory.json): the seller's inventory summaries in Amazon's warehouses,
page by page.

Pages are yielded one call at a time: when the shared bucket is empty the iteration raises
:class:`errors.RateLimited`, and the job resumes later from the last page's ``next_token`` (Amazon keeps a token
30 s, far longer than the wait at this operation's rate).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from erpsync.amazon.client import AmazonClient


@dataclass(frozen=True)
class InventoryPage:
    """One getInventorySummaries page (``InventorySummary`` dicts: see :func:`translate.inventory_levels`)."""

    summaries: list[dict[str, Any]]
    next_token: str | None


class Inventory:
    def __init__(self, client: AmazonClient):
        self._client = client

    def summaries(self, *, marketplace_id: str | None = None, skus: Iterable[str] | None = None,
                  changed_since: datetime | None = None, details: bool = True,
                  next_token: str | None = None) -> Iterator[InventoryPage]:
        """Yield every page of inventory summaries for one marketplace (at most 50 ``skus``); ``next_token``
        resumes an interrupted listing with the same filters."""
        marketplace = marketplace_id or self._client.marketplace_ids[0]
        sku_list = list(skus or ())
        if len(sku_list) > 50:
            raise ValueError(f"getInventorySummaries takes at most 50 SKUs, got {len(sku_list)}")
        params: dict[str, Any] = {"granularityType": "Marketplace", "granularityId": marketplace,
                                  "marketplaceIds": [marketplace], "details": details,
                                  "sellerSkus": sku_list or None, "startDateTime": changed_since}
        token = next_token
        while True:
            body = self._client.call("getInventorySummaries", "GET", "/fba/inventory/v1/summaries",
                                     params={**params, "nextToken": token}).body or {}
            token = (body.get("pagination") or {}).get("nextToken") or None
            yield InventoryPage((body.get("payload") or {}).get("inventorySummaries") or [], token)
            if token is None:
                return
