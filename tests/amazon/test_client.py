"""AmazonClient against the sandbox over real HTTP: LWA caching and failures, error mapping with request ids,
429 and 5xx handling, header adaptation, timeouts, headers, and what reaches the logs."""

from __future__ import annotations

import re
import socket
import time

import httpx
import pytest
from pydantic import SecretStr
from structlog.testing import capture_logs

import erpsync
from erpsync.amazon.client import AmazonClient
from erpsync.amazon.lwa import LwaTokens
from erpsync.errors import AmazonRejected, AmazonUnavailable, CircuitOpen, ConfigError, RateLimited, Throttled
from erpsync.sandbox.scenario import GenerateOrders, generate_orders

SELLER = "A1SANDBOXSELLER"
NOTIFICATIONS = "sellingpartnerapi::notifications"
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _order(sandbox) -> str:
    return generate_orders(sandbox.world, GenerateOrders(count=1, status="UNSHIPPED", seed=1))[0]


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


# --- LWA --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("sandbox_lifetime, margin", [
    (3600, 6.0),          # the fixture's 60x sandbox: expires_in 60 s, renewed 10 % (6 s) early
    (3600 * 60, 60.0),    # Amazon's 3600 s: renewed 60 s early, not 360 s
    (60, 0.1),            # expires_in 1 s: renewed 0.1 s early, not 60 s (which would be never)
])
def test_lwa_token_is_cached_and_refreshed_before_it_expires(sandbox, settings, sandbox_lifetime, margin):
    sandbox.world.token_lifetime_seconds = sandbox_lifetime
    clock = Clock()
    with httpx.Client(timeout=5) as http:
        lwa = LwaTokens(f"{sandbox.url}/auth/o2/token", settings.amazon.client_id,
                        settings.secrets.lwa_client_secret, settings.secrets.lwa_refresh_token,
                        http=http, user_agent="test", clock=clock)
        first = lwa.access_token()
        assert lwa.access_token() == first and lwa.requests == 1
        lifetime = sandbox_lifetime / sandbox.world.clock.time_scale  # expires_in as the sandbox reports it
        clock.now += lifetime - margin * 1.02
        assert lwa.access_token() == first and lwa.requests == 1
        clock.now += margin * 0.04  # inside the margin: refreshed although not expired yet
        second = lwa.access_token()
        assert second != first and lwa.requests == 2
        assert sandbox.world.access_token(second) is not None  # a live token at Amazon's end
        grantless = lwa.grantless_token("sellingpartnerapi::notifications")
        assert grantless not in (first, second) and lwa.requests == 3
        assert sandbox.world.access_token(grantless).seller_id is None


def test_one_token_serves_many_calls(client, sandbox):
    order_id = _order(sandbox)
    for _ in range(3):
        client.orders.get_order(order_id)
    assert client.lwa.requests == 1


def test_revoked_refresh_token_is_a_config_error_that_says_so(sandbox, settings):
    settings.secrets.lwa_refresh_token = SecretStr("Atzr|revoked-long-ago")
    with AmazonClient(settings, endpoint=sandbox.url) as client, capture_logs() as logs:
        with pytest.raises(ConfigError, match=r"HTTP 400 invalid_grant.*invalid or has been revoked") as caught:
            client.orders.get_order("111-0000000-0000001")
        assert client.lwa.requests == 1  # no blind retry
    assert "revoked-long-ago" not in str(caught.value) and "revoked-long-ago" not in repr(logs)


def test_wrong_client_secret_is_a_config_error_with_the_status(sandbox, settings):
    settings.secrets.lwa_client_secret = SecretStr("not-the-secret")
    with AmazonClient(settings, endpoint=sandbox.url) as client, capture_logs() as logs:
        with pytest.raises(ConfigError, match=r"HTTP 401 invalid_client.*ERPSYNC_LWA_CLIENT_SECRET"):
            client.orders.get_order("111-0000000-0000001")
    assert "not-the-secret" not in repr(logs)


def test_lwa_down_is_retryable_and_asked_once(sandbox, settings):
    settings.amazon.lwa_url = f"{sandbox.url}/_test/lwa-down"
    with AmazonClient(settings, endpoint=sandbox.url) as client:
        with pytest.raises(AmazonUnavailable, match=r"LWA token endpoint .* is unavailable \(HTTP 503 server_error"):
            client.orders.get_order("111-0000000-0000001")
    assert sandbox.test_state["lwa_down_hits"] == 1
    assert client.lwa.requests == 1


def test_lwa_unreachable_is_retryable(sandbox, settings):
    settings.amazon.lwa_url = f"http://127.0.0.1:{_free_port()}/auth/o2/token"
    with AmazonClient(settings, endpoint=sandbox.url) as client:
        with pytest.raises(AmazonUnavailable, match="LWA token request .* failed: ConnectError"):
            client.orders.get_order("111-0000000-0000001")


# --- answers mapped to errors -------------------------------------------------------------------------------------


