"""The webhook receiver over real HTTP: authentication (constant-time token check), envelope validation,
NotificationId dedupe, and the health and metrics endpoints."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from erpsync.amazon.notifications import parse_notification
from erpsync.flows import intake
from erpsync.web.app import start as start_web
from tests.processes import stop

WEBHOOK_TOKEN = "test-webhook-token"  # ERPSYNC_WEBHOOK_TOKEN as the make_pipeline fixture sets it
BEARER = {"Authorization": "Bearer test-api-token"}  # ERPSYNC_API_TOKEN likewise: /metrics needs it


@pytest.fixture
def envelope(pipeline) -> dict:
    """A real ORDER_CHANGE envelope published by the sandbox (no sink: nothing delivered by itself)."""
    pipeline.generate(1, seed=41)
    pipeline.wait(lambda: pipeline.control("GET", "notifications")["published"], what="a published envelope")
    return pipeline.control("GET", "notifications")["published"][-1]


@pytest.fixture
def web(pipeline):
    server = start_web(pipeline.runtime)
    yield server
    server.stop()


def post(web, body, token: str | None = WEBHOOK_TOKEN, header: str = "X-Erpsync-Token") -> httpx.Response:
    headers = {header: token} if token is not None else {}
    content = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return httpx.post(f"{web.url}/notifications", content=content, headers=headers, timeout=10)


@pytest.mark.parametrize("token", [None, "", "wrong-token", WEBHOOK_TOKEN + "x", WEBHOOK_TOKEN[:-1]])
def test_a_missing_or_wrong_token_is_refused_and_nothing_is_queued(pipeline, web, envelope, token):
    response = post(web, envelope, token)
    assert response.status_code == 401 and "X-Erpsync-Token" in response.json()["error"]
    assert pipeline.runtime.store.job_keys_pending() == []
    assert pipeline.runtime.store.journal_list() == []


def test_the_right_token_queues_the_import_once_per_notification_id(pipeline, web, envelope):
    order_id = envelope["Payload"]["OrderChangeNotification"]["AmazonOrderId"]
    status = envelope["Payload"]["OrderChangeNotification"]["Summary"]["OrderStatus"]
    first = post(web, envelope)
    assert first.status_code == 202 and first.json()["outcome"] == "queued"
    [pending] = pipeline.runtime.store.job_keys_pending()
    assert (pending.job, pending.key) == ("import_order", f"import_order:{order_id}:{status}")
    assert pipeline.journal(order_id) == "received"
    again = post(web, envelope)
    assert again.status_code == 200 and again.json()["outcome"] == "duplicate"
    assert pipeline.runtime.pending()["amazon"]["queued"] == 1  # the repeat queued nothing
    # the header name is configurable
    pipeline.configure("amazon", notifications={"webhook_header": "X-Amz-Relay-Auth"})
    assert post(web, envelope).status_code == 401
    assert post(web, envelope, header="X-Amz-Relay-Auth").status_code == 200


@pytest.mark.parametrize("body", [b"not json", b"{}", "malformed"])
def test_a_malformed_envelope_is_400_recorded_and_not_queued(pipeline, web, envelope, body):
    if body == "malformed":  # what the sandbox's malformed-notification fault sends
        body = json.loads(json.dumps(envelope))
        del body["Payload"]["OrderChangeNotification"]["AmazonOrderId"]
    response = post(web, body)
    assert response.status_code == 400 and "ORDER_CHANGE notification" in response.json()["error"]
    assert pipeline.runtime.store.job_keys_pending() == []
    [event] = pipeline.runtime.store.audit_list(event="notification.invalid")
    assert event.detail["source"] == "webhook"


def test_without_a_configured_token_the_webhook_refuses_everything(make_pipeline, monkeypatch):
    monkeypatch.delenv("ERPSYNC_WEBHOOK_TOKEN")
    pipeline = make_pipeline()
    server = start_web(pipeline.runtime)
    try:
        response = post(server, {"any": "thing"}, "whatever")
        assert response.status_code == 503 and "ERPSYNC_WEBHOOK_TOKEN" in response.json()["error"]
        assert post(server, {"any": "thing"}, None).status_code == 503
    finally:
        server.stop()


def test_health_and_metrics(pipeline, web, envelope):
    health = httpx.get(f"{web.url}/health").json()
    assert health["status"] == "ok" and health["state_schema"] == "0002"
    assert health["queues"]["amazon"] == {"queued": 0, "scheduled": 0}
    post(web, envelope)
    post(web, envelope, "wrong")
    text = httpx.get(f"{web.url}/metrics", headers=BEARER).text
    assert 'erpsync_webhook_notifications_total{outcome="queued"} 1.0' in text
    assert 'erpsync_webhook_notifications_total{outcome="unauthorized"} 1.0' in text
    assert 'erpsync_queue_messages{queue="amazon",state="queued"} 1.0' in text
    assert "erpsync_jobs_pending 1.0" in text and "erpsync_dead_letters_open 0.0" in text


def test_erpsync_web_serves_the_app_from_the_web_section(pipeline, envelope):
    with socket.socket() as probe:  # a free port for [web] port
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    pipeline.configure("web", host="0.0.0.0", port=port)  # --host overrides the section's host
    erpsync = str(Path(sys.executable).parent / "erpsync")
    server = subprocess.Popen([erpsync, "web", "--host", "127.0.0.1", "--config", str(pipeline.config_path)],
                              cwd=pipeline.base, env=dict(os.environ), stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                health = httpx.get(f"{url}/health", timeout=1)
                break
            except httpx.TransportError:
                assert server.poll() is None and time.monotonic() < deadline, server.communicate(timeout=5)[0]
                time.sleep(0.1)
        assert health.status_code == 200 and health.json()["status"] == "ok"
        order_id = envelope["Payload"]["OrderChangeNotification"]["AmazonOrderId"]
        headers = {"X-Erpsync-Token": WEBHOOK_TOKEN}
        assert httpx.post(f"{url}/notifications", content=json.dumps(envelope), headers={"X-Erpsync-Token": "no"},
                          timeout=10).status_code == 401
        response = httpx.post(f"{url}/notifications", content=json.dumps(envelope), headers=headers, timeout=10)
        assert response.status_code == 202 and response.json()["outcome"] == "queued"
        # the server process shares this installation's state store and queues
        [pending] = pipeline.runtime.store.job_keys_pending()
        assert pending.job == "import_order" and order_id in pending.key
        assert pipeline.runtime.pending()["amazon"]["queued"] == 1
        assert 'erpsync_webhook_notifications_total{outcome="queued"} 1.0' in httpx.get(f"{url}/metrics", headers=BEARER).text
    finally:
        output = stop(server)[0]
    assert server.returncode == 0, output
    assert f"erpsync web on {url}" in output and "web stopped" in output


def test_a_notification_whose_job_could_not_be_queued_counts_when_delivered_again(pipeline, envelope, monkeypatch):
    """The inbox must not swallow a notification whose import was never queued (the queue was down): the
    redelivery (SQS keeps the message, Amazon retries the webhook) is taken as new."""
    change = parse_notification(json.dumps(envelope))
    runtime = pipeline.runtime
    enqueue = runtime.enqueue

    def queue_down(*args, **kwargs):
        raise ConnectionError("queue backend unreachable")

    monkeypatch.setattr(runtime, "enqueue", queue_down)
    with pytest.raises(ConnectionError):
        intake.receive(runtime, change, source="sqs")
    monkeypatch.setattr(runtime, "enqueue", enqueue)
    assert intake.receive(runtime, change, source="sqs") is True
    [pending] = runtime.store.job_keys_pending()
    assert pending.job == "import_order"
    assert intake.receive(runtime, change, source="sqs") is False  # and from now on it is a duplicate
