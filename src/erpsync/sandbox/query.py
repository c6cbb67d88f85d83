"""Query parameters as SP-API reads them (arrays as repeated or comma-separated values, ISO 8601 times,
bounded integers, opaque page tokens); a bad value is a 400 ``InvalidInput`` naming the parameter."""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime
from typing import Any

from fastapi import Request

from erpsync.sandbox.core import UTC, invalid_input


def values(request: Request, name: str) -> list[str]:
    """``name=a,b`` and ``name=a&name=b`` both give ``["a", "b"]``."""
    return [part.strip() for raw in request.query_params.getlist(name) for part in raw.split(",") if part.strip()]


def one_of(request: Request, name: str, allowed: tuple[str, ...] | frozenset[str]) -> list[str]:
    found = values(request, name)
    wrong = [value for value in found if value not in allowed]
    if wrong:
        raise invalid_input(f"{name} has invalid values {wrong}; allowed: {', '.join(sorted(allowed))}.")
    return found


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
