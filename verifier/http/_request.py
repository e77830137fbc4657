"""One request path for every verify route (and the plain-ASGI fast path in front of them).

What a request needs, in the order it needs it: its headers scanned once (`Head`), the API
key checked (`authorize`), the body read under a cap and a deadline (`read_body`), the
token taken from the body (`token_of`), and the verdict counted and described for the
access log (`record`) and written (`verdict_json`, Russian `detail` on request). Every
client error is an `ApiError` with a code from `ERRORS`, answered by `error_body` as
`{"error": {"code": ..., "message": ...}}`: the Starlette routes, the fast path and the
connection protocol (414/431/408 before any app runs) all answer through it.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

import orjson
from starlette.types import Message, Receive, Scope, Send

from verifier import i18n

__all__ = ["Message", "Receive", "Scope", "Send"]

JSON = "application/json"
SCOPE_KEY = "qrverify"  # per-request state that handlers leave for the access log
NO_STORE = (b"cache-control", b"no-store")
JSON_TYPE = (b"content-type", b"application/json")
API_KEY_CHALLENGE = 'ApiKey realm="qrverify", header="X-API-Key"'

# The error catalogue (docs/http.md lists it): code -> (HTTP status, message).
ERRORS: dict[str, tuple[int, str]] = {
    "bad_request": (400, "malformed request"),
    "bad_json": (400, "request body is not valid JSON"),
    "bad_encoding": (400, "text/plain body is not valid UTF-8"),
    "empty_body": (400, "the request body is empty"),
    "bad_content_length": (400, "malformed Content-Length header"),
    "bad_multipart": (400, "malformed multipart/form-data body"),
    "bad_image": (400, "the image could not be decoded"),
    "no_qr_code": (400, "no QR code found in the image"),
    "client_disconnected": (400, "client disconnected before the body arrived"),
    "unauthorized": (401, "missing or invalid X-API-Key header"),
    "not_found": (404, "not found"),
    "method_not_allowed": (405, "method not allowed"),
    "request_timeout": (408, "request not received in time"),
    "body_too_large": (413, "request body too large"),
    "too_many_tokens": (413, "too many tokens in the batch"),
    "image_too_large": (413, "image too large"),
    "uri_too_long": (414, "request line too long"),
    "unsupported_media_type": (415, "unsupported content type"),
    "too_many_requests": (429, "too many requests"),
    "headers_too_large": (431, "request headers too large"),
    "too_many_not_found": (429, "too many register links not found: retry later"),
    "internal_error": (500, "internal error"),
    "unavailable": (503, "service unavailable"),
}


class ApiError(Exception):
    """A client (or server) error answered as JSON: `code` from ERRORS, a safe `message`
    that never quotes the request, and optional extra headers."""

    def __init__(
        self,
        code: str,
        message: str | None = None,
        headers: list[tuple[bytes, bytes]] | None = None,
    ) -> None:
        status, default = ERRORS[code]
        super().__init__(message or default)
        self.code = code
        self.status = status
        self.message = message or default
        self.headers = headers or []


def error_body(code: str, message: str | None = None) -> bytes:
    return orjson.dumps({"error": {"code": code, "message": message or ERRORS[code][1]}})


def raw_error(code: str, message: str | None = None, *, close: bool = True) -> bytes:
    """A complete HTTP/1.1 error answer, for the connection protocol (no app involved)."""
    body = error_body(code, message)
    status = ERRORS[code][0]
    head = (
        f"HTTP/1.1 {status} {_PHRASES.get(status, 'Error')}\r\n"
        f"content-type: application/json\r\ncontent-length: {len(body)}\r\n"
        + ("connection: close\r\n" if close else "")
        + "\r\n"
    )
    return head.encode("ascii") + body


_PHRASES = {
    400: "Bad Request",
    408: "Request Timeout",
    414: "URI Too Long",
    431: "Request Header Fields Too Large",
    413: "Content Too Large",
    503: "Service Unavailable",
}


async def send_json(
    send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]
) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [*headers, JSON_TYPE, (b"content-length", b"%d" % len(body))],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def send_error(
    send: Send, state: dict[str, Any], exc: ApiError, headers: list[tuple[bytes, bytes]]
) -> None:
    """The one error answer of the plain-ASGI paths (the Starlette routes use the same body)."""
    state["error"] = exc.code
    await send_json(send, exc.status, error_body(exc.code, exc.message), [*headers, *exc.headers])


class Head:
    """What the routes need from the request headers, read in one pass (`scan`)."""

    __slots__ = ("media", "content_type", "api_key", "language", "length", "request_id", "origin")

    def __init__(
        self,
        content_type: bytes,
        api_key: bytes | None,
        language: bytes | None,
        length: bytes | None,
        request_id: bytes | None,
        origin: bytes | None,
    ) -> None:
        self.content_type = content_type  # the raw header (multipart needs its boundary)
        # lower-case media type without parameters
        self.media = content_type.split(b";", 1)[0].strip().lower() if content_type else b""
        self.api_key = api_key
        self.language = "en" if language is None else i18n.choose(language)
        self.length = length  # Content-Length as sent
        self.request_id = request_id
        self.origin = origin


_WANTED = frozenset(
    {
        b"content-type",
        b"x-api-key",
        b"accept-language",
        b"content-length",
        b"x-request-id",
        b"origin",
    }
)


def scan(headers: list[tuple[bytes, bytes]]) -> Head:
    found: dict[bytes, bytes] = {}
    for name, value in headers:
        if name in _WANTED:
            found[name] = value
    if not found:
        return Head(b"", None, None, None, None, None)
    get = found.get
    return Head(
        get(b"content-type", b""),
        get(b"x-api-key"),
        get(b"accept-language"),
        get(b"content-length"),
        get(b"x-request-id"),
        get(b"origin"),
    )


def authorize(api_keys: Any, head: Head) -> str | None:
    """The API-key name of the request (None when keys are off); 401 otherwise."""
    if api_keys is None:
        return None
    name: str | None = api_keys.lookup(head.api_key)
    if name is None:
        raise ApiError("unauthorized", headers=[(b"www-authenticate", API_KEY_CHALLENGE.encode())])
    return name


async def read_body(receive: Receive, head: Head, limit: int, timeout: float) -> bytes:
    """The request body: at most `limit` bytes (else 413), within `timeout` seconds (else
    408).

    The first read is not wrapped in a timer here (that would cost the hot route a timer
    per request): on a real server the connection protocol (`_protocol`) answers 408 for a
    body that does not arrive within the same timeout, first byte included.
    """
    if head.length is not None:
        declared = head.length
        if not declared.isdigit() or len(declared) > 15:
            raise ApiError("bad_content_length")
        if int(declared) > limit:
            raise ApiError("body_too_large", f"request body larger than {limit} bytes")
    message = await receive()
    if message["type"] != "http.request":
        raise ApiError("client_disconnected")
    body: bytes = message.get("body", b"")
    if len(body) > limit:
        raise ApiError("body_too_large", f"request body larger than {limit} bytes")
    if not message.get("more_body", False):
        return body
    chunks = [body]
    size = len(body)
    try:
        async with asyncio.timeout(timeout):
            while True:
                message = await receive()
                if message["type"] != "http.request":
                    raise ApiError("client_disconnected")
                chunk: bytes = message.get("body", b"")
                size += len(chunk)
                if size > limit:
                    raise ApiError("body_too_large", f"request body larger than {limit} bytes")
                chunks.append(chunk)
                if not message.get("more_body", False):
                    break
    except TimeoutError:
        raise ApiError(
            "request_timeout", f"request body not received within {timeout:g} seconds"
        ) from None
    return b"".join(chunks)


def load_json(body: bytes) -> Any:
    if not body:
        raise ApiError("empty_body")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        raise ApiError("bad_json") from None


def token_of(head: Head, body: bytes) -> str:
    """The token of a /v1/verify body: JSON {"token": ...} or the bare token as text."""
    media = head.media
    if media == b"application/json" or media.endswith(b"+json"):
        obj = load_json(body)
        if not isinstance(obj, dict):
            raise ApiError("bad_request", 'expected a JSON object {"token": "HC1:..."}')
        token = obj.get("token")
        if token is None:
            raise ApiError("bad_request", 'missing field "token"')
        if not isinstance(token, str):
            raise ApiError("bad_request", 'field "token" must be a string')
        return token
    if media == b"text/plain":
        # Base45 contains spaces: strip only one line ending.
        if body.endswith(b"\n"):
            body = body[:-2] if body.endswith(b"\r\n") else body[:-1]
        if not body:
            raise ApiError("empty_body")
        try:
            return body.decode("utf-8")
        except UnicodeDecodeError:
            raise ApiError("bad_encoding") from None
    raise ApiError(
        "unsupported_media_type",
        'send application/json {"token": ...} or the bare token as text/plain',
    )


def tokens_of(head: Head, body: bytes, max_batch: int) -> list[str]:
    """The tokens of a /v1/verify/batch body {"tokens": [...]}."""
    if not (head.media == b"application/json" or head.media.endswith(b"+json")):
        raise ApiError("unsupported_media_type", 'send application/json {"tokens": [...]}')
    # Every JSON value but the last in an array is followed by a comma: bounding the commas
    # bounds how many objects the parser can make (a body of `{},{},...` would otherwise
    # cost ~35 bytes of memory per input byte).
    if body.count(b",") > max_batch + 64:
        raise ApiError("too_many_tokens", f"more than {max_batch} tokens")
    obj = load_json(body)
    if not isinstance(obj, dict):
        raise ApiError("bad_request", 'expected a JSON object {"tokens": [...]}')
    tokens = obj.get("tokens")
    if tokens is None:
        raise ApiError("bad_request", 'missing field "tokens"')
    if not isinstance(tokens, list):
        raise ApiError("bad_request", 'field "tokens" must be an array of strings')
    if len(tokens) > max_batch:
        raise ApiError("too_many_tokens", f"too many tokens: {len(tokens)} > {max_batch}")
    for i, token in enumerate(tokens):
        if not isinstance(token, str):
            raise ApiError("bad_request", f"tokens[{i}] must be a string")
    return tokens


def reason_code(reason: Any) -> str | None:
    if reason is None:
        return None
    return str(getattr(reason, "value", reason))


def record(ctx: Any, scope: Scope, state: dict[str, Any], verdict: Any, client: str | None) -> None:
    """Verdict bookkeeping: the metrics and the access-log fields of one verdict, then the
    app's verdict hooks (`Context.verdict_hooks`)."""
    status, reason = verdict.status, reason_code(verdict.reason)
    ctx.metrics.count_verdict(status, reason, client)
    if client is not None:
        state["client"] = client
    state["verdict_status"] = status
    state["verdict_reason"] = reason
    for hook in ctx.verdict_hooks:
        hook(scope, client, reason)