def test_404_is_rejected_with_amazons_code_and_request_id(client):
    with capture_logs() as logs:
        with pytest.raises(AmazonRejected) as caught:
            client.orders.get_order("111-0000000-0000001")
    error = caught.value
    assert (error.status, error.amazon_code) == (404, "NotFound")
    assert UUID.fullmatch(error.request_id) and error.request_id in str(error)
    assert error.code == "amazon_rejected"  # permanent: dead letter
    logged = [entry for entry in logs if entry["event"] == "amazon.call.rejected"]
    assert logged and logged[0]["request_id"] == error.request_id and logged[0]["code"] == "NotFound"
    assert "Atza|" not in repr(logs)  # the access token never reaches the logs


def test_400_is_rejected_naming_the_problem(client):
    with pytest.raises(AmazonRejected, match=r"HTTP 400 InvalidInput") as caught:
        client.call("searchOrders", "GET", "/orders/2026-01-01/orders",
                    params={"marketplaceIds": client.marketplace_ids})  # neither createdAfter nor lastUpdatedAfter
    assert caught.value.status == 400 and caught.value.request_id


def _sent(client: AmazonClient) -> list[str]:
    """The paths of the requests ``client`` sends from now on (LWA's included), in order."""
    paths: list[str] = []
    client._http.event_hooks["request"].append(lambda request: paths.append(request.url.path))
    return paths


def test_token_that_expired_between_calls_is_renewed_inside_the_call(client, sandbox):
    order_id = _order(sandbox)
    path = f"/orders/2026-01-01/orders/{order_id}"
    client.orders.get_order(order_id)
    sent = _sent(client)
    # an hour of Amazon's time passes (control API): the cached token is dead there, our clock has not noticed
    httpx.post(f"{sandbox.url}/_sandbox/time/advance", json={"seconds": 3600}, timeout=5).raise_for_status()
    with capture_logs() as logs:
        assert client.orders.get_order(order_id).amazon_order_id == order_id
    assert sent == [path, "/auth/o2/token", path] and client.lwa.requests == 2
    events = [entry["event"] for entry in logs if entry["event"].startswith("amazon.call.")]
    assert "amazon.call.token_refused" in events and "amazon.call.rejected" not in events
    assert client.orders.get_order(order_id).amazon_order_id == order_id
    assert client.lwa.requests == 2  # the new token is cached


def test_token_forgotten_by_amazon_is_renewed_for_every_grant(client, sandbox):
    order_id = _order(sandbox)
    client.orders.get_order(order_id)
    client.call("getDestinations", "GET", "/notifications/v1/destinations", grantless=NOTIFICATIONS)
    assert client.lwa.requests == 2  # one seller token, one grantless token
    with sandbox.world.lock:
        sandbox.world.access_tokens.clear()
    assert client.orders.get_order(order_id).amazon_order_id == order_id
    reply = client.call("getDestinations", "GET", "/notifications/v1/destinations", grantless=NOTIFICATIONS)
    assert reply.body == {"payload": []} and client.lwa.requests == 4


def test_refresh_token_revoked_while_its_access_token_lived_is_a_config_error(client, sandbox, settings):
    order_id = _order(sandbox)
    client.orders.get_order(order_id)
    with sandbox.world.lock:  # the seller removes the app's authorization in Seller Central
        del sandbox.world.refresh_tokens[settings.secrets.lwa_refresh_token.get_secret_value()]
    sandbox.world.advance(3600)  # and the access token runs out
    sent = _sent(client)
    with pytest.raises(ConfigError, match=r"HTTP 400 invalid_grant.*invalid or has been revoked"):
        client.orders.get_order(order_id)
    assert sent == [f"/orders/2026-01-01/orders/{order_id}", "/auth/o2/token"] and client.lwa.requests == 2


@pytest.mark.parametrize("operation, path, grantless, told", [
    ("getDestinations", "/notifications/v1/destinations", None, "getDestinations is grantless"),
    ("getOrder", "/orders/2026-01-01/orders/111-0000000-0000001", NOTIFICATIONS, "getOrder acts for a seller"),
])
def test_refusal_a_new_token_does_not_cure_is_rejected_after_one_retry(client, operation, path, grantless, told):
    sent = _sent(client)
    for expected in (["/auth/o2/token", path, "/auth/o2/token", path],
                     [path, "/auth/o2/token", path]):  # every call: one retry at most, then Amazon's answer stands
        sent.clear()
        with pytest.raises(AmazonRejected, match=told) as caught:
            client.call(operation, "GET", path, grantless=grantless)
        assert (caught.value.status, caught.value.amazon_code) == (403, "Unauthorized")
        assert sent == expected
    assert client.lwa.requests == 3


