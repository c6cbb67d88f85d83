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
    assert health["status"] == "ok" and health["state_schema"] == pipeline.runtime.store.revision
    assert health["queues"]["amazon"] == {"queued": 0, "scheduled": 0}
    assert health["components"] == {"state_store": {"status": "ok", "schema": health["state_schema"]},
                                    "queues": {"status": "ok", "messages": health["queues"]}}
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


def test_health_names_the_unreachable_component_without_its_driver_error(tmp_path, capsys):
    """The queue backend down (nothing listens on its port), then the state store unreadable: /health answers 503
    naming the component, and the driver's error text reaches the log only."""
    from erpsync.config import QueueSettings, Settings, StateSettings
    from erpsync.runtime.jobs import Runtime

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        dead_port = probe.getsockname()[1]
    settings = Settings(base_dir=tmp_path, state=StateSettings(url="sqlite:///.erpsync/state.db"),
                        queue=QueueSettings(url=f"redis://127.0.0.1:{dead_port}/0"))
    runtime = Runtime(settings)
    server = start_web(runtime)
    try:
        down = httpx.get(f"{server.url}/health", timeout=10)
        assert down.status_code == 503
        body = down.json()
        assert body["status"] == "unavailable"
        assert body["components"]["state_store"]["status"] == "ok"
        assert body["components"]["queues"]["status"] == "unavailable"
        assert str(dead_port) not in down.text and "refused" not in down.text.lower()
        logged = "".join(capsys.readouterr())
        assert "Connection refused" in logged and "health.unavailable" in logged

        state = tmp_path / ".erpsync" / "state.db"
        runtime.store.engine.dispose()
        for path in state.parent.glob("state.db*"):
            path.unlink()
        state.mkdir()  # the store's file is now a directory: SQLite cannot open it
        both = httpx.get(f"{server.url}/health", timeout=10)
        assert both.status_code == 503
        assert {name: c["status"] for name, c in both.json()["components"].items()} == \
            {"state_store": "unavailable", "queues": "unavailable"}
        assert "unable to open" not in both.text and str(tmp_path) not in both.text
        assert "unable to open database file" in "".join(capsys.readouterr())
    finally:
        server.stop()
        runtime.close()


def _edited(envelope: dict, *path_and_value) -> dict:
    body = json.loads(json.dumps(envelope))
    *path, value = path_and_value
    node = body
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return body


ORDER_ID = ("Payload", "OrderChangeNotification", "AmazonOrderId")
NOTIFICATION_ID = ("NotificationMetadata", "NotificationId")


@pytest.mark.parametrize("path, value, names", [
    (ORDER_ID, "113-1234567-7654321\u0000", "AmazonOrderId: is not an Amazon order id (3-7-7 digits"),
    (ORDER_ID, "113-1234567-7654321; DROP TABLE", "AmazonOrderId: is not an Amazon order id"),
    (ORDER_ID, "1" * 5000, "AmazonOrderId: is not an Amazon order id"),
    (NOTIFICATION_ID, "n" * 129, "NotificationId: is not a NotificationId (1 to 128 printable"),
    (NOTIFICATION_ID, "evil\r\nSet-Cookie: x", "NotificationId: is not a NotificationId"),
    (("Payload", "OrderChangeNotification", "SellerId"), "A1SANDBOX\tSELLER", "SellerId: is not an Amazon id"),
    (("Payload", "OrderChangeNotification", "Summary", "OrderItems", 0, "SellerSKU"), "SKU\u0007",
     "SellerSKU: holds control characters"),
])
def test_ids_not_in_amazons_format_are_400_naming_the_field(pipeline, web, envelope, path, value, names):
    response = post(web, _edited(envelope, *path, value))
    assert response.status_code == 400 and names in response.json()["error"], response.text
    assert value not in response.text and value[:40] not in json.dumps(response.json())  # never echoed back
    assert pipeline.runtime.store.job_keys_pending() == []
    [event] = pipeline.runtime.store.audit_list(event="notification.invalid")
    assert names in event.detail["error"]


def test_a_body_too_large_is_413_and_one_nested_too_deep_is_400(pipeline, web, envelope):
    padded = _edited(envelope, "Padding", "x" * (256 * 1024))
    too_large = post(web, padded)
    assert too_large.status_code == 413 and too_large.json()["outcome"] == "too_large"
    streamed = httpx.post(f"{web.url}/notifications", content=iter([b"{" + b" " * 200_000, b" " * 200_000 + b"}"]),
                          headers={"X-Erpsync-Token": WEBHOOK_TOKEN}, timeout=10)  # chunked: no content-length
    assert streamed.status_code == 413
    deep = post(web, _edited(envelope, "Extra", json.loads("[" * 40 + "]" * 40)))
    assert deep.status_code == 400 and "nests its JSON 41 levels deep" in deep.json()["error"]
    bomb = post(web, "[" * 100_000 + "]" * 100_000)  # 200 kB, and deeper than any parser's recursion
    assert bomb.status_code == 400 and "levels deep" in bomb.json()["error"]
    assert pipeline.runtime.store.job_keys_pending() == []
    events = pipeline.runtime.store.audit_list(event="notification.invalid")
    assert len(events) == 4
    assert post(web, envelope).status_code == 202  # the real one still goes through


