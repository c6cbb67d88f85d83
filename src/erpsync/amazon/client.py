"""The SP-API client: the one door through which erpsync speaks to Amazon, on httpx.

``AmazonClient(settings)`` makes each SP-API call itself (one ``httpx.Client``: URL = endpoint + the operation's path,
query parameters, a JSON body) and adds what the connector needs around every call:

1. the circuit breaker of the operation (:mod:`circuit`), then a token from the shared bucket (:mod:`ratelimit`);
2. an LWA access token (:mod:`lwa`), our headers (``user-agent: erpsync/<version>``), timeouts always set; a token
   Amazon refuses (401/403 ``Unauthorized``: it expired in flight) is replaced and the call sent once more;
3. the answer mapped to erpsync's errors, keeping Amazon's ``x-amzn-RequestId``:
   429 → :class:`Throttled` (bucket emptied, backoff with jitter); 5xx and network failures →
   :class:`AmazonUnavailable`; 400/403/404 (any other 4xx, and a token refused twice) → :class:`AmazonRejected`
   with Amazon's code and message.

The operations live in ``orders.py``, ``feeds.py``, ``reports.py``, ``listings.py``, ``inventory.py`` and
``notifications.py``, reachable as ``client.orders`` … ``client.notifications``. Each module names the Amazon model
its paths, methods and operationIds (= usage plans) come from; ``tests/amazon/test_paths.py`` checks every call
against those models. python-amazon-sp-api is not a dependency of erpsync: the tests use the unmodified library to
prove that the sandbox speaks Amazon's protocol (``tests/sandbox/test_*``).

Logging: one ``amazon.call`` event per call (operation, status, request id, duration), never a URL with its query
(buyer data, pre-signed document signatures) nor a header; httpx's and httpcore's own loggers are held at WARNING
(they log each request URL at INFO and DEBUG), see :func:`erpsync.logs.quiet_http_loggers`.

Endpoints: ``settings.amazon.endpoint`` is ``na`` / ``eu`` / ``fe`` (Amazon's regions, LWA at api.amazon.com),
``sandbox`` (``settings.amazon.sandbox_url``) or a URL; ``endpoint=`` overrides it (the sandbox in tests). Outside
Amazon's regions LWA is ``<endpoint>/auth/o2/token`` unless ``settings.amazon.lwa_url`` says otherwise, and the
usage plans run ``settings.sandbox.time_scale`` times faster, as the sandbox does.
"""

from __future__ import annotations

import gzip
import json
import platform
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, BinaryIO

import httpx

import erpsync
from erpsync import logs
from erpsync.amazon.circuit import CircuitBreaker
from erpsync.amazon.feeds import Feeds
from erpsync.amazon.inventory import Inventory
from erpsync.amazon.listings import Listings
from erpsync.amazon.lwa import LWA_URL, LwaTokens
from erpsync.amazon.notifications import Notifications
from erpsync.amazon.orders import Orders
from erpsync.amazon.ratelimit import RateLimiter
from erpsync.amazon.reports import Reports
from erpsync.config import Settings
from erpsync.errors import AmazonRejected, AmazonUnavailable, ConfigError, Throttled

REGIONS = {
    "na": "https://sellingpartnerapi-na.amazon.com",
    "eu": "https://sellingpartnerapi-eu.amazon.com",
    "fe": "https://sellingpartnerapi-fe.amazon.com",
}
USER_AGENT = (f"erpsync/{erpsync.__version__} (Language=Python/{platform.python_version()}; "
              f"Platform={platform.system()})")

log = logs.get("erpsync.amazon")
logs.quiet_http_loggers()


@dataclass(frozen=True)
class Reply:
    """A successful SP-API answer: HTTP status, parsed JSON body (None when empty) and Amazon's request id."""

    status: int
    body: Any
    request_id: str | None


def _resolve(settings: Settings, endpoint: str | None) -> tuple[str, str, bool]:
    """(SP-API base URL, LWA URL, is a sandbox/test endpoint)."""
    amazon = settings.amazon
    if endpoint is None and amazon.endpoint in REGIONS:
        return REGIONS[amazon.endpoint], amazon.lwa_url or LWA_URL, False
    url = endpoint or (amazon.sandbox_url if amazon.endpoint == "sandbox" else amazon.endpoint)
    if not url:
        raise ConfigError("amazon.endpoint is 'sandbox' but amazon.sandbox_url is not set: start the sandbox "
                          "(erpsync sandbox) and set its URL, or choose na, eu or fe")
    if not url.startswith(("http://", "https://")):
        raise ConfigError(f"amazon.endpoint {url!r} is not na, eu, fe, sandbox or an http(s):// URL")
    url = url.rstrip("/")
    return url, amazon.lwa_url or f"{url}/auth/o2/token", True


