"""Query parameters as SP-API reads them (arrays as repeated or comma-separated values, enums, the seller's
marketplaces, ISO 8601 times, bounded integers, opaque page tokens), and the created-in-a-window listing that
getFeeds and getReports share. A bad value is a 400 ``InvalidInput`` naming the parameter."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Collection, Iterable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from fastapi import Request

from erpsync.sandbox.core import UTC, invalid_input

if TYPE_CHECKING:
    from erpsync.sandbox.world import World

PROCESSING_STATUSES = ("CANCELLED", "DONE", "FATAL", "IN_PROGRESS", "IN_QUEUE")  # of feeds and reports


def split(raw: Iterable[str] | None) -> list[str]:
    """Swagger arrays arrive as ``a,b`` or as repeated parameters: both give ``["a", "b"]``."""
    return [part.strip() for value in raw or () for part in value.split(",") if part.strip()]


def values(request: Request, name: str) -> list[str]:
    """The array parameter ``name`` of the request (``name=a,b`` or ``name=a&name=b``)."""
    return split(request.query_params.getlist(name))


def enum(name: str, found: list[str], allowed: Collection[str]) -> list[str]:
    """``found`` when every value is in ``allowed``."""
    wrong = [value for value in found if value not in allowed]
    if wrong:
        raise invalid_input(f"{name} has invalid values {wrong}; allowed: {', '.join(sorted(allowed))}.")
    return found


def one_of(request: Request, name: str, allowed: Collection[str]) -> list[str]:
    return enum(name, values(request, name), allowed)


def known_marketplaces(world: World, name: str, ids: list[str]) -> list[str]:
    """``ids`` when each is a marketplace of the world's seller."""
    unknown = [value for value in ids if value not in world.marketplaces]
    if unknown:
        raise invalid_input(f"{name} {unknown} are not marketplaces of this seller; use {sorted(world.marketplaces)}.")
    return ids


def timestamp(request: Request, name: str) -> datetime | None:
    raw = request.query_params.get(name)
    return None if raw is None else parse_time(raw, name)


def parse_time(raw: str, name: str) -> datetime:
    try:
        moment = datetime.fromisoformat(raw.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise invalid_input(f"{name} {raw!r} is not an ISO 8601 date-time (e.g. 2026-01-31T12:00:00Z).") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def integer(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        number = int(raw)
    except ValueError:
        raise invalid_input(f"{name} {raw!r} is not an integer.") from None
    if not low <= number <= high:
        raise invalid_input(f"{name} must be between {low} and {high}, got {number}.")
    return number


def boolean(request: Request, name: str) -> bool:
    raw = request.query_params.get(name)
    if raw is None:
        return False
    if raw.lower() not in ("true", "false"):
        raise invalid_input(f"{name} must be true or false, got {raw!r}.")
    return raw.lower() == "true"


def encode_token(state: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(state, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_token(token: str, name: str = "nextToken") -> dict[str, Any]:
    try:
        state = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (binascii.Error, ValueError):
        raise invalid_input(f"{name} is not a token this API returned; pass back the value from the previous "
                            "page unchanged.") from None
    if not isinstance(state, dict):
        raise invalid_input(f"{name} is not a token this API returned.")
    return state


def created_page(request: Request, world: World, kind: str, records: dict[str, dict[str, Any]],
                 view: Callable[[dict[str, Any]], dict[str, Any]]) -> dict[str, Any]:
    """getFeeds / getReports: the ``kind`` records (``feed`` or ``report``) of the requested ``{kind}Types``
    created in [createdSince (default 90 days ago), createdUntil (default now)], newest first, optionally of some
    ``processingStatuses`` and ``marketplaceIds``, ``pageSize`` (1-100, default 10) at a time. A ``nextToken``
    continues the listing and must come alone."""
    token = request.query_params.get("nextToken")
    if token is not None:
        if set(request.query_params) != {"nextToken"}:
            raise invalid_input("nextToken must be the only parameter when it is given.")
        state = decode_token(token)
    else:
        types = values(request, f"{kind}Types")
        if not types:
            raise invalid_input(f"Either {kind}Types or nextToken is required.")
        marketplaces = values(request, "marketplaceIds")
        if len(types) > 10 or len(marketplaces) > 10:
            raise invalid_input(f"{kind}Types and marketplaceIds take at most 10 values each.")
        now = world.now()
        since = timestamp(request, "createdSince") or now - timedelta(days=90)
        until = timestamp(request, "createdUntil") or now
        if since > until:
            raise invalid_input("createdSince must be before createdUntil.")
        state = {"types": types, "marketplaces": marketplaces,
                 "statuses": one_of(request, "processingStatuses", PROCESSING_STATUSES),
                 "since": since.isoformat(), "until": until.isoformat(),
                 "size": integer(request, "pageSize", 10, 1, 100), "offset": 0}
    since, until = datetime.fromisoformat(state["since"]), datetime.fromisoformat(state["until"])
    with world.lock:
        matching = [r for r in records.values()
                    if r[f"{kind}Type"] in state["types"] and since <= r["createdTime"] <= until
                    and (not state["statuses"] or r["processingStatus"] in state["statuses"])
                    and (not state["marketplaces"] or set(r["marketplaceIds"]) & set(state["marketplaces"]))]
        matching.sort(key=lambda r: r["createdTime"], reverse=True)
        offset, size = state["offset"], state["size"]
        body: dict[str, Any] = {f"{kind}s": [view(r) for r in matching[offset:offset + size]]}
    if offset + size < len(matching):
        body["nextToken"] = encode_token({**state, "offset": offset + size})
    return body
