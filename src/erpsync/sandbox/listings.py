"""Listings Items API 2021-08-01: getListingsItem, patchListingsItem and putListingsItem over ``world.listings``
(spapi-notes §8).

A patch or a put is checked and applied at once (``ACCEPTED``) or refused as a whole (``INVALID`` with issues);
``mode=VALIDATION_PREVIEW`` only checks (``VALID`` | ``INVALID``). The same checks as the JSON_LISTINGS_FEED
(``catalog.py``) apply: top-level attribute paths only, whole non-negative quantities, positive numeric prices. A put
is the feed's UPDATE: it creates the listing or replaces all its attributes (those not given are removed).
"""

from __future__ import annotations

import copy
import uuid
from typing import Any, Literal

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


class ListingsItemPutRequest(BaseModel):
    productType: str = Field(min_length=1)
    requirements: Literal["LISTING", "LISTING_PRODUCT_ONLY", "LISTING_OFFER_ONLY"] | None = None
    attributes: dict[str, Any]


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
    mode = _mode(request)
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
    return _submission(sku, problems, marketplace_ids, mode)


@router.put(f"{API}/{{sellerId}}/{{sku}}")
def put_listings_item(sellerId: str, sku: str, body: ListingsItemPutRequest, request: Request,
                      caller: Caller = Depends(operation("putListingsItem"))) -> dict[str, Any]:
    """Create the listing or replace it whole (the feed's UPDATE), after the same checks as a patch."""
    world = world_of(request)
    _own(sellerId, caller)
    marketplace_ids = _marketplaces(request, world)
    mode = _mode(request)
    problems = catalog.check_all(body.attributes)
    failed = any(p.severity == "ERROR" for p in problems)
    with world.lock:
        current = world.listings.get(sku)
        draft = copy.deepcopy(current) if current is not None else catalog.new_listing(
            sku, body.productType, world.now(), world.marketplaces[marketplace_ids[0]].currency)
        draft.product_type = body.productType
        if not failed and mode is None:
            catalog.put_attributes(draft, body.attributes, world.now(), replace_all=True)
            world.listings[sku] = draft
    return _submission(sku, problems, marketplace_ids, mode)


def _mode(request: Request) -> str | None:
    mode = request.query_params.get("mode")
    if mode not in (None, "VALIDATION_PREVIEW"):
        raise invalid_input(f"mode {mode!r} is not supported; leave it out or use VALIDATION_PREVIEW.")
    return mode


def _submission(sku: str, problems: list[catalog.Problem], marketplace_ids: list[str],
                mode: str | None) -> dict[str, Any]:
    """Amazon's ``ListingsItemSubmissionResponse``."""
    failed = any(p.severity == "ERROR" for p in problems)
    status = "INVALID" if failed else ("VALID" if mode else "ACCEPTED")
    return {"sku": sku, "status": status, "submissionId": uuid.uuid4().hex,
            "issues": [_issue(p, marketplace_ids) for p in problems]}