@pytest.mark.parametrize("path, value, says", [
    (("Payload", "OrderChangeNotification", "SellerId"), "A2OTHERSELLER", "is for seller A2OTHERSELLER"),
    (("Payload", "OrderChangeNotification", "Summary", "MarketplaceId"), "A1PA6795UKMFR9",
     "marketplace A1PA6795UKMFR9, which is not in [amazon] marketplace_ids"),
])
def test_another_sellers_or_an_unconfigured_marketplaces_notification_is_403_and_audited(pipeline, web, envelope,
                                                                                          path, value, says):
    response = post(web, _edited(envelope, *path, value))
    assert response.status_code == 403 and says in response.json()["error"]
    assert pipeline.runtime.store.job_keys_pending() == []
    [event] = pipeline.runtime.store.audit_list(event="notification.refused")
    order_id = envelope["Payload"]["OrderChangeNotification"]["AmazonOrderId"]
    assert (event.detail["source"], event.detail["amazon_order_id"]) == ("webhook", order_id)
    assert says in event.detail["error"]
    assert pipeline.runtime.store.journal_get(order_id) is None  # nothing noted, nothing queued


def test_the_sqs_consumer_deletes_and_records_refused_and_invalid_notifications(make_pipeline, moto_endpoint,
                                                                                   monkeypatch):
    import threading

    import boto3

    monkeypatch.setenv("ERPSYNC_AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("ERPSYNC_AWS_SECRET_ACCESS_KEY", "test")
    sqs = boto3.client("sqs", endpoint_url=moto_endpoint, region_name="us-east-1", aws_access_key_id="test",
                       aws_secret_access_key="test")
    url = sqs.create_queue(QueueName="erpsync-refusals")["QueueUrl"]
    pipeline = make_pipeline(amazon={"notifications": {"sqs_queue_url": url, "sqs_endpoint_url": moto_endpoint}})
    pipeline.generate(1, seed=43)
    pipeline.wait(lambda: pipeline.control("GET", "notifications")["published"], what="a published envelope")
    envelope = pipeline.control("GET", "notifications")["published"][-1]
    order_id = envelope["Payload"]["OrderChangeNotification"]["AmazonOrderId"]
    bodies = [_edited(envelope, "Payload", "OrderChangeNotification", "SellerId", "A2OTHERSELLER"),
              _edited(envelope, *ORDER_ID, "113-1234567-76543\u00002"), envelope]
    bodies[0]["NotificationMetadata"]["NotificationId"] += "-other"
    bodies[1]["NotificationMetadata"]["NotificationId"] += "-bad"
    for body in bodies:
        sqs.send_message(QueueUrl=url, MessageBody=json.dumps(body))
    stop = threading.Event()
    thread = intake.consume_sqs(pipeline.runtime, stop, wait_seconds=0)
    try:
        def left() -> int:
            attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
            return int(attributes["ApproximateNumberOfMessages"]) + \
                int(attributes["ApproximateNumberOfMessagesNotVisible"])

        pipeline.wait(lambda: left() == 0, timeout=20, what="every message deleted")
        store = pipeline.runtime.store
        pipeline.wait(lambda: store.job_keys_pending(), what="the good notification's import queued")
    finally:
        stop.set()
        thread.join(timeout=30)
    [refused] = store.audit_list(event="notification.refused")
    [invalid] = store.audit_list(event="notification.invalid")
    assert refused.detail["source"] == invalid.detail["source"] == "sqs"
    assert "A2OTHERSELLER" in refused.detail["error"] and "AmazonOrderId" in invalid.detail["error"]
    [pending] = store.job_keys_pending()
    assert pending.job == "import_order" and order_id in pending.key


def test_under_backlog_a_notification_joins_the_notified_orders_without_a_job_of_its_own(pipeline, envelope):
    """Notified orders already wait for the reader: the new one joins them at once (one row), and only the reader
    is queued. Before, every notification queued an import_order that only noted it, and the reader's runs waited
    behind thousands of them in the amazon queue (getOrder's budget went unspent)."""
    store, runtime = pipeline.runtime.store, pipeline.runtime
    store.notified_add("111-0000000-0000001", "Unshipped")  # the backlog
    change = parse_notification(json.dumps(envelope))
    assert intake.receive(runtime, change, source="webhook") is True
    assert [p.job for p in store.job_keys_pending()] == ["read_notified"]
    assert change.amazon_order_id in store.notified_get([change.amazon_order_id])
    assert store.notified_summary()[0] == 2
