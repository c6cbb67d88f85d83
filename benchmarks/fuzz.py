"""R4's fuzz targets (hypothesis), each through a real entry point of erpsync, on a :class:`~benchmarks.harness.Rig`.

Inputs start from what the sandbox really sends (an ORDER_CHANGE envelope, a getOrder answer) and are spoiled one
place at a time: a field removed, a value replaced by any JSON value or by text with control characters, the body
replaced by bytes; plus bodies nested too deep or too large. What each target must do with them:

- ``webhook``: POST /notifications over HTTP → 202/200 (a sound envelope), or a 4xx whose body names the reason;
  never a 5xx.
- ``sqs``: the SQS consumer's per-message step (``SqsConsumer._handle``, what ``consume`` does with each message)
  → handled: queued, or recorded as invalid/refused; never an exception.
- ``translator``: ``amazon.translate.order_from_api`` → a canonical order or :class:`InvalidData`; nothing else.
- ``import_path``: the spoiled order held by the sandbox, ``import_order`` and ``apply_order`` run for real → the
  order is written to Sage, or it is one dead letter of erpsync's own error classes naming the order, and Sage holds
  nothing of it.
- ``settlement_files``: a V2 settlement flat file the sandbox published, spoiled one cell, line or byte range at a
  time, through ``erpsync settlements import FILE --dry-run --json`` (the command a person runs) → a balanced
  journal (exit 0), or exit 1 with the reason (``rejected: settlement format changed: …``); never a traceback.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from benchmarks.harness import Rig

JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                                  max_size=3), max_leaves=8)
NASTY_TEXT = st.text(alphabet=st.characters(codec="utf-8"), max_size=40) | st.sampled_from(
    ["", " ", "\x00", "abc\x07", "113-0000000-0000000\n", "-1", "1e309", "NaN", "9" * 40, "2026-13-45T25:61:00Z"])


@dataclass
class Result:
    examples: int = 0
    accepted: int = 0  # the spoiled input was still sound: taken like any other
    refused: int = 0  # a 4xx with a reason, an InvalidData, a recorded refusal or a dead letter
    crashed: int = 0  # a 5xx, an exception that is not erpsync's, a dead letter of an unexpected error
    failures: list[str] | None = None

    def summary(self) -> str:
        return f"{self.examples} inputs: {self.accepted} taken, {self.refused} refused with a reason, " \
               f"{self.crashed} crashed"

    def crash(self, what: str) -> None:
        self.crashed += 1
        self.failures = (self.failures or []) + [what[:300]]


def _paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    found = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, inner in value.items():
            found += _paths(inner, (*prefix, key))
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            found += _paths(inner, (*prefix, index))
    return found


def _spoil(document: Any, path: tuple, action: str, replacement: Any) -> Any:
    spoiled = json.loads(json.dumps(document))
    holder = spoiled
    for part in path[:-1]:
        holder = holder[part]
    if action == "delete":
        del holder[path[-1]]
    else:
        holder[path[-1]] = replacement
    return spoiled


def spoiled(document: Any) -> st.SearchStrategy:
    """``document`` with one place spoiled (a removed field, any JSON value, nasty text)."""
    return st.tuples(st.sampled_from(_paths(document)), st.sampled_from(["delete", "json", "text"]),
                     JSON, NASTY_TEXT).map(
        lambda t: _spoil(document, t[0], t[1], t[2] if t[1] == "json" else t[3]))


def bodies(envelope: dict) -> st.SearchStrategy:
    """Request bodies: a spoiled envelope (with a fresh NotificationId, so it is not taken for a repeat), raw
    bytes, text, JSON nested too deep, an envelope too large."""
    def fresh(document: Any) -> bytes:
        try:
            document["NotificationMetadata"]["NotificationId"] = str(uuid.uuid4())
        except (KeyError, TypeError, IndexError):
            pass
        return json.dumps(document).encode()

    deep = b"[" * 200 + b"]" * 200
    large = json.dumps({**envelope, "padding": "x" * 300_000}).encode()
    return st.one_of(spoiled(envelope).map(fresh), st.binary(max_size=200), NASTY_TEXT.map(str.encode),
                     st.sampled_from([deep, large, b"", b"null", b"[]", b"{}"]))


def _settings(examples: int, seed: int):
    return settings(max_examples=examples, deadline=None, database=None, derandomize=True,
                    phases=[Phase.explicit, Phase.reuse, Phase.generate],
                    suppress_health_check=list(HealthCheck))


def sample_envelope(rig: Rig) -> dict:
    """A real ORDER_CHANGE envelope as the sandbox builds it."""
    from erpsync.sandbox.notifications import envelope
    from erpsync.sandbox.world import OrderChangeEvent

    [oid] = rig.generate(1, seed=4242)
    order = rig.control("GET", f"orders/{oid}")["order"]
    return envelope(rig.world, OrderChangeEvent(order=order, at=rig.world.now(), reason="NewOrder"))


def webhook(rig: Rig, examples: int, seed: int) -> Result:
    result = Result()
    header = rig.settings.amazon.notifications.webhook_header
    client = httpx.Client(timeout=30, headers={header: rig.token, "content-type": "application/json"})

    @_settings(examples, seed)
    @given(body=bodies(sample_envelope(rig)))
    def post(body: bytes) -> None:
        result.examples += 1
        answer = client.post(rig.web.url + "/notifications", content=body)
        if answer.status_code in (200, 202):
            result.accepted += 1
        elif 400 <= answer.status_code < 500 and answer.json().get("error"):
            result.refused += 1
        else:
            result.crash(f"webhook answered {answer.status_code} {answer.text[:200]} to {body[:200]!r}")

    try:
        post()
    finally:
        client.close()
    return result


def sqs(rig: Rig, examples: int, seed: int) -> Result:
    from erpsync.amazon.notifications import SqsConsumer
    from erpsync.flows import intake

    result = Result()
    consumer = SqsConsumer("http://127.0.0.1:9/000000000000/erpsync-fuzz", endpoint_url="http://127.0.0.1:9",
                           aws_access_key_id="fuzz", aws_secret_access_key="fuzz", wait_seconds=0)
    runtime = rig.runtime

    @_settings(examples, seed)
    @given(body=bodies(sample_envelope(rig)))
    def handle(body: bytes) -> None:
        result.examples += 1
        taken: list[bool] = []
        invalid: list[str] = []

        def handler(change) -> bool:
            taken.append(intake.admit(runtime, change, source="sqs") is None
                         and intake.receive(runtime, change, source="sqs"))
            return taken[-1]

        try:
            handled = consumer._handle({"MessageId": str(uuid.uuid4()), "Body": body.decode("utf-8", "replace")},
                                       handler, lambda _body, error: invalid.append(str(error))
                                       or intake.reject(runtime, error, source="sqs"))
        except Exception as exc:  # noqa: BLE001 - that is what this counts
            result.crash(f"SQS message step raised {type(exc).__name__}: {exc}")
            return
        if not handled:
            result.crash(f"SQS message neither handled nor parked: {body[:200]!r}")
        elif invalid:
            result.refused += 1
        else:
            result.accepted += 1

    handle()
    return result


def translator(rig: Rig, examples: int, seed: int) -> Result:
    from erpsync.amazon.translate import order_from_api
    from erpsync.errors import InvalidData

    result = Result()
    [oid] = rig.generate(1, seed=4343, multi_line_share=1.0)
    order = rig.control("GET", f"orders/{oid}")["order"]

    @_settings(examples, seed)
    @given(document=spoiled(order))
    def translate(document: dict) -> None:
        result.examples += 1
        try:
            order_from_api(document)
        except InvalidData as exc:
            result.refused += 1 if str(exc) else 0
            if not str(exc):
                result.crash("InvalidData without a message")
        except Exception as exc:  # noqa: BLE001 - that is what this counts
            result.crash(f"translator raised {type(exc).__name__}: {exc}")
        else:
            result.accepted += 1

    translate()
    return result


def run_queued(rig: Rig, limit: int = 50) -> None:
    """Run every queued and scheduled message now, due or not (huey's real storage, no consumer), until none is
    left or ``limit`` rounds passed (a retry goes back into the schedule)."""
    from erpsync.runtime.store import utcnow

    for _ in range(limit):
        tasks = []
        for huey in rig.runtime.queues.values():
            tasks += huey.read_schedule(utcnow().replace(tzinfo=None) + timedelta(days=365))
            while (task := huey.dequeue()) is not None:
                tasks.append(task)
        if not tasks:
            return
        for task in tasks:
            task.execute()


def _names(cls: type) -> set[str]:
    """The names of ``cls`` and every class derived from it."""
    return {cls.__name__}.union(*(_names(sub) for sub in cls.__subclasses__()))


def import_path(rig: Rig, examples: int, seed: int) -> Result:
    from erpsync import errors

    ours = _names(errors.ErpsyncError)  # erpsync's error classes, wherever declared (amazon.orders.UnreadableOrder)
    result = Result()
    [template] = rig.generate(1, seed=4444, multi_line_share=0.0)
    order = rig.control("GET", f"orders/{template}")["order"]
    # spoil what the seller's buyer and Amazon fill in; keep the ids and the structure the sandbox's own routes
    # navigate (the sandbox is not under test here)
    paths = [p for p in _paths({k: order[k] for k in ("buyer", "recipient", "proceeds", "orderItems") if k in order})
             if "orderItemId" not in p]
    store = rig.runtime.store
    rig.control("PUT", "notifications/sinks", json={})  # only this target's imports run: no webhook's
    run_queued(rig)

    @_settings(examples, seed)
    @given(path=st.sampled_from(paths), action=st.sampled_from(["delete", "json", "text"]), value=JSON,
           text=NASTY_TEXT)
    def import_one(path: tuple, action: str, value: Any, text: str) -> None:
        result.examples += 1
        [oid] = rig.generate(1, seed=4444, multi_line_share=0.0)  # the template's shape, a new id
        with rig.world.lock:
            held = rig.world.orders[oid]
            spoilt = _spoil(held, path, action, value if action == "json" else text)
            held.clear()
            held.update(spoilt)
        before = {d.id for d in store.dead_letters.list("open", limit=100_000)}
        try:
            rig.runtime.submit("import_order", {"amazon_order_id": oid, "read": True}, key=f"fuzz:{oid}")
            run_queued(rig)
        except Exception as exc:  # noqa: BLE001 - that is what this counts
            result.crash(f"import of {oid} raised {type(exc).__name__}: {exc}")
            return
        letters = [d for d in store.dead_letters.list("open", limit=100_000)
                   if d.id not in before and d.record == oid]
        in_sage = rig.sage_orders().get(oid, [])
        if letters:
            if in_sage:
                result.crash(f"{oid}: a dead letter and a Sage order")
            for dead in letters:
                if dead.error_class not in ours or oid not in dead.message:
                    result.crash(f"{oid} {path} {action}: dead letter {dead.error_class}: {dead.message[:200]}")
            result.refused += 1
        elif len(in_sage) == 1 or rig.journal(oid) in ("skipped", "voided"):
            result.accepted += 1
        else:
            result.crash(f"{oid} {path} {action}: neither in Sage nor a dead letter ({rig.describe()})")

    import_one()
    return result


def sample_settlement(rig: Rig) -> str:
    """The text of a V2 settlement flat file the sandbox published (a few shipped orders, fees and charges)."""
    from erpsync.sandbox import documents

    rig.generate(3, seed=4545)
    closed = rig.control("POST", "settlements", json={})
    with rig.world.lock:
        document = rig.world.reports[closed["reportId"]]["reportDocumentId"]
        return documents.content_of(rig.world.report_documents[document]).decode()


def spoiled_files(text: str) -> st.SearchStrategy:
    """``text`` with one place spoiled: a cell replaced by nasty text, a line removed or doubled, a column dropped
    from one line, the file cut short, or raw bytes in place of a line."""
    lines = text.splitlines(keepends=True)

    def cell(t: tuple[int, int, str]) -> bytes:
        number, column, value = t
        fields = lines[number].rstrip("\r\n").split("\t")
        fields[column % len(fields)] = value
        return "".join(lines[:number] + ["\t".join(fields) + "\n"] + lines[number + 1:]).encode()

    def line(t: tuple[int, str]) -> bytes:
        number, action = t
        if action == "drop":
            changed = lines[:number] + lines[number + 1:]
        elif action == "double":
            changed = lines[:number + 1] + lines[number:]
        else:  # a column fewer on this line
            changed = lines[:number] + ["\t".join(lines[number].split("\t")[:-1]) + "\n"] + lines[number + 1:]
        return "".join(changed).encode()

    numbers = st.integers(0, len(lines) - 1)
    return st.one_of(
        st.tuples(numbers, st.integers(0, 40), NASTY_TEXT.filter(lambda v: "\t" not in v and "\n" not in v
                                                                and "\r" not in v)).map(cell),
        st.tuples(numbers, st.sampled_from(["drop", "double", "short"])).map(line),
        st.integers(0, len(text)).map(lambda cut: text[:cut].encode()),
        st.tuples(numbers, st.binary(min_size=1, max_size=40)).map(
            lambda t: "".join(lines[:t[0]]).encode() + t[1] + "".join(lines[t[0] + 1:]).encode()))


def settlement_files(rig: Rig, examples: int, seed: int) -> Result:
    """Settlement files through ``erpsync settlements import --dry-run --json``: a balanced journal or exit 1 with
    the reason naming the file; an exception escaping the command is a crash."""
    from typer.testing import CliRunner

    from erpsync.cli import app

    result = Result()
    runner = CliRunner()
    path = rig.base / "fuzzed-settlement.txt"

    @_settings(examples, seed)
    @given(content=spoiled_files(sample_settlement(rig)))
    def import_file(content: bytes) -> None:
        result.examples += 1
        path.write_bytes(content)
        run = runner.invoke(app, ["settlements", "import", str(path), "--dry-run", "--json",
                                  "--config", str(rig.config_path)])
        if run.exception is not None and not isinstance(run.exception, SystemExit):
            result.crash(f"settlements import raised {type(run.exception).__name__}: {run.exception}")
        elif run.exit_code == 0:
            if json.loads(run.stdout)["balanced"] is not True:
                result.crash(f"settlements import printed an unbalanced journal for {content[:200]!r}")
            else:
                result.accepted += 1
        elif run.exit_code == 1 and str(path) in run.output:
            result.refused += 1
        else:
            result.crash(f"settlements import exited {run.exit_code}: {run.output[:300]}")

    import_file()
    return result
