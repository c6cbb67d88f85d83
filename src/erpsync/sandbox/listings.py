"""Listings Items API 2021-08-01: getListingsItem and patchListingsItem over ``world.listings`` (spapi-notes §8).

A patch is checked and applied at once (``ACCEPTED``) or refused as a whole (``INVALID`` with issues);
``mode=VALIDATION_PREVIEW`` only checks (``VALID`` | ``INVALID``). The same checks as the JSON_LISTINGS_FEED
(``catalog.py``) apply: top-level attribute paths only, whole non-negative quantities, positive numeric prices.
"""

from __future__ import annotations

import copy
import uuid
from typing import Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from erpsync.sandbox import catalog, query
from erpsync.sandbox.core import AmazonError, Caller, UNAUTHORIZED, invalid_input, not_found, operation, world_of
from erpsync.sandbox.world import World

router = APIRouter(tags=["listings"])
API = "/listings/2021-08-01/items"
SKU_NOT_FOUND = "4000004"
# Listings Items issue categories for the sandbox's problem codes.
CATEGORIES = {catalog.INVALID_VALUE: "INVALID_ATTRIBUTE", catalog.MISSING_VALUE: "MISSING_ATTRIBUTE",
              catalog.BAD_PATH: "INVALID_ATTRIBUTE", catalog.IGNORED_VALUE: "INVALID_ATTRIBUTE",
              SKU_NOT_FOUND: "INVALID_ATTRIBUTE"}


class PatchOperation(BaseModel):
    op: str
    path: str
    value: list[dict[str, Any]] | None = None


class ListingsItemPatchRequest(BaseModel):
    productType: str = Field(min_length=1)
    patches: list[PatchOperation] = Field(min_length=1)


def _marketplaces(request: Request, world: World) -> list[str]:
    marketplace_ids = query.values(request, "marketplaceIds")
    if not marketplace_ids:
        raise invalid_input("marketplaceIds is required.")
    return query.known_marketplaces(world, "marketplaceIds", marketplace_ids)


def _own(seller_id: str, caller: Caller) -> None:
    if seller_id != caller.seller_id:
        raise AmazonError(403, *UNAUTHORIZED, details=f"sellerId {seller_id} is not the authorized selling partner.")


def _issue(problem: catalog.Problem, marketplace_ids: list[str]) -> dict[str, Any]:
    issue: dict[str, Any] = {"code": problem.code, "message": problem.message, "severity": problem.severity,
                             "categories": [CATEGORIES.get(problem.code, "INVALID_ATTRIBUTE")],
                             "marketplaceIds": marketplace_ids}
    if problem.attribute:
        issue["attributeNames"] = [problem.attribute.split(".")[0]]
    return issue


@router.get(f"{API}/{{sellerId}}/{{sku}}")
def get_listings_item(sellerId: str, sku: str, request: Request,
                      caller: Caller = Depends(operation("getListingsItem"))) -> dict[str, Any]:
    world = world_of(request)
    _own(sellerId, caller)
    marketplace_ids = _marketplaces(request, world)
    included = query.one_of(request, "includedData", catalog.INCLUDED_DATA) or ["summaries"]
    with world.lock:
        listing = world.listings.get(sku)
        if listing is None:
            raise not_found(f"SKU '{sku}' is not a listing of seller {sellerId} in {', '.join(marketplace_ids)}.")
        return catalog.render_item(listing, marketplace_ids, included, world.now())


@router.patch(f"{API}/{{sellerId}}/{{sku}}")
def patch_listings_item(sellerId: str, sku: str, body: ListingsItemPatchRequest, request: Request,
                        caller: Caller = Depends(operation("patchListingsItem"))) -> dict[str, Any]:
    world = world_of(request)
    _own(sellerId, caller)
    marketplace_ids = _marketplaces(request, world)
    mode = request.query_params.get("mode")
    if mode not in (None, "VALIDATION_PREVIEW"):
        raise invalid_input(f"mode {mode!r} is not supported; leave it out or use VALIDATION_PREVIEW.")
    patches = [p.model_dump(exclude_none=True) for p in body.patches]
    with world.lock:
        listing = world.listings.get(sku)
        if listing is None:
            problems = [catalog.Problem(SKU_NOT_FOUND, f"SKU '{sku}' does not exist for seller {sellerId}; create "
                                        "it with putListingsItem or a JSON_LISTINGS_FEED UPDATE first.")]
        else:
            draft = copy.deepcopy(listing)
            draft.product_type = body.productType
            problems = catalog.patch(draft, patches, marketplace_ids[0], world.now())
        failed = any(p.severity == "ERROR" for p in problems)
        if not failed and mode is None:
            world.listings[sku] = draft
    status = "INVALID" if failed else ("VALID" if mode else "ACCEPTED")
    return {"sku": sku, "status": status, "submissionId": uuid.uuid4().hex,
            "issues": [_issue(p, marketplace_ids) for p in problems]}