def test_5xx_is_retryable_and_repeated_5xx_open_the_circuit(sandbox, settings):
    settings.amazon.rate_limit.circuit_failures = 2
    settings.amazon.rate_limit.circuit_reset_seconds = 0.5
    order_id = _order(sandbox)
    with AmazonClient(settings, endpoint=sandbox.url) as client:
        sandbox.world.faults.error_rate, sandbox.world.faults.operations = 1.0, {"getOrder"}
        for _ in range(2):
            with pytest.raises(AmazonUnavailable, match=r"HTTP 503 ServiceUnavailable.*request id [0-9a-f-]{36}"):
                client.orders.get_order(order_id)
        sandbox.world.faults.error_rate = 0.0  # Amazon is back, but the circuit does not know yet
        with pytest.raises(CircuitOpen) as caught:
            client.orders.get_order(order_id)
        assert 0 < caught.value.retry_after <= 0.5 and not caught.value.spend_retry
        time.sleep(caught.value.retry_after)
        assert client.orders.get_order(order_id).amazon_order_id == order_id  # the half-open trial closes it
        assert client.breaker.state("getOrder") == "closed"


def test_429_empties_the_bucket_and_is_retried_later(client, sandbox):
    order_id = _order(sandbox)
    sandbox.world.faults.throttle_storm_rate, sandbox.world.faults.operations = 1.0, {"getOrder"}
    with pytest.raises(Throttled, match=r"429 QuotaExceeded.*request id [0-9a-f-]{36}") as caught:
        client.orders.get_order(order_id)
    assert caught.value.retry_after > 0 and not caught.value.spend_retry  # throttling is not failure
    sandbox.world.faults.throttle_storm_rate = 0.0
    with pytest.raises(RateLimited) as waited:  # our bucket is empty too: no call goes out
        client.orders.get_order(order_id)
    assert not waited.value.spend_retry
    assert client.breaker.state("getOrder") == "closed"  # throttling is not an outage
    time.sleep(waited.value.retry_after)
    assert client.orders.get_order(order_id).amazon_order_id == order_id


def test_rate_limit_header_lowers_our_bucket(client, sandbox):
    order_id = _order(sandbox)
    assert client.limiter.rate(SELLER, "getOrder") == pytest.approx(0.5 * client.time_scale)
    sandbox.world.throttler.plans["getOrder"] = (0.2, 30)  # Amazon lowers this seller's plan
    client.orders.get_order(order_id)
    assert client.limiter.rate(SELLER, "getOrder") == pytest.approx(0.2 * client.time_scale)


def test_network_failure_is_retryable_and_counts_for_the_circuit(sandbox, settings):
    settings.amazon.lwa_url = f"{sandbox.url}/auth/o2/token"
    with AmazonClient(settings, endpoint=f"http://127.0.0.1:{_free_port()}") as client:
        with pytest.raises(AmazonUnavailable, match="network failure talking to http://127.0.0.1"):
            client.orders.get_order("111-0000000-0000001")
        assert client.breaker._circuits["getOrder"].failures == 1


def test_timeouts_are_always_set(sandbox, settings):
    settings.amazon.timeout_seconds = 0.3
    sandbox.world.faults.latency_seconds, sandbox.world.faults.operations = 1.0, {"getOrder"}
    with AmazonClient(settings, endpoint=sandbox.url) as client:
        started = time.monotonic()
        with pytest.raises(AmazonUnavailable, match="ReadTimeout"):
            client.orders.get_order("111-0000000-0000001")
        assert time.monotonic() - started < 0.9


def test_requests_carry_our_user_agent_and_token(client):
    reply = client.call("getListingsItem", "GET", "/_test/echo", params={"ids": ["a", "b"], "flag": True})
    headers = reply.body["headers"]
    assert headers["user-agent"].startswith(f"erpsync/{erpsync.__version__} (Language=Python/")
    assert headers["x-amz-access-token"].startswith("Atza|") and re.fullmatch(r"\d{8}T\d{6}Z", headers["x-amz-date"])
    assert reply.body["query"] == {"ids": "a,b", "flag": "true"}
    assert UUID.fullmatch(reply.request_id)


@pytest.mark.parametrize("endpoint, expected", [("na", "https://sellingpartnerapi-na.amazon.com"),
                                                ("eu", "https://sellingpartnerapi-eu.amazon.com"),
                                                ("fe", "https://sellingpartnerapi-fe.amazon.com")])
def test_regional_endpoints_use_amazons_lwa_and_real_plans(settings, endpoint, expected):
    settings.amazon.endpoint = endpoint
    with AmazonClient(settings) as client:
        assert client.endpoint == expected and client.lwa.url == "https://api.amazon.com/auth/o2/token"
        assert client.time_scale == 1.0


def test_sandbox_endpoint_needs_its_url(settings):
    settings.amazon.endpoint = "sandbox"
    with pytest.raises(ConfigError, match="sandbox_url is not set"):
        AmazonClient(settings)
    settings.amazon.endpoint = "ftp://example.com"
    with pytest.raises(ConfigError, match="not na, eu, fe, sandbox or an http"):
        AmazonClient(settings)

