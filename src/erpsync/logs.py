"""Structured logging (structlog): one JSON-ish line per business event, no PII and no secrets.

``configure()`` is called once by the CLI. The redaction processor drops values of keys that carry personal data
or secrets, and masks anything that looks like an LWA token, whatever key it hides under.

Every line carries a ``correlation_id``: the Amazon order id, feed id or settlement id of the job being run
(:func:`correlate`, bound by the runtime for each message), the request id of a web request, else the record the
line itself names, else ``-``.
"""

from __future__ import annotations

import logging
import re
import sys

import structlog

PII_KEYS = frozenset({
    "name", "buyer_name", "email", "buyer_email", "phone", "address", "line1", "line2", "line3",
    "ship_to", "recipient", "buyer", "addr", "postal_code",
})
SECRET_KEYS = frozenset({
    "password", "secret", "token", "access_token", "refresh_token", "client_secret", "authorization",
    "x-amz-access-token", "api_token", "webhook_token",
})
_TOKEN = re.compile(r"Atz[ar]\|[^\s\"']+|Atz\.sprdt\|[^\s\"']+")
# the query of any http(s) URL: pre-signed signatures (X-Amz-Signature, X-Amz-Credential) or buyer data
_URL_QUERY = re.compile(r"(https?://[^\s\"'?#]+)\?[^\s\"'#]*")


CORRELATION_KEYS = ("amazon_order_id", "feed_id", "settlement_id", "report_id")


def correlation_id(payload, fallback: str | None = None) -> str:
    """The business id a job's kwargs are about (looking one level into a nested ``order``), else ``fallback``."""
    if isinstance(payload, dict):
        for source in (payload, payload.get("order")):
            if isinstance(source, dict):
                for key in CORRELATION_KEYS:
                    if source.get(key):
                        return str(source[key])
    return fallback or "-"


def correlate(value: str) -> None:
    """Bind ``value`` as the correlation id of every line this thread (or task) logs from now on."""
    structlog.contextvars.bind_contextvars(correlation_id=value)


def _correlation(_logger, _method, event_dict: dict) -> dict:
    if "correlation_id" not in event_dict:
        event_dict["correlation_id"] = correlation_id(event_dict)
    return event_dict


def _scrub(value):
    if isinstance(value, str):
        return _URL_QUERY.sub(r"\1?[redacted]", _TOKEN.sub("Atz*|[redacted]", value))
    return value


def redact(_logger, _method, event_dict: dict) -> dict:
    for key in list(event_dict):
        low = key.lower()
        if low in SECRET_KEYS or low in PII_KEYS:
            event_dict[key] = "[redacted]"
        else:
            event_dict[key] = _scrub(event_dict[key])
    return event_dict


class _CurrentStderr:
    """Writes to whatever ``sys.stderr`` is at the time of writing (test runners swap it)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


# Libraries that log each request's full URL: httpx at INFO ("HTTP Request: GET <url>"), httpcore at DEBUG. A URL
# can carry a pre-signed document's signature or buyer data in its query, so they never log below WARNING.
HTTP_LOGGERS = ("httpx", "httpcore", "hpack")


def quiet_http_loggers() -> None:
    """Hold the HTTP libraries' loggers at WARNING whatever level the root logger has."""
    for name in HTTP_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


def configure(level: str = "INFO", json: bool = False) -> None:
    logging.basicConfig(format="%(message)s", stream=_CurrentStderr(), level=getattr(logging, level.upper(), 20))
    quiet_http_loggers()
    renderer = structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=False)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            _correlation,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            redact,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(getattr(logging, level.upper(), 20)),
        logger_factory=structlog.PrintLoggerFactory(file=_CurrentStderr()),
        cache_logger_on_first_use=False,
    )


def get(name: str | None = None):
    return structlog.get_logger(name)