def admit(ctx: Any, scope: Scope, client: str | None, token: str) -> None:
    """The app's admission hooks (`Context.admit_hooks`), run before a token is verified;
    each may raise ApiError (e.g. `too_many_requests` with a Retry-After header).

    Together with the verdict hooks this is where a per-client policy plugs in, such as
    `verifier.link_limits.NotFoundLimiter`: admit refuses a client whose bucket of
    `not_found` answers is empty (client = the API-key name, else `scope["client"]`), the
    verdict hook counts each `not_found`."""
    for hook in ctx.admit_hooks:
        hook(scope, client, token)


def verdict_json(verdict: Any, language: str) -> bytes:
    """The verdict as JSON; `detail` in Russian when the client prefers it."""
    if language != "ru":
        body: bytes = verdict.to_json()
        return body
    obj = verdict.to_dict()
    obj["detail"] = i18n.detail_ru(obj.get("reason"))
    return orjson.dumps(obj)


# -- request ids ---------------------------------------------------------------------------

_ID_PREFIX = os.urandom(5).hex()
_id_counter = 0
_ID_CHARS = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.:")


def request_id(sent: bytes | None) -> bytes:
    """The client's X-Request-ID when it is 1-128 safe characters, else a new one
    (a per-process random prefix and a counter: unique, cheap, and carrying no data)."""
    if sent is not None and 0 < len(sent) <= 128 and _ID_CHARS.issuperset(sent):
        return sent
    global _id_counter
    _id_counter += 1
    return b"%s-%x" % (_ID_PREFIX.encode(), _id_counter)
