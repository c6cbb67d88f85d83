"""Error taxonomy. Every failure is one of three kinds:

* :class:`Retryable` — the world is temporarily in the way (network, 5xx, 429, Sage unavailable, a record lock).
  The job is rescheduled with backoff and jitter; ``retry_after`` (seconds) overrides the backoff when known.
* :class:`Permanent` — this message can never succeed as it is (unknown SKU, rejected by Amazon, totals differ).
  The job becomes a dead letter at once, kept for review and replay after the mapping or data is fixed.
* :class:`ConfigError` — the installation is wrong (bad credentials, missing table). Nothing to retry; fix and rerun.

Each error carries a stable ``code`` for dashboards and a message that names the record and the fix.
"""

from __future__ import annotations


class ErpsyncError(Exception):
    code = "erpsync_error"

    def __init__(self, message: str, *, code: str | None = None, record: str | None = None):
        super().__init__(message)
        if code:
            self.code = code
        self.record = record

    @property
    def message(self) -> str:
        return str(self)


class ConfigError(ErpsyncError):
    code = "config"


class Retryable(ErpsyncError):
    """Try again later. ``retry_after`` is a hint in seconds (None: use the backoff schedule).

    ``spend_retry`` False means the attempt does not count against the retry budget (a record lock, a
    throttled call, an open circuit: the work was not attempted)."""

    code = "retryable"
    spend_retry = True

    def __init__(self, message: str, *, retry_after: float | None = None, **kw):
        super().__init__(message, **kw)
        self.retry_after = retry_after


class Permanent(ErpsyncError):
    code = "permanent"


# --- retryable -----------------------------------------------------------------------------------------------


class RateLimited(Retryable):
    """A token bucket is empty: the call was not made. Reschedule after ``retry_after``."""

    code = "rate_limited"
    spend_retry = False


class Throttled(Retryable):
    """Amazon answered 429: it did not do the work, so no retry is spent (throttling is not failure)."""

    code = "throttled"
    spend_retry = False


class AmazonUnavailable(Retryable):
    code = "amazon_unavailable"


class CircuitOpen(Retryable):
    code = "circuit_open"
    spend_retry = False


class SageUnavailable(Retryable):
    code = "sage_unavailable"


class RecordLocked(Retryable):
    """Another job holds this record; defer without spending a retry."""

    code = "record_locked"
    spend_retry = False


# --- permanent -----------------------------------------------------------------------------------------------


class InvalidData(Permanent):
    code = "invalid_data"


class AmazonRejected(Permanent):
    """Amazon refused the request (400/403/404). Keeps Amazon's error code and request id."""

    code = "amazon_rejected"

    def __init__(self, message: str, *, amazon_code: str | None = None, request_id: str | None = None,
                 status: int | None = None, **kw):
        super().__init__(message, **kw)
        self.amazon_code, self.request_id, self.status = amazon_code, request_id, status


class UnknownSku(Permanent):
    code = "unknown_sku"


class TotalMismatch(Permanent):
    code = "total_mismatch"


class SageRejected(Permanent):
    """Sage's import refused the order (unknown customer or item, duplicate TranNo, customer on hold)."""

    code = "sage_rejected"


class ConflictAfterShipment(Permanent):
    code = "cancelled_after_shipment"


def classify(exc: BaseException) -> str:
    """'retryable', 'permanent' or 'config' for any exception; unknown exceptions are treated as retryable
    (a bug or an outage we did not foresee should not silently drop a message — it ends in the dead letters
    once the retry budget is spent)."""
    if isinstance(exc, Permanent):
        return "permanent"
    if isinstance(exc, ConfigError):
        return "config"
    return "retryable"
