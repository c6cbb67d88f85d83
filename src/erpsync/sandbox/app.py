"""``create_app(world)``: the sandbox's FastAPI application with every SP-API router that exists."""

from __future__ import annotations

import importlib

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException

from erpsync.sandbox.core import AmazonError, AmazonHeaders, amazon_error, amazon_error_handler, \
    validation_error_handler
from erpsync.sandbox.world import World

# Every module of erpsync.sandbox that serves HTTP exposes ``router``; those present are included.
ROUTERS = ("lwa", "orders", "scenario", "feeds", "reports", "listings", "inventory", "notifications_api",
           "listing_events")


async def _http_error(request, exc: HTTPException):
    codes = {404: "NotFound", 405: "MethodNotAllowed", 415: "UnsupportedMediaType"}
    message = {404: "Resource not found.", 405: "Method not allowed."}.get(exc.status_code, str(exc.detail))
    return amazon_error(exc.status_code, codes.get(exc.status_code, "InvalidInput"), message, str(exc.detail))


def create_app(world: World) -> FastAPI:
    app = FastAPI(title="erpsync SP-API sandbox", docs_url="/_sandbox/docs", redoc_url=None,
                  openapi_url="/_sandbox/openapi.json")
    app.state.world = world
    app.add_exception_handler(AmazonError, amazon_error_handler)
    app.add_exception_handler(RequestValidationError, validation_error_handler)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_middleware(AmazonHeaders)
    for name in ROUTERS:
        try:
            module = importlib.import_module(f"erpsync.sandbox.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"erpsync.sandbox.{name}":
                raise  # the module exists but one of its imports is missing: a real error
            continue
        app.include_router(module.router)
    return app
