"""JSON_LISTINGS_FEED processing: validate the document and each message, apply them, write the processing report.

Pure, in two steps: :func:`check` parses and validates a document (bytes) without reading any listings, so the
sandbox runs it outside the world's lock; :func:`apply` applies the valid messages to the seller's listings (in
place) and returns the processing report in the official format (``listings-feed-processing-report-schema-v2.json``);
:func:`process` does both. The feed is checked against ``listings-feed-schema-v2.json`` and every message against
``listings-feed-message-schema-v2.json``, read at runtime from Amazon's models folder (``$ERPSYNC_SPAPI_REFERENCE``,
default ``../shared/reference/spapi`` next to the repository); without that folder the built-in structural checks of
:func:`structural_problems` apply.

A document that is not JSON, or whose envelope (header, messages array) is wrong, makes the feed FATAL: nothing
is applied and the report has one issue without a ``messageId``. Otherwise each message is accepted (applied in
order) or invalid (issues with its ``messageId``): schema violations, a SKU the seller does not have (PATCH,
PARTIAL_UPDATE, DELETE), invalid values (negative quantity, non-numeric price, ...), duplicate message ids.
"""

from __future__ import annotations

import copy
import json
import os
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any

import jsonschema

from erpsync.sandbox import catalog
from erpsync.sandbox.world import Listing

FEED_TYPE = "JSON_LISTINGS_FEED"
OPERATIONS = ("UPDATE", "PARTIAL_UPDATE", "PATCH", "DELETE")
MAX_MESSAGES = 25_000
MAX_MESSAGE_ID = 2**31 - 1

# Issue codes (the sandbox's own; Amazon's are numeric strings too).
NOT_JSON = "4000001"
BAD_FEED = "4000002"
BAD_MESSAGE = "4000003"
UNKNOWN_SKU = "4000004"
DUPLICATE_MESSAGE = "4000005"

REFERENCE_ENV = "ERPSYNC_SPAPI_REFERENCE"
_REPO = Path(__file__).resolve().parents[3]


def reference_dir() -> Path | None:
    """Amazon's models folder: ``$ERPSYNC_SPAPI_REFERENCE``, else ``shared/reference/spapi`` beside the repo."""
    explicit = os.environ.get(REFERENCE_ENV)
    candidates = [Path(explicit)] if explicit else [_REPO.parent / "shared" / "reference" / "spapi"]
    return next((path for path in candidates if (path / "schemas" / "feeds").is_dir()), None)


@dataclass(frozen=True)
class Schemas:
    """Validators for the feed and one message; both None means the built-in structural checks."""

    feed: jsonschema.protocols.Validator | None
    message: jsonschema.protocols.Validator | None


@lru_cache(maxsize=4)
def _schemas_at(folder: str | None) -> Schemas:
    if folder is None:
        return Schemas(None, None)
    feeds = Path(folder) / "schemas" / "feeds"

    def load(name: str) -> jsonschema.protocols.Validator:
        schema = json.loads((feeds / name).read_text(encoding="utf-8"))
        return jsonschema.validators.validator_for(schema)(schema)

    return Schemas(load("listings-feed-schema-v2.json"), load("listings-feed-message-schema-v2.json"))


def schemas(folder: Path | None = None) -> Schemas:
    folder = folder or reference_dir()
    return _schemas_at(str(folder) if folder else None)


def _describe(error: jsonschema.ValidationError, message: Any, skip: int = 0) -> str:
    """One schema error as text; ``skip`` drops the leading ``messages/<i>`` of a feed-level path."""
    if error.validator == "oneOf" and len(error.absolute_path) == skip and isinstance(message, dict):
        return (f"message does not fit operationType {message.get('operationType')!r}: "
                + _operation_rule(message.get("operationType")))
    return f"{'/'.join(str(p) for p in list(error.absolute_path)[skip:]) or '(message)'}: {error.message}"


