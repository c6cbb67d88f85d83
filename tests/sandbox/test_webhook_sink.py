"""The webhook sink keeps one HTTP client (and its connections, at most one per sender) for its life, closed with the
sandbox: a client per notification cost the pipeline benchmark a fifth of its CPU (a TLS context and a connect for
each envelope)."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from erpsync.sandbox.server import start


class _KeepAlive(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # the connection stays open between requests unless the client closes it

    def do_POST(self):  # noqa: N802 (http.server naming)
        body = self.rfile.read(int(self.headers["content-length"]))
        self.server.received.append((self.client_address[1], json.loads(body)))
        self.send_response(200)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.mark.parametrize("senders", [1, 3])
def test_notifications_share_the_senders_connections_and_the_client_closes_with_the_sandbox(senders):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _KeepAlive)
    server.received = []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    sandbox = start(time_scale=60)
    try:
        control = f"{sandbox.url}/_sandbox"
        httpx.put(f"{control}/notifications/sinks", timeout=30,
                  json={"webhook_url": f"http://127.0.0.1:{server.server_address[1]}/hook",
                        "senders": senders}).raise_for_status()
        httpx.post(f"{control}/orders", json={"count": 6, "status": "UNSHIPPED"}, timeout=30).raise_for_status()
        deadline = time.monotonic() + 30
        while len(server.received) < 6:
            assert time.monotonic() < deadline, f"only {len(server.received)} of 6 notifications arrived"
            time.sleep(0.05)
        [sink] = sandbox.world.notification_sinks
    finally:
        sandbox.stop()
        server.shutdown()
        server.server_close()
    assert {body["NotificationType"] for _port, body in server.received} == {"ORDER_CHANGE"}
    # a client port is a connection: at most one per sender, reused for the next notifications
    assert 1 <= len({port for port, _body in server.received}) <= senders < len(server.received)
    assert sink._client.is_closed