class AmazonClient:
    """SP-API for one seller (``settings.amazon.seller_id``). Use as a context manager, or call :meth:`close`.

    ``limiter`` / ``breaker`` default to ones built from ``settings.amazon.rate_limit``; ``time_scale`` defaults
    to ``settings.sandbox.time_scale`` for a sandbox endpoint and 1 for Amazon's regions.
    """

    def __init__(self, settings: Settings, *, endpoint: str | None = None, time_scale: float | None = None,
                 limiter: RateLimiter | None = None, breaker: CircuitBreaker | None = None):
        amazon = settings.amazon
        self.endpoint, lwa_url, is_sandbox = _resolve(settings, endpoint)
        self.seller_id = amazon.seller_id
        self.marketplace_ids = list(amazon.marketplace_ids)
        if not self.marketplace_ids:
            raise ConfigError("amazon.marketplace_ids is empty: name at least one marketplace")
        self.time_scale = time_scale if time_scale is not None else (
            settings.sandbox.time_scale if is_sandbox else 1.0)
        timeout = amazon.timeout_seconds
        self._http = httpx.Client(timeout=httpx.Timeout(timeout, connect=min(10.0, timeout)),
                                  headers={"user-agent": USER_AGENT}, follow_redirects=False)
        self.lwa = LwaTokens(lwa_url, amazon.client_id, settings.secrets.lwa_client_secret,
                             settings.secrets.lwa_refresh_token, http=self._http, user_agent=USER_AGENT)
        self._own_limiter = limiter is None
        self.limiter = limiter or RateLimiter.from_settings(settings, time_scale=self.time_scale)
        limits = amazon.rate_limit
        self.breaker = breaker or CircuitBreaker(limits.circuit_failures, limits.circuit_reset_seconds)
        self.orders = Orders(self)
        self.feeds = Feeds(self)
        self.reports = Reports(self)
        self.listings = Listings(self)
        self.inventory = Inventory(self)
        self.notifications = Notifications(self)

    # --- lifecycle ----------------------------------------------------------------------------------------------

    def close(self) -> None:
        self._http.close()
        if self._own_limiter:
            self.limiter.close()

    def __enter__(self) -> AmazonClient:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # --- the one call -------------------------------------------------------------------------------------------

    def call(self, operation: str, method: str, path: str, *, params: dict[str, Any] | None = None,
             body: Any = None, grantless: str | None = None) -> Reply:
        """Make one SP-API call. ``operation`` names the usage plan; ``grantless`` is an LWA scope for
        grantless operations. Raises erpsync errors (see the module docstring); never sleeps. The one retry:
        an access token Amazon refuses (401/403 ``Unauthorized``) may have expired in flight, so it is dropped
        and the call is sent once more with a new token; a second refusal is a real one."""
        bucket_owner = f"app:{self.lwa.client_id}" if grantless else self.seller_id
        self.breaker.before(operation)
        self.limiter.acquire(bucket_owner, operation)
        query = {key: _param(value) for key, value in (params or {}).items() if value is not None}
        response, token = self._send(operation, method, path, query, body, grantless)
        if _token_refused(response):
            # the refused call was not served: the retry goes out on the same bucket token
            log.warning("amazon.call.token_refused", operation=operation, status=response.status_code,
                        request_id=response.headers.get("x-amzn-RequestId"))
            self.lwa.invalidate(token)
            response, _ = self._send(operation, method, path, query, body, grantless)
        status, request_id = response.status_code, response.headers.get("x-amzn-RequestId")
        rate_header = response.headers.get("x-amzn-RateLimit-Limit")
        if status == 429:
            self.breaker.success(operation)  # Amazon is up, we are too fast
            wait = self.limiter.throttled(bucket_owner, operation)
            log.warning("amazon.call.throttled", operation=operation, request_id=request_id, retry_after=wait)
            raise Throttled(f"{operation}: Amazon answered 429 {_error_text(response)}; retry in {wait:.2f}s "
                            f"(request id {request_id})", retry_after=wait)
        if status >= 500:
            self.breaker.failure(operation)
            log.warning("amazon.call.unavailable", operation=operation, status=status, request_id=request_id)
            raise AmazonUnavailable(f"{operation} {path}: Amazon answered HTTP {status} {_error_text(response)} "
                                    f"(request id {request_id})")
        self.breaker.success(operation)
        self.limiter.observe(bucket_owner, operation, rate_header)
        if status >= 400:
            code, message = _first_error(response)
            log.warning("amazon.call.rejected", operation=operation, status=status, code=code, request_id=request_id)
            raise AmazonRejected(f"{operation} {path}: Amazon refused the request (HTTP {status} {code}: {message}; "
                                 f"request id {request_id})", amazon_code=code, request_id=request_id, status=status)
        if not response.content:
            return Reply(status, None, request_id)
        try:
            return Reply(status, response.json(), request_id)
        except ValueError:
            raise AmazonUnavailable(f"{operation} {path}: HTTP {status} with a body that is not JSON "
                                    f"(request id {request_id})") from None

    def _send(self, operation: str, method: str, path: str, query: dict[str, Any], body: Any,
              grantless: str | None) -> tuple[httpx.Response, str]:
        """One HTTP exchange with a (cached or new) LWA token: (the response, the token sent)."""
        token = self.lwa.grantless_token(grantless) if grantless else self.lwa.access_token()
        headers = {"user-agent": USER_AGENT, "x-amz-access-token": token, "accept": "application/json",
                   "x-amz-date": datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")}
        content = None
        if body is not None:
            headers["content-type"] = "application/json"
            content = json.dumps(body).encode("utf-8")
        started = time.monotonic()
        try:
            response = self._http.request(method, self.endpoint + path, params=query, content=content,
                                          headers=headers)
        except httpx.HTTPError as exc:
            self.breaker.failure(operation)
            log.warning("amazon.call.network", operation=operation, error=type(exc).__name__)
            raise AmazonUnavailable(f"{operation} {path}: network failure talking to {self.endpoint}: "
                                    f"{type(exc).__name__}: {exc}") from None
        log.debug("amazon.call", operation=operation, status=response.status_code,
                  request_id=response.headers.get("x-amzn-RequestId"),
                  ms=round((time.monotonic() - started) * 1000, 1))
        return response, token

    # --- pre-signed document URLs (feeds, reports) --------------------------------------------------------------

    def upload(self, url: str, data: bytes, content_type: str) -> None:
        """PUT a feed document to its pre-signed URL (no SP-API headers; same content type as declared)."""
        self._transfer("PUT", url, content=data, headers={"content-type": content_type})

    def download(self, url: str, *, compression: str | None = None) -> bytes:
        """GET a document from its pre-signed URL; ``compression="GZIP"`` is unpacked."""
        data = self._transfer("GET", url).content
        if compression is None:
            return data
        if compression != "GZIP":
            raise AmazonUnavailable(f"document at {url.split('?')[0]} uses unknown compression {compression!r}")
        try:
            return gzip.decompress(data)
        except (OSError, EOFError) as exc:
            raise AmazonUnavailable(f"document at {url.split('?')[0]} is not valid GZIP: {exc}") from None

    def download_to(self, url: str, sink: BinaryIO) -> None:
        """GET a document from its pre-signed URL into ``sink`` as it arrives (as sent: GZIP is the reader's to
        unpack), so a large report is never whole in memory."""
        with self._pre_signed("GET", url) as response:
            for chunk in response.iter_bytes(1 << 16):
                sink.write(chunk)

    def _transfer(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        with self._pre_signed(method, url, **kwargs) as response:
            response.read()
        return response

    @contextmanager
    def _pre_signed(self, method: str, url: str, **kwargs: Any) -> Iterator[httpx.Response]:
        """A request to a pre-signed URL, its response streamed; a network failure, also while the body is read,
        or an HTTP error status is AmazonUnavailable."""
        where = url.split("?")[0]  # pre-signed query strings carry credentials: never log them
        try:
            with self._http.stream(method, url, **kwargs) as response:
                if response.status_code >= 300:
                    # an expired pre-signed URL (403) is cured by asking Amazon for the document again: retryable
                    raise AmazonUnavailable(f"{method} {where} answered HTTP {response.status_code}")
                yield response
        except httpx.HTTPError as exc:
            raise AmazonUnavailable(f"{method} {where} failed: {type(exc).__name__}: {exc}") from None


def _param(value: Any) -> Any:
    """Query values: lists as comma-separated strings, datetimes as ISO 8601 UTC with a Z."""
    if isinstance(value, datetime):
        if value.utcoffset() is None:
            raise ValueError(f"timestamp {value!r} has no timezone")
        return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, (list, tuple, set, frozenset)):
        return ",".join(str(item) for item in value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


def _token_refused(response: httpx.Response) -> bool:
    return response.status_code in (401, 403) and _first_error(response)[0] == "Unauthorized"


def _first_error(response: httpx.Response) -> tuple[str, str]:
    try:
        errors = response.json().get("errors") or []
        first = errors[0]
        return str(first.get("code") or "NoCode"), str(first.get("message") or "") + (
            f" ({first['details']})" if first.get("details") else "")
    except (ValueError, AttributeError, IndexError, TypeError):
        return "NoCode", response.text[:200]


def _error_text(response: httpx.Response) -> str:
    code, message = _first_error(response)
    return f"{code}: {message}" if message else code