def _feed_problems(feed: Any, validator: jsonschema.protocols.Validator | None
                   ) -> tuple[list[str], dict[int, list[str]]]:
    """Problems of the feed as a whole, and problems the feed schema finds in message ``i``."""
    if validator is None:
        return structural_problems(feed), {}
    envelope: list[str] = []
    per_message: dict[int, list[str]] = {}
    for error in validator.iter_errors(feed):
        where = list(error.absolute_path)
        if len(where) >= 2 and where[0] == "messages" and isinstance(where[1], int):
            per_message.setdefault(where[1], []).append(_describe(error, feed["messages"][where[1]], skip=2))
        else:
            envelope.append(f"{'/'.join(map(str, where)) or '(document)'}: {error.message}")
    return envelope, per_message


def _message_problems(message: Any, validator: jsonschema.protocols.Validator | None) -> list[str]:
    if validator is None:
        return structural_message_problems(message)
    return [_describe(error, message) for error in validator.iter_errors(message)]


def _operation_rule(operation: Any) -> str:
    return {
        "UPDATE": "UPDATE needs productType and attributes, and no patches",
        "PARTIAL_UPDATE": "PARTIAL_UPDATE needs productType and attributes, and no requirements or patches",
        "PATCH": "PATCH needs productType and patches, and no requirements or attributes",
        "DELETE": "DELETE takes only messageId, sku and operationType",
    }.get(operation, f"operationType must be one of {', '.join(OPERATIONS)}")


def structural_problems(feed: Any) -> list[str]:
    """Built-in envelope checks, used when Amazon's schema folder is absent."""
    if not isinstance(feed, dict):
        return ["(document): the feed must be a JSON object with 'header' and 'messages'"]
    problems = []
    header = feed.get("header")
    if not isinstance(header, dict):
        problems.append("header: 'header' is a required object")
    else:
        if not isinstance(header.get("sellerId"), str):
            problems.append("header/sellerId: 'sellerId' is a required string")
        if header.get("version") != "2.0":
            problems.append("header/version: 'version' must be '2.0'")
    messages = feed.get("messages")
    if not isinstance(messages, list) or not 1 <= len(messages) <= MAX_MESSAGES:
        problems.append(f"messages: 'messages' must be an array of 1 to {MAX_MESSAGES} messages")
    return problems


def structural_message_problems(message: Any) -> list[str]:
    """Built-in message checks, used when Amazon's schema folder is absent."""
    if not isinstance(message, dict):
        return ["(message): a message must be an object"]
    problems = []
    message_id = message.get("messageId")
    if isinstance(message_id, bool) or not isinstance(message_id, int) or not 1 <= message_id <= MAX_MESSAGE_ID:
        problems.append(f"messageId: 'messageId' must be an integer from 1 to {MAX_MESSAGE_ID}")
    if not isinstance(message.get("sku"), str) or not message.get("sku"):
        problems.append("sku: 'sku' must be a non-empty string")
    operation = message.get("operationType")
    required = {"UPDATE": ("productType", "attributes"), "PARTIAL_UPDATE": ("productType", "attributes"),
                "PATCH": ("productType", "patches"), "DELETE": ()}
    forbidden = {"UPDATE": ("patches",), "PARTIAL_UPDATE": ("requirements", "patches"),
                 "PATCH": ("requirements", "attributes"),
                 "DELETE": ("requirements", "attributes", "productType", "patches")}
    if operation not in required:
        return problems + [f"operationType: {_operation_rule(operation)}"]
    if any(name not in message for name in required[operation]) or any(name in message
                                                                          for name in forbidden[operation]):
        problems.append(f"message does not fit operationType {operation!r}: {_operation_rule(operation)}")
    if "attributes" in message and (not isinstance(message["attributes"], dict) or not message["attributes"]):
        problems.append("attributes: 'attributes' must be a non-empty object")
    if "patches" in message:
        patches = message["patches"]
        if not isinstance(patches, list) or not patches:
            problems.append("patches: 'patches' must be a non-empty array")
        else:
            for i, op in enumerate(patches):
                if not isinstance(op, dict) or op.get("op") not in ("add", "replace", "merge", "delete") \
                        or not isinstance(op.get("path"), str):
                    problems.append(f"patches/{i}: a patch needs 'op' (add|replace|merge|delete) and 'path'")
                elif "value" in op and (not isinstance(op["value"], list)
                                        or not all(isinstance(v, dict) for v in op["value"])):
                    problems.append(f"patches/{i}/value: 'value' must be an array of objects")
    return problems


