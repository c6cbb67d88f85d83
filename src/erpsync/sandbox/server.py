"""Run the sandbox from Python: uvicorn in a background thread on a free port, plus the world's ticker.

    with start(time_scale=100) as sandbox:
        httpx.post(f"{sandbox.url}/auth/o2/token", data={...})
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from typing import Any

import uvicorn

from erpsync.sandbox.app import create_app
from erpsync.sandbox.world import World

log = logging.getLogger(__name__)
TICK_SECONDS = 0.05  # real seconds between two runs of world.tick() + notification delivery


class RunningSandbox:
    """A sandbox serving on ``url``; ``stop()`` (or leaving the ``with`` block) shuts it down."""

    def __init__(self, world: World, server: uvicorn.Server, sock: socket.socket):
        self.world = world
        self._server = server
        self._sock = sock
        host, port = sock.getsockname()[:2]
        self.host, self.port = host, port
        self.url = f"http://{host}:{port}"
        self._stopped = threading.Event()
        self._serve = threading.Thread(target=self._run, name=f"sandbox-{port}", daemon=True)
        self._ticker = threading.Thread(target=self._tick, name=f"sandbox-tick-{port}", daemon=True)

    def _run(self) -> None:
        self._server.run(sockets=[self._sock])

    def _tick(self) -> None:
        from erpsync.sandbox import notifications

        while not self._stopped.wait(TICK_SECONDS):
            try:
                self.world.tick()
                notifications.deliver(self.world)
            except Exception:  # keep ticking: one failing ticker must not stop the sandbox
                log.exception("sandbox tick failed")

    def _begin(self, timeout: float = 10.0) -> None:
        self._serve.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._serve.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"sandbox did not start on {self.url}")
            time.sleep(0.01)
        self._ticker.start()

    def stop(self) -> None:
        if self._stopped.is_set():
            return
        self._stopped.set()
        self._server.should_exit = True
        self._serve.join(timeout=10)
        if self._ticker.is_alive():
            self._ticker.join(timeout=10)
        with self.world.lock:
            sinks = [*self.world.notification_sinks,
                     *(destination.sink for destination in self.world.destinations.values())]
        for sink in sinks:  # the sinks' senders and HTTP clients
            if hasattr(sink, "close"):
                sink.close()
        self._sock.close()

    def __enter__(self) -> RunningSandbox:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def start(host: str = "127.0.0.1", port: int = 0, *, time_scale: float = 1.0, seed: int = 7,
          world: World | None = None, app: Any = None, log_level: str = "warning",
          **options: Any) -> RunningSandbox:
    """Serve a sandbox on ``host:port`` (0 = a free port). ``options`` go to :meth:`World.create`.

    ``app`` serves an application already made by ``create_app(world)`` (e.g. with extra test routes).
    """
    if app is not None:
        world = app.state.world
    if world is None:
        world = World.create(time_scale=time_scale, seed=seed, **options)
    elif options:
        raise TypeError(f"options {sorted(options)} apply only when start() creates the world")
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # accepted sockets inherit it: no 40 ms Nagle stalls
    sock.bind((host, port))
    sock.listen(128)
    config = uvicorn.Config(app or create_app(world), log_level=log_level, access_log=False, lifespan="off")
    running = RunningSandbox(world, uvicorn.Server(config), sock)
    running._begin()
    return running
