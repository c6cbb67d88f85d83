"""Fixtures of the sandbox tests: a running sandbox with roomy token buckets and an authorized HTTP client on it;
an SQS queue on the moto server and the ORDER_CHANGE schema for the notification tests.

A module chooses its world by overriding ``sandbox_options`` (keyword arguments of ``server.start``); a module that
needs extra state in the world overrides ``sandbox`` and asks for this one.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import httpx
import pytest

from erpsync.sandbox.server import RunningSandbox, start
from tests.sandbox.helpers import client, roomy
from tests.sandbox.spapi_schema import json_schema_validator


@pytest.fixture
def sandbox_options() -> dict[str, Any]:
    return {}


@pytest.fixture
def sandbox(sandbox_options: dict[str, Any]) -> Iterator[RunningSandbox]:
    with start(**sandbox_options) as running:
        yield roomy(running)


@pytest.fixture
def api(sandbox: RunningSandbox) -> Iterator[httpx.Client]:
    with client(sandbox) as http:
        yield http


@pytest.fixture(scope="module")
def order_change(spapi_ref):
    """Validator of Amazon's OrderChangeNotification.json (no property beyond the schema's)."""
    return json_schema_validator(spapi_ref / "schemas" / "notifications" / "OrderChangeNotification.json",
                                 strict=True)


@pytest.fixture
def queue(moto_endpoint, request):
    """A fresh SQS queue on the moto server: (boto3 client, queue URL)."""
    sqs = boto3.client("sqs", endpoint_url=moto_endpoint, region_name="us-east-1",
                       aws_access_key_id="test", aws_secret_access_key="test")
    url = sqs.create_queue(QueueName=f"order-change-{request.node.name[:40].replace('[', '-').strip(']')}")["QueueUrl"]
    yield sqs, url
    sqs.delete_queue(QueueUrl=url)
