"""Validators from Amazon's official models (read from the ``spapi_ref`` folder, never copied).

    validator = swagger_validator(spapi_ref / "models/orders_2026-01-01.json", "GetOrderResponse")
    assert_valid(validator, response.json())

A Swagger 2.0 definition is JSON Schema draft 4 plus ``$ref: #/definitions/...``; the whole ``definitions`` map is
embedded so references resolve. ``strict=True`` (default) also forbids properties the model does not declare, so a
misspelled field fails instead of passing silently. ``date-time`` and ``date`` formats are checked.
"""

from __future__ import annotations

import copy
import json
from datetime import date, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import jsonschema

FORMATS = jsonschema.FormatChecker()


@FORMATS.checks("date-time", raises=ValueError)
def _date_time(value: object) -> bool:
    if not isinstance(value, str):
        return True
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        raise ValueError(f"{value!r} has no timezone")
    return True


@FORMATS.checks("date", raises=ValueError)
def _date(value: object) -> bool:
    if isinstance(value, str):
        date.fromisoformat(value)
    return True


@lru_cache(maxsize=None)
def _load(path: str) -> dict[str, Any]:
    return json.loads(Path(path).read_text())


def _forbid_extra(node: Any) -> Any:
    if isinstance(node, dict):
        node = {key: _forbid_extra(value) for key, value in node.items()}
        if "properties" in node and "additionalProperties" not in node:
            node["additionalProperties"] = False
        return node
    if isinstance(node, list):
        return [_forbid_extra(value) for value in node]
    return node


def swagger_validator(model: Path, definition: str, *, strict: bool = True) -> jsonschema.Draft4Validator:
    """A validator for ``definitions[definition]`` of the Swagger model file ``model``."""
    definitions = copy.deepcopy(_load(str(model))["definitions"])
    if definition not in definitions:
        raise KeyError(f"{model.name} has no definition {definition!r}; it has {sorted(definitions)}")
    if strict:
        definitions = _forbid_extra(definitions)
    schema = {"$ref": f"#/definitions/{definition}", "definitions": definitions}
    return jsonschema.Draft4Validator(schema, format_checker=FORMATS)


def json_schema_validator(path: Path, *, strict: bool = False) -> jsonschema.protocols.Validator:
    """A validator for a plain JSON Schema file (notification and feed schemas), by its declared draft."""
    schema = copy.deepcopy(_load(str(path)))
    if strict:
        schema = _forbid_extra(schema)
    cls = jsonschema.validators.validator_for(schema)
    return cls(schema, format_checker=FORMATS)


def errors_of(validator: jsonschema.protocols.Validator, body: Any) -> list[str]:
    return [f"{'/'.join(str(p) for p in error.absolute_path) or '<root>'}: {error.message}"
            for error in sorted(validator.iter_errors(body), key=lambda e: list(map(str, e.absolute_path)))]


def assert_valid(validator: jsonschema.protocols.Validator, body: Any) -> None:
    problems = errors_of(validator, body)
    assert not problems, "body does not match Amazon's model:\n  " + "\n  ".join(problems[:20])
