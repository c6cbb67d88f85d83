"""Login with Amazon: access tokens for SP-API calls, cached and refreshed before they expire.

One token per grant (the seller's refresh token, or a grantless ``scope``), kept until ``expires_in`` minus a margin
(10 % of the lifetime, at most 60 s — so a 60 s token of a time-scaled sandbox is renewed 6 s early, a real 3600 s
token 60 s early). A token Amazon refuses anyway (it expired in flight, or the clocks disagree) is dropped with
:meth:`LwaTokens.invalidate` and the next call asks LWA again. A failed token request is never retried here: it
raises at once with the HTTP status — :class:`errors.ConfigError` when LWA refuses the credentials (an invalid or
revoked refresh token, a wrong client id or secret), :class:`errors.AmazonUnavailable` when LWA is down or
unreachable (the job retries).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx
from pydantic import SecretStr

from erpsync import logs
from erpsync.errors import AmazonUnavailable, ConfigError, Throttled

LWA_URL = "https://api.amazon.com/auth/o2/token"
MAX_MARGIN_SECONDS = 60.0
LWA_THROTTLED_RETRY_SECONDS = 5.0  # a 429 of the token endpoint: ask again after this, no retry spent

log = logs.get("erpsync.amazon.lwa")


@dataclass(frozen=True)
class _Token:
    value: str
    expires_at: float  # on the clock below
    refresh_at: float


class LwaTokens:
    """Access tokens for one application and one seller (``refresh_token``), plus grantless ones by scope."""

    def __init__(self, url: str, client_id: str, client_secret: SecretStr, refresh_token: SecretStr, *,
                 http: httpx.Client, user_agent: str, clock: Callable[[], float] = time.monotonic):
        self.url, self.client_id = url, client_id
        self._secret, self._refresh = client_secret, refresh_token
        self._http, self._user_agent, self._clock = http, user_agent, clock
        self._tokens: dict[str, _Token] = {}
        self._lock = threading.Lock()
        self.requests = 0  # token requests made (observable for tests and metrics)

    def access_token(self) -> str:
        """The seller's access token (refresh-token grant)."""
        return self._get("", {"grant_type": "refresh_token",
                              "refresh_token": self._refresh.get_secret_value()})

    def grantless_token(self, scope: str) -> str:
        """An application token for grantless operations (client-credentials grant with ``scope``)."""
        return self._get(scope, {"grant_type": "client_credentials", "scope": scope})

    def invalidate(self, value: str) -> None:
        """Forget the cached token ``value`` (Amazon refused it): the next call for its grant asks LWA again.
        A token another thread has already replaced is left alone."""
        with self._lock:
            for key, token in list(self._tokens.items()):
                if token.value == value:
                    del self._tokens[key]

    def _get(self, key: str, grant: dict[str, str]) -> str:
        with self._lock:
            token = self._tokens.get(key)
            if token is None or self._clock() >= token.refresh_at:
                token = self._tokens[key] = self._request(grant)
            return token.value

    def _request(self, grant: dict[str, str]) -> _Token:
        form = {**grant, "client_id": self.client_id, "client_secret": self._secret.get_secret_value()}
        what = "grantless" if grant["grant_type"] == "client_credentials" else "seller"
        self.requests += 1
        started = self._clock()
        try:
            response = self._http.post(self.url, data=form, headers={
                "user-agent": self._user_agent, "content-type": "application/x-www-form-urlencoded;charset=UTF-8"})
        except httpx.HTTPError as exc:
            log.warning("amazon.lwa.unreachable", url=self.url, error=type(exc).__name__)
            raise AmazonUnavailable(f"LWA token request to {self.url} failed: {type(exc).__name__}: {exc}") from None
        try:
            body = response.json()
        except ValueError:
            body = {}
        if not isinstance(body, dict):
            body = {}
        if response.status_code != 200 or not body.get("access_token"):
            raise self._failure(response.status_code, body)
        lifetime = float(body.get("expires_in") or 3600)
        margin = min(MAX_MARGIN_SECONDS, lifetime * 0.1)
        log.info("amazon.lwa.token", grant=what, expires_in=lifetime)
        return _Token(body["access_token"], started + lifetime, started + lifetime - margin)

    def _failure(self, status: int, body: dict) -> Exception:
        error = body.get("error") or "no error code"
        description = body.get("error_description") or ""
        detail = f"HTTP {status} {error}" + (f": {description}" if description else "")
        log.warning("amazon.lwa.refused", status=status, error=error)
        if status == 400 and error == "invalid_grant":
            return ConfigError(f"LWA refused the refresh token ({detail}): it is invalid or has been revoked. "
                               f"Authorize the app again in Seller Central and set ERPSYNC_LWA_REFRESH_TOKEN")
        if status == 401 or error == "invalid_client":
            return ConfigError(f"LWA refused the application credentials ({detail}): check amazon.client_id and "
                               f"ERPSYNC_LWA_CLIENT_SECRET")
        if status == 429:  # throttling is not failure: no retry budget spent
            return Throttled(f"LWA token endpoint {self.url} throttled the token request ({detail})",
                             retry_after=LWA_THROTTLED_RETRY_SECONDS)
        if status >= 500:
            return AmazonUnavailable(f"LWA token endpoint {self.url} is unavailable ({detail})")
        return ConfigError(f"LWA token request failed ({detail}); check the amazon settings and secrets")
