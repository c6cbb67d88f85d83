"""The sandbox's cross-cutting machinery: clock, usage plans (token buckets), auth, faults, Amazon's error shape.

Every SP-API route declares ``Depends(operation("<operationId>"))``. That dependency, in this order:
checks ``x-amz-access-token`` (403 ``Unauthorized``), applies the fault switches (latency, 429 storm, 5xx),
takes a token from the (seller, operation) bucket (429 ``QuotaExceeded``), and names the operation so the
:class:`AmazonHeaders` middleware adds ``x-amzn-RateLimit-Limit`` to 2xx/400/404 answers. Every answer carries
``x-amzn-RequestId``.

Units on the wire are real seconds: ``x-amzn-RateLimit-Limit`` is the plan's rate × ``time_scale`` and LWA's
``expires_in`` is the token lifetime ÷ ``time_scale``. Timestamps in bodies are sandbox time.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, TypeVar

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

if TYPE_CHECKING:
    from erpsync.sandbox.world import World

UTC = timezone.utc

# operationId -> (rate in requests per second, burst), Amazon's defaults (spapi-notes §4, the models' tables).
# Orders v0 getOrder shares its operationId with v2026 getOrder: it is named "getOrderV0" here.
USAGE_PLANS: dict[str, tuple[float, int]] = {
    # Orders v2026-01-01
    "searchOrders": (0.0056, 20),
    "getOrder": (0.5, 30),
    # Orders v0
    "getOrders": (0.0167, 20),
    "getOrderV0": (0.5, 30),
    "getOrderBuyerInfo": (0.5, 30),
    "getOrderAddress": (0.5, 30),
    "getOrderItems": (0.5, 30),
    "getOrderItemsBuyerInfo": (0.5, 30),
    "updateShipmentStatus": (5.0, 15),
    "getOrderRegulatedInfo": (0.5, 30),
    "updateVerificationStatus": (0.5, 30),
    "confirmShipment": (2.0, 10),
    # Tokens 2021-03-01
    "createRestrictedDataToken": (1.0, 10),
    # Feeds 2021-06-30
    "getFeeds": (0.0222, 10),
    "createFeed": (0.0083, 15),
    "cancelFeed": (2.0, 15),
    "getFeed": (2.0, 15),
    "createFeedDocument": (0.5, 15),
    "getFeedDocument": (0.0222, 10),
    # Reports 2021-06-30
    "getReports": (0.0222, 10),
    "createReport": (0.0167, 15),
    "cancelReport": (0.0222, 10),
    "getReport": (2.0, 15),
    "getReportSchedules": (0.0222, 10),
    "createReportSchedule": (0.0222, 10),
    "cancelReportSchedule": (0.0222, 10),
    "getReportSchedule": (0.0222, 10),
    "getReportDocument": (0.0167, 15),
    # Listings Items 2021-08-01
    "deleteListingsItem": (5.0, 5),
    "getListingsItem": (5.0, 10),
    "patchListingsItem": (5.0, 5),
    "putListingsItem": (5.0, 10),
    "searchListingsItems": (5.0, 5),
    # FBA Inventory v1
    "getInventorySummaries": (2.0, 2),
    # Notifications v1
    "getSubscriptions": (1.0, 5),
    "getSubscription": (1.0, 5),
    "createSubscription": (1.0, 5),
    "getSubscriptionById": (1.0, 5),
    "deleteSubscriptionById": (1.0, 5),
    "sendTestNotification": (1.0, 5),
    "getDestinations": (1.0, 5),
    "createDestination": (1.0, 5),
    "getDestination": (1.0, 5),
    "deleteDestination": (1.0, 5),
}

UNAUTHORIZED = ("Unauthorized", "Access to requested resource is denied.")
# Amazon's 403 details for an access token that is not live (the message stays UNAUTHORIZED's)
TOKEN_EXPIRED = "The access token you provided has expired."
TOKEN_INVALID = "The access token you provided is revoked, malformed or invalid."
GRANTLESS_SCOPE = "sellingpartnerapi::notifications"  # the grantless operations the sandbox serves are Notifications
QUOTA_EXCEEDED = ("QuotaExceeded", "You exceeded your quota for the requested resource.")


class SandboxClock:
    """Sandbox time = start + real elapsed × ``time_scale`` + manual advances. Thread-safe."""

    def __init__(self, time_scale: float = 1.0, start: datetime | None = None):
        if time_scale <= 0:
            raise ValueError(f"time_scale must be > 0, got {time_scale}")
        if start is not None and start.utcoffset() is None:
            raise ValueError("start must be timezone-aware")
        self.time_scale = float(time_scale)
        self.start = (start or datetime.now(UTC)).astimezone(UTC)
        self._real_start = time.monotonic()
        self._advanced = 0.0
        self._lock = threading.Lock()

    def seconds(self) -> float:
        """Sandbox seconds since ``start`` (monotonic)."""
        with self._lock:
            return (time.monotonic() - self._real_start) * self.time_scale + self._advanced

    def now(self) -> datetime:
        return self.start + timedelta(seconds=self.seconds())

    def advance(self, seconds: float) -> datetime:
        if seconds < 0:
            raise ValueError("time only moves forward")
        with self._lock:
            self._advanced += seconds
        return self.now()

    def real_seconds(self, sandbox_seconds: float) -> float:
        """How long ``sandbox_seconds`` take in real time."""
        return sandbox_seconds / self.time_scale

    def rescale(self, time_scale: float) -> datetime:
        """Run at ``time_scale`` from now on; sandbox time goes on from where it is (the usage plans' buckets see
        no jump). A benchmark loads a backlog fast, then measures under the plans at another pace."""
        if time_scale <= 0:
            raise ValueError(f"time_scale must be > 0, got {time_scale}")
        with self._lock:
            real = time.monotonic()
            self._advanced += (real - self._real_start) * self.time_scale
            self._real_start, self.time_scale = real, float(time_scale)
        return self.now()


class TokenBucket:
    """Amazon's limiter: ``burst`` tokens, refilled at ``rate`` per sandbox second."""

    def __init__(self, rate: float, burst: int, clock: SandboxClock):
        self.rate, self.burst, self.clock = rate, burst, clock
        self._tokens = float(burst)
        self._stamp = clock.seconds()
        self._lock = threading.Lock()

    def _refill(self) -> None:
        now = self.clock.seconds()
        self._tokens = min(float(self.burst), self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now

    def try_take(self) -> bool:
        with self._lock:
            self._refill()
            if self._tokens >= 1.0:
                self._tokens -= 1.0
                return True
            return False

    @property
    def tokens(self) -> float:
        with self._lock:
            self._refill()
            return self._tokens


class Throttler:
    """One :class:`TokenBucket` per (seller, operation), seeded from ``plans`` (default :data:`USAGE_PLANS`)."""

    def __init__(self, clock: SandboxClock, plans: dict[str, tuple[float, int]] | None = None):
        self.clock = clock
        self.plans = dict(USAGE_PLANS if plans is None else plans)
        self._buckets: dict[tuple[str, str], TokenBucket] = {}
        self._lock = threading.Lock()

    def bucket(self, seller: str, operation: str) -> TokenBucket:
        with self._lock:
            key = (seller, operation)
            if key not in self._buckets:
                rate, burst = self.plans[operation]
                self._buckets[key] = TokenBucket(rate, burst, self.clock)
            return self._buckets[key]

    def rate_header(self, operation: str) -> str:
        """``x-amzn-RateLimit-Limit``: the plan's rate in real requests per second."""
        return f"{self.plans[operation][0] * self.clock.time_scale:g}"

    def reset(self) -> None:
        with self._lock:
            self._buckets.clear()


@dataclass(frozen=True)
class Caller:
    """Who is calling: ``seller_id`` is None for a grantless (client_credentials) token."""

    client_id: str
    seller_id: str | None
    scope: str | None
    operation: str


class AmazonError(Exception):
    """Raise anywhere in a route: becomes ``{"errors":[{code,message,details}]}`` with ``status``."""

    def __init__(self, status: int, code: str, message: str, details: str = "",
                 headers: dict[str, str] | None = None):
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message, self.details = status, code, message, details
        self.headers = headers or {}


def error_body(code: str, message: str, details: str = "") -> dict[str, Any]:
    return {"errors": [{"code": code, "message": message, "details": details}]}


def amazon_error(status: int, code: str, message: str, details: str = "",
                 headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(error_body(code, message, details), status_code=status, headers=headers)


def invalid_input(message: str, details: str = "") -> AmazonError:
    return AmazonError(400, "InvalidInput", message, details)


T = TypeVar("T")


def not_found(message: str, details: str = "") -> AmazonError:
    return AmazonError(404, "NotFound", message, details)


def existing(registry: Mapping[str, T], key: str, kind: str) -> T:
    """``registry[key]``, or Amazon's 404 naming the ``kind`` ("Feed", "Report document") and the id."""
    found = registry.get(key)
    if found is None:
        raise not_found(f"{kind} {key} does not exist.")
    return found


def cancel_queued(item: dict[str, Any], kind: str, key: str) -> None:
    """Cancel a feed or report still IN_QUEUE; any other status is Amazon's 400."""
    if item["processingStatus"] != "IN_QUEUE":
        raise invalid_input(f"{kind} {key} is {item['processingStatus']}; only {kind.lower()}s IN_QUEUE can be "
                            "cancelled.")
    item["processingStatus"] = "CANCELLED"


def world_of(request: Request) -> World:
    return request.app.state.world


def operation(name: str, *, grantless: bool = False) -> Callable[..., Any]:
    """FastAPI dependency for SP-API operation ``name`` (a key of the world's usage plans).

    ``grantless=True``: the operation takes only an application's token (client_credentials grant, scope
    :data:`GRANTLESS_SCOPE`); otherwise only a seller's (refresh_token grant). Returns the :class:`Caller`.
    """

    async def dependency(request: Request) -> Caller:
        world = world_of(request)
        if name not in world.throttler.plans:
            raise RuntimeError(f"operation {name!r} has no usage plan")
        request.scope.setdefault("state", {})["spapi_operation"] = name
        presented = request.headers.get("x-amz-access-token", "")
        token = world.access_token(presented)
        if token is None:
            raise AmazonError(403, *UNAUTHORIZED, details=TOKEN_EXPIRED if world.token_expired(presented)
                              else TOKEN_INVALID)
        if token.scope != (GRANTLESS_SCOPE if grantless else None):
            raise AmazonError(403, *UNAUTHORIZED, details=(
                f"{name} is grantless: call it with an access token of the client_credentials grant, scope "
                f"{GRANTLESS_SCOPE}." if grantless else
                f"{name} acts for a seller: call it with an access token of the refresh_token grant."))
        faults = world.faults
        if faults.applies_to(name):
            if faults.latency_seconds > 0:
                await asyncio.sleep(faults.latency_seconds)
            if faults.throttle_storm_rate > 0 and world.chance(faults.throttle_storm_rate):
                raise AmazonError(429, *QUOTA_EXCEEDED)
            if faults.error_rate > 0 and world.chance(faults.error_rate):
                raise AmazonError(503, "ServiceUnavailable", "Service temporarily unavailable. Please retry.")
        seller = token.seller_id or token.client_id
        if not world.throttler.bucket(seller, name).try_take():
            raise AmazonError(429, *QUOTA_EXCEEDED)
        world.tick()
        return Caller(token.client_id, token.seller_id, token.scope, name)

    dependency.__name__ = f"operation_{name}"
    dependency.spapi_operation = name  # type: ignore[attr-defined]  # found by validation_error_handler
    return dependency


def _route_operation(request: Request) -> Callable[[Request], Any] | None:
    """The ``operation()`` dependency of the route that matched ``request``, if it has one."""
    dependant = getattr(request.scope.get("route"), "dependant", None)
    return next((d.call for d in getattr(dependant, "dependencies", ()) if hasattr(d.call, "spapi_operation")), None)


RATE_HEADER_STATUSES = frozenset({400, 404})


class AmazonHeaders:
    """ASGI middleware: ``x-amzn-RequestId`` on every answer, ``x-amzn-RateLimit-Limit`` on 2xx/400/404 of an operation."""

    def __init__(self, app: Any):
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = str(uuid.uuid4())

        async def send_with_headers(message: dict) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", [])
                           if k.lower() not in (b"x-amzn-requestid", b"x-amzn-ratelimit-limit")]
                headers.append((b"x-amzn-RequestId", request_id.encode()))
                status = message["status"]
                op = scope.get("state", {}).get("spapi_operation")
                if op and (200 <= status < 300 or status in RATE_HEADER_STATUSES):
                    world = scope["app"].state.world
                    headers.append((b"x-amzn-RateLimit-Limit", world.throttler.rate_header(op).encode()))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


async def amazon_error_handler(request: Request, exc: AmazonError) -> JSONResponse:
    return amazon_error(exc.status, exc.code, exc.message, exc.details, exc.headers)


async def validation_error_handler(request: Request, exc: RequestValidationError) -> JSONResponse:
    """FastAPI's 422 becomes Amazon's 400 ``InvalidInput``, naming each bad parameter.

    FastAPI refuses a body that is not JSON before the route's dependencies run; the route's ``operation()`` runs
    here then, so that answer too is authenticated, throttled and carries the rate header like any other 400.
    """
    check = _route_operation(request)
    if check is not None and "spapi_operation" not in request.scope.get("state", {}):
        try:
            await check(request)
        except AmazonError as refused:
            return await amazon_error_handler(request, refused)
    problems = []
    for error in exc.errors():
        location = [str(part) for part in error.get("loc", ()) if part not in ("query", "path", "header")]
        where = ".".join(location) if location else "request"
        if error.get("type") == "json_invalid":
            problems.append(f"body is not valid JSON: {error.get('msg')}")
        elif error.get("type") == "missing":
            problems.append(f"{where} is required")
        else:
            problems.append(f"{where}: {error.get('msg')}")
    return amazon_error(400, "InvalidInput", "Invalid input.", "; ".join(problems))
