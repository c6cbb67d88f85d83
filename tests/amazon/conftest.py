"""Fixtures for the Amazon connector: Amazon's own example responses, read from the reference models."""

from __future__ import annotations

import json
from decimal import Decimal
from functools import cache
from pathlib import Path

import pytest
from fastapi import Depends, Request
from fastapi.responses import JSONResponse

from erpsync.sandbox.core import Caller, operation


@cache
def _model(path: Path) -> dict:
    return json.loads(path.read_text())


@pytest.fixture(scope="session")
def examples(spapi_ref):
    """``examples(model_file, operation_id, status="200", kind="x-amzn-api-sandbox")`` → list of
    (request parameters, response body) from the model; ``kind="examples"`` reads the plain ``examples`` block."""

    def read(model_file: str, operation_id: str, status: str = "200", kind: str = "x-amzn-api-sandbox"):
        model = _model(spapi_ref / "models" / model_file)
        for operations in model["paths"].values():
            for spec in operations.values():
                if isinstance(spec, dict) and spec.get("operationId") == operation_id:
                    response = spec["responses"][status]
                    if kind == "examples":
                        return [({}, body) for body in response.get("examples", {}).values()]
                    return [(case["request"].get("parameters", {}), case["response"])
                            for case in response.get(kind, {}).get("static", [])]
        raise LookupError(f"{operation_id} not in {model_file}")

    return read


def money_leaves(node, path: str = "") -> list[tuple[str, Decimal, str]]:
    """Every money object in ``node`` as (path, amount, currency): {amount, currencyCode} and v0's
    {Amount, CurrencyCode}. Paths look like ``orderItems[0].proceeds.breakdowns[1].subtotal``."""
    found = []
    if isinstance(node, dict):
        for amount_key, currency_key in (("amount", "currencyCode"), ("Amount", "CurrencyCode")):
            if amount_key in node and currency_key in node:
                found.append((path, Decimal(str(node[amount_key])), node[currency_key]))
        for key, value in node.items():
            found += money_leaves(value, f"{path}.{key}" if path else key)
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += money_leaves(value, f"{path}[{index}]")
    return found


@pytest.fixture(name="money_leaves", scope="session")
def money_leaves_fixture():
    return money_leaves


# --- a running sandbox and a client pointed at it ---------------------------------------------------------------

TIME_SCALE = 60.0


def _test_routes(app):
    """Routes the sandbox does not serve, added for the connector's tests: a header echo and an LWA that is down."""
    state = app.state.test_state = {"lwa_down_hits": 0}

    @app.get("/_test/echo")
    def echo(request: Request, caller: Caller = Depends(operation("getListingsItem"))):
        return {"headers": dict(request.headers), "query": dict(request.query_params)}

    @app.post("/_test/lwa-down")
    def lwa_down():
        state["lwa_down_hits"] += 1
        return JSONResponse({"error": "server_error", "error_description": "try later"}, status_code=503)


@pytest.fixture
def sandbox():
    from erpsync.sandbox.app import create_app
    from erpsync.sandbox.server import start
    from erpsync.sandbox.world import World

    world = World.create(time_scale=TIME_SCALE, seed=11)
    app = create_app(world)
    _test_routes(app)
    with start(app=app) as running:
        running.test_state = app.state.test_state
        yield running


@pytest.fixture
def settings(tmp_path):
    from erpsync.config import Settings

    value = Settings(base_dir=tmp_path)
    value.amazon.rate_limit.store_url = f"sqlite:///{tmp_path}/ratelimit.db"
    value.sandbox.time_scale = TIME_SCALE
    return value


@pytest.fixture
def client(sandbox, settings):
    from erpsync.amazon.client import AmazonClient

    with AmazonClient(settings, endpoint=sandbox.url) as value:
        yield value
