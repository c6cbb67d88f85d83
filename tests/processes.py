"""Stopping the erpsync processes a test started, without ever leaving one behind."""

from __future__ import annotations

import signal
import subprocess
import time

import pytest


def stop(process: subprocess.Popen, sig: int = signal.SIGTERM, timeout: float = 30) -> tuple[str, str]:
    """Send ``sig`` and wait for the process to exit; one that does not within ``timeout`` is killed and the
    test fails (a worker or web server that ignores its signal is a bug, and must not outlive the test run)."""
    process.send_signal(sig)
    try:
        return process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        raise


def wait_until(condition, what: str, timeout: float = 90.0):
    """Poll ``condition`` until it returns something true (returned) or ``timeout`` seconds pass (the test fails
    naming ``what``): for tests that watch other processes."""
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)
    return value
