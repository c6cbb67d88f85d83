"""Listings Items API 2021-08-01: read one listing (offers, quantity, issues) and patch its top-level attributes."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

if TYPE_CHECKING:
    from erpsync.amazon.client import AmazonClient

BASE = "/listings/2021-08-01/items"  # Amazon's model listingsItems_2021-08-01.json
INCLUDED_DATA = ("summaries", "offers", "fulfillmentAvailability", "issues")


class Listings:
    def __init__(self, client: AmazonClient):
        self._client = client

    def _path(self, sku: str) -> str:
        return f"{BASE}/{quote(self._client.seller_id, safe='')}/{quote(sku, safe='')}"

    def get_listings_item(self, sku: str, *, marketplace_ids: Iterable[str] | None = None,
                          included_data: Iterable[str] = INCLUDED_DATA) -> dict[str, Any]:
        """The listing ``Item`` (see :func:`translate.listing_prices` / :func:`translate.listing_quantity`)."""
        return self._client.call("getListingsItem", "GET", self._path(sku), params={
            "marketplaceIds": list(marketplace_ids or self._client.marketplace_ids),
            "includedData": list(included_data)}).body

    def patch_listings_item(self, sku: str, patches: list[dict[str, Any]], *, product_type: str = "PRODUCT",
                            marketplace_ids: Iterable[str] | None = None,
                            validation_preview: bool = False) -> dict[str, Any]:
        """Apply JSON patches to top-level attributes; Amazon's submission response (``status`` ACCEPTED,
        INVALID, or VALID in preview mode, with ``issues``)."""
        params: dict[str, Any] = {"marketplaceIds": list(marketplace_ids or self._client.marketplace_ids),
                                  "includedData": ["issues"]}
        if validation_preview:
            params["mode"] = "VALIDATION_PREVIEW"
        return self._client.call("patchListingsItem", "PATCH", self._path(sku), params=params,
                                 body={"productType": product_type, "patches": patches}).body
