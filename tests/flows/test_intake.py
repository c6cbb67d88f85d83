"""ORDER_CHANGE from SQS: the sandbox publishes to a real SQS endpoint (moto server), ``erpsync worker`` (a real
process, its schedule on) consumes it. Duplicated, malformed and dropped notifications: the inbox drops the
repeats, the malformed ones are recorded, and the periodic sync_window finds the orders whose notifications never
came; every order ends written once and the SQS queue ends empty."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import boto3
import pytest
from sqlalchemy import func, select

from erpsync.runtime import store as store_schema
from tests.processes import stop

ERPSYNC = str(Path(sys.executable).parent / "erpsync")


@pytest.fixture
def sqs_queue():
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    sqs = boto3.client("sqs", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="test",
                       aws_secret_access_key="test")
    url = sqs.create_queue(QueueName="erpsync-order-change")["QueueUrl"]
    yield sqs, url, endpoint
    server.stop()


def test_worker_consumes_sqs_and_the_window_catches_what_notifications_missed(make_pipeline, sqs_queue, monkeypatch):
    sqs, url, endpoint = sqs_queue
    monkeypatch.setenv("ERPSYNC_AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("ERPSYNC_AWS_SECRET_ACCESS_KEY", "test")
    pipeline = make_pipeline(orders={"sync_interval_seconds": 1},
                             amazon={"notifications": {"sqs_queue_url": url, "sqs_endpoint_url": endpoint}})
    pipeline.control("PUT", "notifications/sinks", json={"sqs_queue_url": url, "sqs_endpoint_url": endpoint})
    pipeline.control("PATCH", "faults", json={"duplicate_notifications": 0.5, "malformed_notifications": 0.3,
                                              "drop_notifications": 0.2})
    ids = pipeline.generate(8, seed=61)
    pipeline.sandbox.world.advance(150)  # the window can see them from now on (searchOrders lags two minutes)
    worker = subprocess.Popen([ERPSYNC, "worker", "--config", str(pipeline.config_path)], cwd=pipeline.base,
                              env=dict(os.environ), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        pipeline.wait_journal(ids, "written", timeout=60)
        pipeline.wait(lambda: _messages(sqs, url) == 0, timeout=30, what="an empty SQS queue")
    finally:
        output = stop(worker)[0]
    assert all(pipeline.sage_rows(o) == (1, 1) for o in ids), output[-2000:]
    store = pipeline.runtime.store
    assert store.dead_letters.list() == []
    published = pipeline.control("GET", "notifications")["published"]
    with store.engine.connect() as conn:
        inbox = conn.execute(select(func.count()).select_from(store_schema.inbox)).scalar()
        notified = set(conn.execute(select(store_schema.inbox.c.amazon_order_id)).scalars())
    assert set(ids) - notified, "some order should have lost all its notifications (the window wrote it)"
    assert notified & set(ids), "some order should have come through SQS"
    invalid = store.audit_list(event="notification.invalid", limit=1000)
    assert invalid and all(e.detail["source"] == "sqs" for e in invalid)
    assert 0 < inbox < len(published)  # dropped and malformed ones never reached the inbox, repeats once
    assert "sqs.poll_failed" not in output


def _messages(sqs, url: str) -> int:
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=[
        "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])
