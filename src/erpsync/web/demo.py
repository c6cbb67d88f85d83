"""The guided demo's page (``erpsync demo --serve``): buttons for the sandbox's control calls — place orders, place
an order with an unknown SKU, map that SKU, ship what Sage holds, cancel an order, inject and clear faults — so a
visitor watches orders, shipments, a dead letter and its repair on the dashboard. Only present in the demo."""

from __future__ import annotations

from typing import Protocol

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from erpsync.web import auth, render


class DemoControls(Protocol):
    """What the demo's buttons do; each returns what happened, in words (commands/demo_serve.py)."""

    actions: dict[str, str]  # action name -> button label

    def act(self, action: str) -> str: ...


def install(app: FastAPI, controls: DemoControls) -> None:
    app.state.erpsync_demo = controls
    routes = APIRouter(include_in_schema=False)

    @routes.get("/demo")
    def page(request: Request) -> Response:
        return render.page(request, "demo.html", nav="demo", actions=controls.actions)

    @routes.post("/demo")
    async def act(request: Request) -> Response:
        action = (auth.form_values(await request.body()).get("action") or [""])[0]
        if action not in controls.actions:
            return render.page(request, "message.html", code=400, nav="demo", title="Unknown action",
                               lines=[f"{action!r}: choose one of the buttons"], back="/demo")
        try:
            line = await run_in_threadpool(controls.act, action)
        except Exception as exc:  # noqa: BLE001 - the sandbox may refuse (e.g. cancel after shipping): say so
            line = f"{controls.actions[action]}: {type(exc).__name__}: {exc}"
        return render.page(request, "demo.html", nav="demo", actions=controls.actions, result=line)

    app.include_router(routes)