@dataclass(frozen=True)
class FeedOutcome:
    """``status`` is DONE or FATAL; ``report`` is the processing report (a JSON-able dict)."""

    status: str
    report: dict[str, Any]


def _issue(message: str, code: str, *, message_id: int | None = None, sku: str | None = None,
           severity: str = "ERROR", attribute: str | None = None) -> dict[str, Any]:
    issue: dict[str, Any] = {}
    if message_id is not None:
        issue["messageId"] = message_id
    if sku:
        issue["sku"] = sku
    issue.update(code=code, severity=severity, message=message)
    if attribute:
        issue["attributeName"] = attribute
    return issue


def _fatal(header: dict[str, Any], message: str, code: str) -> FeedOutcome:
    issues = [_issue(message, code)]
    summary = {"errors": 1, "warnings": 0, "messagesProcessed": 0, "messagesAccepted": 0, "messagesInvalid": 0}
    return FeedOutcome("FATAL", {"header": header, "issues": issues, "summary": summary})


@dataclass(frozen=True)
class CheckedFeed:
    """A feed document after every check that needs no listings (:func:`check`): either why the whole feed is
    FATAL, or each message with its messageId, SKU and the issues found so far (schema violations)."""

    fatal: tuple[str, str] | None  # (message, issue code)
    report_request: dict[str, Any] | None  # header.report
    messages: tuple[tuple[Any, int | None, str | None, list[dict[str, Any]]], ...]


def check(document: bytes, *, seller_id: str, feed_schemas: Schemas | None = None) -> CheckedFeed:
    """Parse and validate a JSON_LISTINGS_FEED document (the slow part of processing; reads no listings)."""
    validators = feed_schemas or schemas()
    try:
        feed = json.loads(document.decode("utf-8-sig"), parse_float=Decimal)
    except (UnicodeDecodeError, ValueError) as exc:
        return CheckedFeed((f"The feed document is not valid UTF-8 JSON ({exc}); send a JSON_LISTINGS_FEED "
                            "document as described by listings-feed-schema-v2.json.", NOT_JSON), None, ())
    problems, in_messages = _feed_problems(feed, validators.feed)
    if problems:
        return CheckedFeed(("The feed does not match listings-feed-schema-v2.json: " + "; ".join(problems[:10]),
                            BAD_FEED), None, ())
    if feed["header"]["sellerId"] != seller_id:
        return CheckedFeed((f"header.sellerId {feed['header']['sellerId']!r} is not the selling partner that "
                            f"submitted the feed ({seller_id!r}).", BAD_FEED), None, ())
    messages = []
    for index, message in enumerate(feed["messages"]):
        message_id = message.get("messageId") if isinstance(message, dict) else None
        message_id = message_id if isinstance(message_id, int) and not isinstance(message_id, bool) \
            and message_id >= 1 else None
        sku = message.get("sku") if isinstance(message, dict) and isinstance(message.get("sku"), str) else None
        found = [_issue(f"Message does not match listings-feed-message-schema-v2.json: {problem}", BAD_MESSAGE,
                        message_id=message_id, sku=sku)
                 for problem in dict.fromkeys(_message_problems(message, validators.message)
                                              + in_messages.get(index, []))]
        messages.append((message, message_id, sku, found))
    return CheckedFeed(None, feed["header"].get("report"), tuple(messages))


