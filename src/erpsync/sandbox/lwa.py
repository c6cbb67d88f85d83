"""Login with Amazon token endpoint: ``POST /auth/o2/token`` (refresh_token and client_credentials grants).

Errors are answered as LWA does (OAuth 2 shape): 400 ``invalid_request`` / ``invalid_grant`` /
``unsupported_grant_type`` / ``invalid_scope``, 401 ``invalid_client``. Access tokens (``Atza|…``) live
``world.token_lifetime_seconds`` of sandbox time; ``expires_in`` reports that lifetime in real seconds
(÷ time_scale) so a client that refreshes on ``expires_in`` keeps working at any time scale.
"""

from __future__ import annotations

from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from erpsync.sandbox.core import world_of

router = APIRouter()

GRANTLESS_SCOPES = frozenset({"sellingpartnerapi::notifications", "sellingpartnerapi::migration",
                              "sellingpartnerapi::client_credential:rotation"})
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def _error(status: int, error: str, description: str) -> JSONResponse:
    return JSONResponse({"error": error, "error_description": description}, status_code=status, headers=NO_STORE)


@router.post("/auth/o2/token", include_in_schema=True)
async def token(request: Request) -> JSONResponse:
    world = world_of(request)
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        return _error(400, "invalid_request",
                      "The request must be application/x-www-form-urlencoded; got "
                      f"{content_type or 'no content type'}")
    raw = parse_qs((await request.body()).decode("utf-8", errors="replace"), keep_blank_values=True)
    form = {key: values[-1] for key, values in raw.items()}
    grant_type = form.get("grant_type")
    if not grant_type:
        return _error(400, "invalid_request", "The request is missing a required parameter : grant_type")
    if grant_type not in ("refresh_token", "client_credentials"):
        return _error(400, "unsupported_grant_type",
                      "The authorization grant type is not supported by the authorization server")
    for name in ("client_id", "client_secret"):
        if not form.get(name):
            return _error(400, "invalid_request", f"The request is missing a required parameter : {name}")
    client_id, secret = form["client_id"], form["client_secret"]
    if world.lwa_clients.get(client_id) != secret:
        return _error(401, "invalid_client", "Client authentication failed")
    lifetime = max(1, int(world.token_lifetime_seconds / world.clock.time_scale))

    if grant_type == "refresh_token":
        if form.get("scope"):
            return _error(400, "invalid_request", "Send either refresh_token or scope, not both")
        refresh = form.get("refresh_token")
        if not refresh:
            return _error(400, "invalid_request", "The request is missing a required parameter : refresh_token")
        grant = world.refresh_tokens.get(refresh)
        if grant is None or grant.client_id != client_id:
            return _error(400, "invalid_grant", "The request has an invalid grant parameter : refresh_token")
        issued = world.issue_access_token(client_id, grant.seller_id, None)
        return JSONResponse({"access_token": issued.token, "refresh_token": refresh, "token_type": "bearer",
                             "expires_in": lifetime}, headers=NO_STORE)

    scope = form.get("scope")
    if not scope:
        return _error(400, "invalid_request", "The request is missing a required parameter : scope")
    if scope not in GRANTLESS_SCOPES:
        return _error(400, "invalid_scope", f"The scope {scope!r} is not valid for client_credentials")
    issued = world.issue_access_token(client_id, None, scope)
    return JSONResponse({"access_token": issued.token, "scope": scope, "token_type": "bearer",
                         "expires_in": lifetime}, headers=NO_STORE)
