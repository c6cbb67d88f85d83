"""Core of the sandbox over real HTTP: clock, token buckets, LWA, auth, throttling, headers, error shapes."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import httpx
import pytest
from fastapi import Depends

from erpsync.sandbox.app import create_app
from erpsync.sandbox.core import USAGE_PLANS, Caller, SandboxClock, TokenBucket, operation
from erpsync.sandbox.server import start
from erpsync.sandbox.world import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, DEFAULT_REFRESH_TOKEN, World

INVALID_TOKEN = {"errors": [{"code": "Unauthorized", "message": "Access to requested resource is denied.",
                             "details": "The access token you provided is revoked, malformed or invalid."}]}
EXPIRED_TOKEN = {"errors": [{"code": "Unauthorized", "message": "Access to requested resource is denied.",
                             "details": "The access token you provided has expired."}]}
QUOTA = {"errors": [{"code": "QuotaExceeded", "message": "You exceeded your quota for the requested resource.",
                     "details": ""}]}


def _grant(**overrides: str) -> dict[str, str]:
    return {"grant_type": "refresh_token", "refresh_token": DEFAULT_REFRESH_TOKEN, "client_id": DEFAULT_CLIENT_ID,
            "client_secret": DEFAULT_CLIENT_SECRET, **overrides}


@pytest.fixture
def sandbox():
    """A sandbox with one extra route guarded by operation("getOrder") (the core alone, no orders router)."""
    world = World.create(time_scale=1.0, seed=1)
    app = create_app(world)

    @app.get("/_test/op/{name}")
    def probe(caller: Caller = Depends(operation("getOrder"))):
        return {"seller": caller.seller_id}

    @app.post("/_test/body")
    def probe_body(body: dict[str, int], caller: Caller = Depends(operation("getOrder"))):
        return body

    @app.get("/_test/grantless")
    def probe_grantless(caller: Caller = Depends(operation("getDestinations", grantless=True))):
        return {"client": caller.client_id}

    with start(app=app) as running:
        yield running


def _token(url: str, **overrides: str) -> str:
    response = httpx.post(f"{url}/auth/o2/token", data=_grant(**overrides))
    assert response.status_code == 200, response.text
    return response.json()["access_token"]


def test_clock_scales_real_time_and_adds_manual_advances():
    start_at = datetime(2026, 1, 1, tzinfo=timezone.utc)
    clock = SandboxClock(time_scale=1000, start=start_at)
    first = clock.now()
    assert first.tzinfo is not None and first >= start_at
    clock.advance(3600)
    assert clock.now() - first >= timedelta(hours=1)
    with pytest.raises(ValueError):
        SandboxClock(time_scale=0)
    with pytest.raises(ValueError):
        SandboxClock(start=datetime(2026, 1, 1))


def test_token_bucket_burst_then_refill_on_sandbox_time():
    clock = SandboxClock(time_scale=1e-9)  # real time frozen; only advance() moves it
    bucket = TokenBucket(rate=0.5, burst=3, clock=clock)
    assert [bucket.try_take() for _ in range(4)] == [True, True, True, False]
    clock.advance(1.9)
    assert not bucket.try_take()  # 0.95 token
    clock.advance(0.2)
    assert bucket.try_take()
    clock.advance(3600)
    assert bucket.tokens == 3  # never above burst


def test_usage_plans_cover_every_operation_of_the_models(spapi_ref):
    import json

    expected = {}
    for model in ("ordersV0", "orders_2026-01-01", "feeds_2021-06-30", "reports_2021-06-30",
                  "listingsItems_2021-08-01", "notifications", "tokens_2021-03-01"):
        spec = json.loads((spapi_ref / "models" / f"{model}.json").read_text())
        for path_ops in spec["paths"].values():
            for op in path_ops.values():
                if isinstance(op, dict) and "operationId" in op:
                    name = op["operationId"]
                    if model == "ordersV0" and name == "getOrder":
                        name = "getOrderV0"
                    expected[name] = op["description"]
    expected["getInventorySummaries"] = ""
    missing = sorted(set(expected) - set(USAGE_PLANS))
    assert not missing
    for name, description in expected.items():
        rate, burst = USAGE_PLANS[name]
        if description:  # the model's table "| rate | burst |"
            assert f"| {rate:g} | {burst} |" in description.replace(".0 |", " |"), name


def test_lwa_refresh_grant_issues_bearer_token(sandbox):
    response = httpx.post(f"{sandbox.url}/auth/o2/token", data=_grant())
    assert response.status_code == 200
    body = response.json()
    assert body["access_token"].startswith("Atza|") and body["token_type"] == "bearer"
    assert body["expires_in"] == 3600 and body["refresh_token"] == DEFAULT_REFRESH_TOKEN
    assert response.headers["cache-control"] == "no-store"


@pytest.mark.parametrize("data, status, error", [
    (_grant(client_secret="wrong"), 401, "invalid_client"),
    (_grant(client_id="amzn1.application-oa2-client.unknown"), 401, "invalid_client"),
    (_grant(refresh_token="Atzr|revoked"), 400, "invalid_grant"),
    (_grant(grant_type="password"), 400, "unsupported_grant_type"),
    ({k: v for k, v in _grant().items() if k != "refresh_token"}, 400, "invalid_request"),
    ({k: v for k, v in _grant().items() if k != "grant_type"}, 400, "invalid_request"),
    (_grant(grant_type="client_credentials", refresh_token=""), 400, "invalid_request"),  # no scope
    (_grant(grant_type="client_credentials", scope="sellingpartnerapi::everything"), 400, "invalid_scope"),
])
def test_lwa_rejects_bad_credentials_like_amazon(sandbox, data, status, error):
    response = httpx.post(f"{sandbox.url}/auth/o2/token", data=data)
    assert response.status_code == status
    body = response.json()
    assert body["error"] == error and body["error_description"]
    assert set(body) == {"error", "error_description"}


def test_lwa_wants_a_form_body(sandbox):
    response = httpx.post(f"{sandbox.url}/auth/o2/token", json=_grant())
    assert response.status_code == 400 and response.json()["error"] == "invalid_request"


def test_operation_requires_a_live_access_token(sandbox):
    url = f"{sandbox.url}/_test/op/x"
    for headers in ({}, {"x-amz-access-token": "Atza|forged"}):
        response = httpx.get(url, headers=headers)
        assert response.status_code == 403
        assert response.json() == INVALID_TOKEN
        assert response.headers["x-amzn-RequestId"]
        assert "x-amzn-RateLimit-Limit" not in response.headers
    token = _token(sandbox.url)
    ok = httpx.get(url, headers={"x-amz-access-token": token})
    assert ok.status_code == 200 and ok.json() == {"seller": "A1SANDBOXSELLER"}
    assert ok.headers["x-amzn-RateLimit-Limit"] == "0.5"
    sandbox.world.advance(3600)  # the token lives one hour of sandbox time
    for _ in range(2):  # Amazon's own text, and it stays "expired" (not "invalid") on the next call
        expired = httpx.get(url, headers={"x-amz-access-token": token})
        assert expired.status_code == 403 and expired.json() == EXPIRED_TOKEN


def test_a_body_that_is_not_json_is_checked_like_any_bad_request(sandbox):
    url, json_type = f"{sandbox.url}/_test/body", {"content-type": "application/json"}
    anonymous = httpx.post(url, content=b"{not json", headers=json_type)
    assert anonymous.status_code == 403 and anonymous.json() == INVALID_TOKEN
    token = {"x-amz-access-token": _token(sandbox.url)}
    refused = httpx.post(url, content=b"{not json", headers={**json_type, **token})
    assert refused.status_code == 400 and "not valid JSON" in refused.json()["errors"][0]["details"]
    assert refused.headers["x-amzn-RateLimit-Limit"] == "0.5"
    assert sandbox.world.throttler.bucket("A1SANDBOXSELLER", "getOrder").tokens < 30  # it took a token
    assert httpx.post(url, json={"a": 1}, headers=token).json() == {"a": 1}


def test_grantless_operations_take_only_grantless_tokens_of_their_scope(sandbox):
    token = _token(sandbox.url, grant_type="client_credentials", refresh_token="",
                   scope="sellingpartnerapi::notifications")
    headers = {"x-amz-access-token": token}
    assert httpx.get(f"{sandbox.url}/_test/op/x", headers=headers).status_code == 403
    response = httpx.get(f"{sandbox.url}/_test/grantless", headers=headers)
    assert response.status_code == 200 and response.json() == {"client": DEFAULT_CLIENT_ID}
    seller = httpx.get(f"{sandbox.url}/_test/grantless", headers={"x-amz-access-token": _token(sandbox.url)})
    assert seller.status_code == 403 and "client_credentials" in seller.json()["errors"][0]["details"]
    migration = _token(sandbox.url, grant_type="client_credentials", refresh_token="",
                       scope="sellingpartnerapi::migration")
    assert httpx.get(f"{sandbox.url}/_test/grantless", headers={"x-amz-access-token": migration}).status_code == 403


def test_throttled_call_gets_429_quota_exceeded_without_rate_header(sandbox):
    token = _token(sandbox.url)
    with httpx.Client(headers={"x-amz-access-token": token}) as client:
        statuses = [client.get(f"{sandbox.url}/_test/op/x") for _ in range(31)]
    assert [r.status_code for r in statuses[:30]] == [200] * 30  # getOrder burst is 30
    throttled = statuses[30]
    assert throttled.status_code == 429
    assert throttled.json() == QUOTA
    assert throttled.headers["x-amzn-RequestId"]
    assert "x-amzn-RateLimit-Limit" not in throttled.headers
    ids = {r.headers["x-amzn-RequestId"] for r in statuses}
    assert len(ids) == 31


def test_buckets_are_per_seller(sandbox):
    sandbox.world.register_seller("Atzr|second-seller", "A2OTHERSELLER")
    first, second = _token(sandbox.url), _token(sandbox.url, refresh_token="Atzr|second-seller")
    with httpx.Client(base_url=sandbox.url) as http:
        for _ in range(30):
            assert http.get("/_test/op/x", headers={"x-amz-access-token": first}).status_code == 200
        assert http.get("/_test/op/x", headers={"x-amz-access-token": first}).status_code == 429
        other = http.get("/_test/op/x", headers={"x-amz-access-token": second})
    assert other.status_code == 200 and other.json() == {"seller": "A2OTHERSELLER"}


def test_faults_5xx_and_throttle_storm(sandbox):
    token = _token(sandbox.url)
    headers = {"x-amz-access-token": token}
    faults = sandbox.world.faults
    faults.error_rate = 1.0
    failed = httpx.get(f"{sandbox.url}/_test/op/x", headers=headers)
    assert failed.status_code == 503 and failed.json()["errors"][0]["code"] == "ServiceUnavailable"
    faults.error_rate, faults.throttle_storm_rate = 0.0, 1.0
    stormed = httpx.get(f"{sandbox.url}/_test/op/x", headers=headers)
    assert stormed.status_code == 429 and stormed.json() == QUOTA
    faults.operations = {"getOrders"}  # storm elsewhere: this operation answers again
    assert httpx.get(f"{sandbox.url}/_test/op/x", headers=headers).status_code == 200


def test_unknown_path_gets_amazon_error_shape(sandbox):
    response = httpx.get(f"{sandbox.url}/orders/v9/nothing")
    assert response.status_code == 404
    assert response.json()["errors"][0]["code"] == "NotFound"
    assert response.headers["x-amzn-RequestId"]


def test_time_scale_multiplies_rate_header_and_divides_expiry():
    with start(time_scale=100) as running:
        response = httpx.post(f"{running.url}/auth/o2/token", data=_grant())
        assert response.json()["expires_in"] == 36
        assert running.world.throttler.rate_header("getOrder") == "50"
        assert running.world.throttler.rate_header("searchOrders") == "0.56"


def test_error_bodies_match_the_models_error_list(sandbox, spapi_ref):
    from tests.sandbox.spapi_schema import assert_valid, swagger_validator

    validator = swagger_validator(spapi_ref / "models" / "orders_2026-01-01.json", "ErrorList")
    assert_valid(validator, httpx.get(f"{sandbox.url}/_test/op/x").json())
    assert_valid(validator, httpx.get(f"{sandbox.url}/nowhere").json())
    with pytest.raises(AssertionError):
        assert_valid(validator, {"errors": [{"code": "X", "message": "m", "detail": "misspelled"}]})