def apply(checked: CheckedFeed, *, feed_id: str, seller_id: str, listings: dict[str, Listing],
          marketplace_ids: list[str], currency: str, now: datetime) -> FeedOutcome:
    """Apply a checked feed's valid messages to ``listings`` (changed in place), in order; the processing report."""
    header: dict[str, Any] = {"sellerId": seller_id, "version": "2.0", "feedId": feed_id}
    if checked.fatal is not None:
        return _fatal(header, *checked.fatal)
    report_request = checked.report_request
    if report_request:
        header["report"] = copy.deepcopy(report_request)

    issues: list[dict[str, Any]] = []
    accepted = invalid = 0
    seen: set[int] = set()
    touched: dict[str, None] = {}
    for message, message_id, sku, found in checked.messages:
        if not found and message_id in seen:
            found = [_issue(f"messageId {message_id} is used by an earlier message of this feed; message ids must "
                            "be unique within a feed.", DUPLICATE_MESSAGE, message_id=message_id, sku=sku)]
        if not found:
            found = _apply(message, listings, marketplace_ids, currency, now)
        if message_id is not None:
            seen.add(message_id)
        issues += found
        if any(issue["severity"] == "ERROR" for issue in found):
            invalid += 1
        else:
            accepted += 1
            if message["operationType"] != "DELETE":
                touched[message["sku"]] = None
            else:
                touched.pop(message["sku"], None)

    summary: dict[str, Any] = {
        "errors": sum(issue["severity"] == "ERROR" for issue in issues),
        "warnings": sum(issue["severity"] == "WARNING" for issue in issues),
        "messagesProcessed": accepted + invalid, "messagesAccepted": accepted, "messagesInvalid": invalid,
    }
    report: dict[str, Any] = {"header": header, "issues": issues, "summary": summary}
    if report_request:
        items = [catalog.render_item(listings[sku], marketplace_ids, report_request["includedData"], now)
                 for sku in touched if sku in listings]
        item_issues = [issue for item in items for issue in item.get("issues", [])]
        summary["itemSummary"] = {"items": len(items),
                                  "errors": sum(i["severity"] == "ERROR" for i in item_issues),
                                  "warnings": sum(i["severity"] == "WARNING" for i in item_issues)}
        report["items"] = items
    return FeedOutcome("DONE", report)


def process(document: bytes, *, feed_id: str, seller_id: str, listings: dict[str, Listing],
            marketplace_ids: list[str], currency: str, now: datetime,
            feed_schemas: Schemas | None = None) -> FeedOutcome:
    """:func:`check` then :func:`apply`: one JSON_LISTINGS_FEED document processed against ``listings``."""
    return apply(check(document, seller_id=seller_id, feed_schemas=feed_schemas), feed_id=feed_id,
                 seller_id=seller_id, listings=listings, marketplace_ids=marketplace_ids, currency=currency, now=now)


def _draft(listing: Listing) -> Listing:
    """A copy of ``listing`` to change. The catalog replaces attribute values and never changes one in place, so
    the copy shares them (a deep copy of every listing was three quarters of the time a large feed held the lock)."""
    return replace(listing, status=list(listing.status), attributes=dict(listing.attributes))


def _apply(message: dict[str, Any], listings: dict[str, Listing], marketplace_ids: list[str], currency: str,
           now: datetime) -> list[dict[str, Any]]:
    """Apply one schema-valid message; its issues (an ERROR means nothing was applied)."""
    message_id, sku, operation = message["messageId"], message["sku"], message["operationType"]
    current = listings.get(sku)
    if current is None and operation != "UPDATE":
        return [_issue(f"SKU {sku!r} does not exist for this seller, so {operation} cannot change it; create the "
                       "listing with an UPDATE message (or putListingsItem) first.", UNKNOWN_SKU,
                       message_id=message_id, sku=sku)]
    if operation == "DELETE":
        del listings[sku]
        return []
    if operation == "PATCH":
        draft = _draft(current)
        draft.product_type = message["productType"]
        problems = catalog.patch(draft, message["patches"], marketplace_ids[0], now)
    else:
        problems = catalog.check_all(message["attributes"])
        draft = _draft(current) if current is not None else catalog.new_listing(
            sku, message["productType"], now, currency)
        draft.product_type = message["productType"]
        if not any(p.severity == "ERROR" for p in problems):
            catalog.put_attributes(draft, message["attributes"], now, replace_all=operation == "UPDATE")
    issues = [_issue(p.message, p.code, message_id=message_id, sku=sku, severity=p.severity, attribute=p.attribute)
              for p in problems]
    if not any(p.severity == "ERROR" for p in problems):
        listings[sku] = draft
    return issues
