"""Helpers for tests that talk to a running sandbox over HTTP."""

from __future__ import annotations

import json
import time
import types
import uuid
from typing import Any

import httpx

from erpsync.sandbox.server import RunningSandbox
from erpsync.sandbox.world import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, DEFAULT_REFRESH_TOKEN


def access_token(url: str, refresh_token: str = DEFAULT_REFRESH_TOKEN) -> str:
    response = httpx.post(f"{url}/auth/o2/token", data={
        "grant_type": "refresh_token", "refresh_token": refresh_token,
        "client_id": DEFAULT_CLIENT_ID, "client_secret": DEFAULT_CLIENT_SECRET})
    response.raise_for_status()
    return response.json()["access_token"]


def grantless_token(url: str, scope: str = "sellingpartnerapi::notifications") -> str:
    """An application's access token (client_credentials grant) for grantless operations."""
    response = httpx.post(f"{url}/auth/o2/token", data={
        "grant_type": "client_credentials", "scope": scope, "client_id": DEFAULT_CLIENT_ID,
        "client_secret": DEFAULT_CLIENT_SECRET})
    response.raise_for_status()
    return response.json()["access_token"]


def client(sandbox: RunningSandbox, token: str | None = None) -> httpx.Client:
    """An httpx client on the sandbox carrying ``token`` (default: a fresh seller's access token); close it, or use
    it in ``with``."""
    return httpx.Client(base_url=sandbox.url, headers={"x-amz-access-token": token or access_token(sandbox.url)},
                        timeout=10)


def roomy(sandbox: RunningSandbox, burst: int = 1000) -> RunningSandbox:
    """Every bucket of ``sandbox`` holds ``burst`` tokens: for tests about behaviour, not throttling."""
    plans = sandbox.world.throttler.plans
    plans.update({name: (rate, burst) for name, (rate, _) in plans.items()})
    return sandbox


def generate(sandbox: RunningSandbox, **request: Any) -> list[str]:
    response = httpx.post(f"{sandbox.url}/_sandbox/orders", json=request, timeout=30)
    assert response.status_code == 201, response.text
    return response.json()["orderIds"]


def drain(sqs: Any, url: str, expected: int, timeout: float = 10.0) -> list[dict[str, Any]]:
    """The JSON bodies of an SQS queue's messages (deleted as they are read), once ``expected`` have arrived and a
    further receive finds no more."""
    bodies, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline:
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", [])
        for message in messages:
            bodies.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        if len(bodies) >= expected and not messages:
            return bodies
        time.sleep(0.05)
    raise AssertionError(f"{len(bodies)} of {expected} messages arrived in {timeout} s: {bodies}")


def sp_api_config(sandbox: RunningSandbox, marketplace_id: str = "ATVPDKIKX0DER") -> dict[str, Any]:
    """Keyword arguments that point an UNMODIFIED python-amazon-sp-api client at the sandbox.

    - ``marketplace``: any object with ``endpoint``, ``marketplace_id``, ``region`` (the library reads only those);
    - ``auth_token_client_class``: the library's own ``AccessTokenClient`` with ``scheme``/``host`` pointed at the
      sandbox's ``/auth/o2/token`` (a supported constructor argument of every sp_api client);
    - ``credentials``: LWA credentials; the refresh token is unique per call because sp_api caches access tokens
      process-wide by refresh token, and a token of another sandbox would be refused.
    """
    from sp_api.auth import AccessTokenClient

    refresh_token = f"Atzr|test-{uuid.uuid4().hex}"
    sandbox.world.register_seller(refresh_token, sandbox.world.seller_id)
    lwa = type("SandboxAccessTokenClient", (AccessTokenClient,),
               {"scheme": "http://", "host": sandbox.url.removeprefix("http://")})
    return {
        "marketplace": types.SimpleNamespace(endpoint=sandbox.url, marketplace_id=marketplace_id,
                                             region="us-east-1"),
        "credentials": {"refresh_token": refresh_token, "lwa_app_id": DEFAULT_CLIENT_ID,
                        "lwa_client_secret": DEFAULT_CLIENT_SECRET},
        "auth_token_client_class": lwa,
    }
