"""Feed and report documents and their presigned URLs, served by the sandbox itself in place of Amazon's S3.

A document lives in ``world.feed_documents`` or ``world.report_documents`` (by id). Its URLs are presigned like
S3's: ``/_docs/{kind}/{id}?X-Amz-Date=…&X-Amz-Expires=300&X-Amz-Signature=…``, an HMAC over the method, the path,
the date and the expiry with a secret of that document, so a URL is good for one method and expires five
minutes (sandbox time) after it was made. An upload (PUT) must carry the ``Content-Type`` declared to
createFeedDocument. Refusals are S3's: 403 ``SignatureDoesNotMatch`` / ``AccessDenied`` and 404 ``NoSuchKey``
with an XML body that says what is wrong.
"""

from __future__ import annotations

import gzip
import hashlib
import hmac
import secrets
import uuid
from datetime import datetime, timedelta
from typing import Any, Literal
from urllib.parse import urlencode
from xml.sax.saxutils import escape

from fastapi import APIRouter, Request, Response

from erpsync.sandbox import query
from erpsync.sandbox.core import UTC, world_of
from erpsync.sandbox.world import World

router = APIRouter(include_in_schema=False)

Kind = Literal["feed", "report"]
URL_LIFETIME_SECONDS = 300
GZIP_MIN_BYTES = 16 * 1024  # documents at least this large are stored compressed (compressionAlgorithm GZIP)
_DATE = "%Y%m%dT%H%M%SZ"


def _registry(world: World, kind: str) -> dict[str, dict[str, Any]] | None:
    return {"feed": world.feed_documents, "report": world.report_documents}.get(kind)


def create(world: World, kind: Kind, content_type: str, content: bytes | None = None) -> dict[str, Any]:
    """A new document (``content`` None: waiting for its upload). Large content is stored gzip-compressed."""
    with world.lock:
        serial = world.next_uuid()
        prefix = "amzn1.tortuga.4.na" if kind == "feed" else "amzn1.spdoc.1.4.na"
        document: dict[str, Any] = {
            "id": f"{prefix}.{serial}.T{world.next_id(12)}", "kind": kind, "contentType": content_type,
            "content": None, "compression": None, "secret": secrets.token_hex(16), "createdTime": world.now(),
            "uploadedTime": None,
        }
        if content is not None:
            store(document, content, world.now(), compress=len(content) >= GZIP_MIN_BYTES)
        _registry(world, kind)[document["id"]] = document
        return document


def store(document: dict[str, Any], content: bytes, now: datetime, *, compress: bool) -> None:
    document["content"] = gzip.compress(content, mtime=0) if compress else content
    document["compression"] = "GZIP" if compress else None
    document["uploadedTime"] = now


def content_of(document: dict[str, Any]) -> bytes | None:
    """The document's bytes, decompressed."""
    if document["content"] is None:
        return None
    return gzip.decompress(document["content"]) if document["compression"] else document["content"]


def _signature(document: dict[str, Any], method: str, date: str, expires: str, encoding: str) -> str:
    message = "\n".join((method, document["kind"], document["id"], date, expires, encoding))
    return hmac.new(document["secret"].encode(), message.encode(), hashlib.sha256).hexdigest()


def base_url(request: Request) -> str:
    """The address this sandbox listens on (not the Host header, which clients may set to Amazon's host)."""
    host, port = request.scope.get("server") or (request.url.hostname, request.url.port)
    host = f"[{host}]" if ":" in str(host) else host
    return f"{request.url.scheme}://{host}:{port}"


def presign(request: Request, document: dict[str, Any], method: Literal["GET", "PUT"], *,
            content_encoding: bool = False) -> str:
    """A URL for ``method`` on ``document`` that expires in five minutes of sandbox time."""
    date = world_of(request).now().strftime(_DATE)
    expires = str(URL_LIFETIME_SECONDS)
    encoding = "gzip" if content_encoding else ""
    query = {"X-Amz-Algorithm": "AWS4-HMAC-SHA256", "X-Amz-Date": date, "X-Amz-Expires": expires}
    if encoding:
        query["response-content-encoding"] = encoding
    query["X-Amz-Signature"] = _signature(document, method, date, expires, encoding)
    return f"{base_url(request)}/_docs/{document['kind']}/{document['id']}?{urlencode(query)}"


