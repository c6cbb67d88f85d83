"""Throttling is not failure, at the token endpoint too: LWA answering 429 defers the job without spending its
retry budget (a 5xx there still does)."""

from __future__ import annotations

import pytest
from fastapi.responses import JSONResponse

from erpsync.amazon.client import AmazonClient
from erpsync.errors import Throttled


@pytest.fixture
def throttling_lwa():
    from erpsync.sandbox.app import create_app
    from erpsync.sandbox.server import start
    from erpsync.sandbox.world import World

    app = create_app(World.create(seed=12))
    hits = []

    @app.post("/_test/lwa-throttled")
    def lwa_throttled():
        hits.append(1)
        return JSONResponse({"error": "too_many_requests", "error_description": "slow down"}, status_code=429)

    with start(app=app) as running:
        running.hits = hits
        yield running


def test_a_429_of_the_token_endpoint_is_throttling_and_spends_no_retry(throttling_lwa, settings):
    settings.amazon.lwa_url = f"{throttling_lwa.url}/_test/lwa-throttled"
    with AmazonClient(settings, endpoint=throttling_lwa.url) as client:
        with pytest.raises(Throttled, match=r"LWA token endpoint .* throttled the token request \(HTTP 429") as caught:
            client.orders.get_order("111-0000000-0000001")
    assert caught.value.spend_retry is False and caught.value.retry_after > 0
    assert throttling_lwa.hits == [1]
