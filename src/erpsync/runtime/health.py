"""The runtime's installation checks behind ``erpsync check``: state store → queue backend → Amazon endpoint
(configuration only). Each check says what it looked at and, when something is wrong, names what is missing and
how to fix it. A check reads; it never writes to an adapter's system and the runtime knows no adapter: the Sage
500 check (and the first-run seeding of the embedded replica) belongs to the ``erpsync check`` command, which
passes it in as an extra check. No check calls Amazon over the network.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from sqlalchemy.engine import make_url

from erpsync.config import Settings
from erpsync.flows.jobs import QUEUES
from erpsync.runtime.queue import backend, make_huey
from erpsync.runtime.store import Store

REGIONS = ("na", "eu", "fe")


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # worth fixing, not failing
    info: list[str] = field(default_factory=list)  # what was found, one line each


Named = tuple[str, Callable[[Settings], Check]]


def run_checks(settings: Settings, extra: Sequence[Named] = ()) -> list[Check]:
    """The runtime's checks in order, then ``extra`` ones (an adapter's, passed in by the command)."""
    return [_guard(name, check, settings) for name, check in (*CHECKS, *extra)]


def _guard(name: str, check: Callable[[Settings], Check], settings: Settings) -> Check:
    try:
        return check(settings)
    except Exception as exc:  # a check reports what broke; it does not crash the command
        return Check(name, False, f"{type(exc).__name__}: {exc}")


def shown(url: str) -> str:
    """A URL fit for display (password hidden)."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return url.split("@")[-1]


def check_state(settings: Settings) -> Check:
    store = Store.open(settings)
    try:
        return Check("state store", True, f"{store.url} (schema {store.revision})")
    finally:
        store.close()


def check_queue(settings: Settings) -> Check:
    counts = []
    for queue in QUEUES:
        huey = make_huey(settings, queue)
        try:
            counts.append(f"{queue}: {huey.pending_count()} queued, {huey.scheduled_count()} scheduled")
        finally:
            huey.storage.close()
    url = settings.resolve_url(settings.queue.url)
    return Check("queue", True, f"{backend(url)} {shown(url)} — {'; '.join(counts)}")


def check_amazon(settings: Settings) -> Check:
    amazon = settings.amazon
    endpoint = amazon.endpoint
    if endpoint == "sandbox":
        where = f"at {amazon.sandbox_url}" if amazon.sandbox_url else "started in-process when needed"
        return Check("amazon", True, f"built-in SP-API sandbox ({where}); seller {amazon.seller_id}, "
                                     f"marketplaces {', '.join(amazon.marketplace_ids)}")
    if endpoint not in REGIONS and not endpoint.startswith("https://"):
        return Check("amazon", False, f"[amazon] endpoint {endpoint!r} is not one of sandbox, "
                                      f"{', '.join(REGIONS)} or an https:// URL")
    defaults = type(settings.secrets)()
    problems = [f"ERPSYNC_{name.upper()} is not set (the sandbox placeholder would be sent to Amazon)"
                for name in ("lwa_client_secret", "lwa_refresh_token")
                if getattr(settings.secrets, name).get_secret_value()
                == getattr(defaults, name).get_secret_value()]
    return Check("amazon", not problems, f"SP-API {endpoint}, seller {amazon.seller_id}, marketplaces "
                                         f"{', '.join(amazon.marketplace_ids)} (configuration only; no call made)",
                 problems)


CHECKS: tuple[tuple[str, Callable[[Settings], Check]], ...] = (
    ("state store", check_state), ("queue", check_queue), ("amazon", check_amazon))