def download_view(request: Request, document: dict[str, Any], id_name: str) -> dict[str, str]:
    """The models' ``FeedDocument`` / ``ReportDocument``: the id (as ``id_name``), a download URL (asking S3 for
    ``Content-Encoding: gzip`` when ``enableContentEncodingUrlHeader=true``) and the compression, if any."""
    encoded = query.boolean(request, "enableContentEncodingUrlHeader")
    view = {id_name: document["id"], "url": presign(request, document, "GET", content_encoding=encoded)}
    if document["compression"]:
        view["compressionAlgorithm"] = document["compression"]
    return view


def s3_error(status: int, code: str, message: str) -> Response:
    body = ('<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<Error><Code>{escape(code)}</Code><Message>{escape(message)}</Message>"
            f"<RequestId>{uuid.uuid4().hex[:16].upper()}</RequestId></Error>")
    return Response(body, status_code=status, media_type="application/xml")


def _authorize(request: Request, kind: str, document_id: str) -> tuple[dict[str, Any] | None, Response | None]:
    world = world_of(request)
    registry = _registry(world, kind)
    document = registry.get(document_id) if registry is not None else None
    if document is None:
        return None, s3_error(404, "NoSuchKey", f"The specified key does not exist: {kind} document {document_id}.")
    query = request.query_params
    date, expires = query.get("X-Amz-Date", ""), query.get("X-Amz-Expires", "")
    encoding = query.get("response-content-encoding", "")
    expected = _signature(document, request.method, date, expires, encoding)
    if not hmac.compare_digest(expected, query.get("X-Amz-Signature", "")):
        return None, s3_error(403, "SignatureDoesNotMatch",
                              f"The request signature we calculated does not match the signature you provided: "
                              f"this URL was not issued for {request.method} of this document. Use the url returned "
                              "by createFeedDocument (upload) or getFeedDocument/getReportDocument (download).")
    issued = datetime.strptime(date, _DATE).replace(tzinfo=UTC)
    if world.now() > issued + timedelta(seconds=int(expires)):
        return None, s3_error(403, "AccessDenied",
                              f"Request has expired: the URL was issued at {date} and was valid for {expires} "
                              "seconds. Ask for a new URL (getFeedDocument/getReportDocument, or a new "
                              "createFeedDocument for uploads).")
    return document, None


def _media_type(value: str) -> str:
    """A content type compared as S3 compares the signed header: case and spaces around ';' do not matter."""
    return ";".join(part.strip().lower() for part in value.split(";"))


@router.put("/_docs/{kind}/{document_id}")
async def upload(kind: str, document_id: str, request: Request) -> Response:
    world = world_of(request)
    document, refusal = _authorize(request, kind, document_id)
    if refusal is not None:
        return refusal
    sent = request.headers.get("content-type", "")
    if _media_type(sent) != _media_type(document["contentType"]):
        return s3_error(403, "SignatureDoesNotMatch",
                        f"The Content-Type of the upload ({sent or 'none'!r}) differs from the contentType "
                        f"declared to createFeedDocument ({document['contentType']!r}); the presigned URL is only "
                        "valid with the declared content type.")
    body = await request.body()
    with world.lock:
        if document.get("feedId"):
            return s3_error(403, "AccessDenied", f"Document {document_id} is already the input of feed "
                                                 f"{document['feedId']}; create a new feed document to upload again.")
        store(document, body, world.now(), compress=False)
    return Response(status_code=200, headers={"ETag": f'"{hashlib.md5(body).hexdigest()}"'})


@router.get("/_docs/{kind}/{document_id}")
async def download(kind: str, document_id: str, request: Request) -> Response:
    document, refusal = _authorize(request, kind, document_id)
    if refusal is not None:
        return refusal
    if document["content"] is None:
        return s3_error(404, "NoSuchKey", f"Document {document_id} has no content yet: nothing was uploaded.")
    headers = {}
    if document["compression"] and request.query_params.get("response-content-encoding") == "gzip":
        headers["Content-Encoding"] = "gzip"
    return Response(document["content"], media_type=document["contentType"], headers=headers)
