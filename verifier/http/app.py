"""The Starlette application: parse the request, hand the token(s) to the core, orjson out.

Routes (CONTRACT section 6):
    POST /v1/verify          {"token": "HC1:..."} or a text/plain bare token -> verdict
    POST /v1/verify/batch    {"tokens": [...]} (at most `max_batch`) -> {"results": [...]}
    POST /v1/verify/image    PNG/JPEG body, or multipart/form-data with a file -> verdict
    GET  /healthz            liveness
    GET  /readyz             200 when keys are loaded and the store is fresh, else 503
    GET  /metrics            Prometheus text
    GET  /                   the scanner page (and /static/<file>)

Every client error is a 4xx with `{"error": "..."}`; an unexpected exception becomes a bare
JSON 500 (`middleware.Observe`), logged with its type and code locations only.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from verifier.http import _multipart, images
from verifier.http.auth import ApiKeys
from verifier.http.jsonlog import APP_LOGGER, LoggingAccessSink
from verifier.http.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from verifier.http.metrics import Metrics
from verifier.http.middleware import (
    JSON,
    NO_STORE,
    SCOPE_KEY,
    FastVerify,
    Observe,
    Service,
    reason_code,
)

STATIC_DIR = Path(__file__).with_name("static")
_STATIC_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}
PAGE_HEADERS = {
    "content-security-policy": (
        "default-src 'self'; img-src 'self' blob: data:; media-src 'self' blob:; "
        "connect-src 'self'; script-src 'self'; style-src 'self'; object-src 'none'; "
        "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
    "permissions-policy": "camera=(self), microphone=(), geolocation=()",
}
app_log = logging.getLogger(APP_LOGGER)


@dataclass(frozen=True)
class Limits:
    max_body: int = 64 * 1024
    max_batch_body: int = 8 * 1024 * 1024
    max_batch: int = 1000
    max_image_bytes: int = 16 * 1024 * 1024
    max_image_pixels: int = images.DEFAULT_MAX_PIXELS
    body_timeout: float = 15.0
    image_concurrency: int = 2

    def __post_init__(self) -> None:
        for name in ("max_body", "max_batch_body", "max_batch", "max_image_bytes",
                     "max_image_pixels", "image_concurrency"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive integer, not {value!r}")
        if not self.body_timeout > 0:
            raise ValueError("body_timeout must be positive")


class HttpError(Exception):
    """A client error: answered as `{"error": message}` with `status`."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers


def json_response(status: int, body: bytes, headers: dict[str, str] | None = None) -> Response:
    return Response(body, status_code=status, media_type=JSON, headers=headers)


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    return json_response(status, orjson.dumps({"error": message}), headers)


def _media_type(headers: Any) -> tuple[str, str]:
    """(lower-case media type without parameters, the raw header)."""
    raw = headers.get("content-type") or ""
    return raw.split(";", 1)[0].strip().lower(), raw


async def read_body(request: Request, limit: int, timeout: float) -> bytes:
    """The request body, at most `limit` bytes (else 413), within `timeout` seconds (else 408)."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit() or len(declared) > 15:
            raise HttpError(400, "malformed Content-Length header")
        if int(declared) > limit:
            raise HttpError(413, f"request body larger than {limit} bytes")
    receive = request.receive
    message = await receive()
    if message["type"] != "http.request":
        raise HttpError(400, "client disconnected")
    body: bytes = message.get("body", b"")
    if not message.get("more_body", False):
        if len(body) > limit:
            raise HttpError(413, f"request body larger than {limit} bytes")
        return body
    chunks = [body]
    size = len(body)
    try:
        async with asyncio.timeout(timeout):
            while True:
                message = await receive()
                if message["type"] != "http.request":
                    raise HttpError(400, "client disconnected")
                chunk = message.get("body", b"")
                size += len(chunk)
                if size > limit:
                    raise HttpError(413, f"request body larger than {limit} bytes")
                chunks.append(chunk)
                if not message.get("more_body", False):
                    break
    except TimeoutError:
        raise HttpError(408, f"request body not received within {timeout:g} seconds") from None
    return b"".join(chunks)


def _load_json(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        raise HttpError(400, "request body is not valid JSON") from None


def parse_single(request: Request, body: bytes) -> str:
    """The token of a /v1/verify request."""
    media, _ = _media_type(request.headers)
    if media == JSON or media.endswith("+json"):
        obj = _load_json(body)
        if not isinstance(obj, dict):
            raise HttpError(400, 'expected a JSON object {"token": "HC1:..."}')
        token = obj.get("token")
        if token is None:
            raise HttpError(400, 'missing field "token"')
        if not isinstance(token, str):
            raise HttpError(400, 'field "token" must be a string')
        return token
    if media == "text/plain":
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            raise HttpError(400, "text/plain body is not valid UTF-8") from None
        # Base45 contains spaces: strip only one line ending.
        if text.endswith("\r\n"):
            return text[:-2]
        return text[:-1] if text.endswith("\n") else text
    raise HttpError(415, "send application/json {\"token\": ...} or the bare token as text/plain")


def parse_batch(request: Request, body: bytes, max_batch: int) -> list[str]:
    media, _ = _media_type(request.headers)
    if not (media == JSON or media.endswith("+json")):
        raise HttpError(415, 'send application/json {"tokens": [...]}')
    obj = _load_json(body)
    if not isinstance(obj, dict):
        raise HttpError(400, 'expected a JSON object {"tokens": [...]}')
    tokens = obj.get("tokens")
    if tokens is None:
        raise HttpError(400, 'missing field "tokens"')
    if not isinstance(tokens, list):
        raise HttpError(400, 'field "tokens" must be an array of strings')
    if len(tokens) > max_batch:
        raise HttpError(413, f"too many tokens: {len(tokens)} > {max_batch}")
    for i, token in enumerate(tokens):
        if not isinstance(token, str):
            raise HttpError(400, f"tokens[{i}] must be a string")
    return tokens


def image_bytes(request: Request, body: bytes) -> bytes:
    """The raw image of a /v1/verify/image request (PNG/JPEG body or a multipart file)."""
    media, raw = _media_type(request.headers)
    if media == "multipart/form-data":
        try:
            data = _multipart.first_file(body, raw)
        except _multipart.MultipartError as exc:
            raise HttpError(400, str(exc)) from None
    elif media in ("image/png", "image/jpeg", "image/jpg", "application/octet-stream"):
        data = body
    else:
        raise HttpError(415, "send a PNG or JPEG image (image/png, image/jpeg or a form upload)")
    if not data:
        raise HttpError(400, "empty image")
    if images.sniff(data) is None:
        raise HttpError(415, "the upload is not a PNG or JPEG image")
    return data


def create_app(
    verifier: Any,
    *,
    api_keys: ApiKeys | None = None,
    max_body: int = Limits.max_body,
    max_batch_body: int = Limits.max_batch_body,
    max_batch: int = Limits.max_batch,
    max_image_bytes: int = Limits.max_image_bytes,
    max_image_pixels: int = Limits.max_image_pixels,
    body_timeout: float = Limits.body_timeout,
    image_concurrency: int = Limits.image_concurrency,
    metrics: Metrics | None = None,
    close_store: bool = True,
    access_log: Any = "logging",
    static_dir: Path = STATIC_DIR,
) -> Starlette:
    """Build the service around a `verifier.Verifier` (or anything with verify/verify_many).

    `api_keys`: when given, every /v1/verify* call needs a valid X-API-Key header.
    `close_store`: close the verifier's store when the app shuts down.
    `access_log`: "logging" (lines through the `qrverify.access` logger), None (off), or a
    sink with write(fields) and flush() such as `jsonlog.AccessLog` (what `serve` uses).
    """
    sink = LoggingAccessSink() if access_log == "logging" else access_log
    limits = Limits(max_body, max_batch_body, max_batch, max_image_bytes, max_image_pixels,
                    body_timeout, image_concurrency)
    metrics = metrics if metrics is not None else Metrics()
    static = _load_static(static_dir)
    verify = verifier.verify
    verify_many = verifier.verify_many
    count_verdict = metrics.count_verdict
    image_slots: list[Any] = []  # the CapacityLimiter, created inside the event loop

    def authorize(request: Request) -> str | None:
        if api_keys is None:
            return None
        name = api_keys.lookup(request.headers.get("x-api-key"))
        if name is None:
            raise HttpError(401, "missing or invalid X-API-Key header")
        request.scope[SCOPE_KEY]["client"] = name
        return name

    def handler(fn: Callable[[Request], Awaitable[Response]]) -> Callable[[Request],
                                                                           Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            try:
                return await fn(request)
            except HttpError as exc:
                request.scope[SCOPE_KEY]["error"] = exc.message
                return error_response(exc.status, exc.message, exc.headers)

        endpoint.__name__ = fn.__name__
        return endpoint

    def one_verdict(request: Request, token: str, client: str | None) -> Response:
        verdict = verify(token)
        status, reason = verdict.status, reason_code(verdict.reason)
        count_verdict(status, reason, client)
        state = request.scope[SCOPE_KEY]
        state["verdict_status"] = status
        state["verdict_reason"] = reason
        return Response(verdict.to_json(), media_type=JSON, headers=NO_STORE)

    @handler
    async def verify_one(request: Request) -> Response:
        client = authorize(request)
        body = await read_body(request, limits.max_body, limits.body_timeout)
        return one_verdict(request, parse_single(request, body), client)

    @handler
    async def verify_batch(request: Request) -> Response:
        client = authorize(request)
        body = await read_body(request, limits.max_batch_body, limits.body_timeout)
        tokens = parse_batch(request, body, limits.max_batch)
        verdicts = verify_many(tokens)
        valid = 0
        for v in verdicts:
            count_verdict(v.status, reason_code(v.reason), client)
            if v.status == "valid":
                valid += 1
        state = request.scope[SCOPE_KEY]
        state["tokens"] = len(verdicts)
        state["valid"] = valid
        payload = b'{"results":[' + b",".join([v.to_json() for v in verdicts]) + b"]}"
        return Response(payload, media_type=JSON, headers=NO_STORE)

    @handler
    async def verify_image(request: Request) -> Response:
        import anyio.to_thread

        client = authorize(request)
        body = await read_body(request, limits.max_image_bytes, limits.body_timeout)
        data = image_bytes(request, body)
        if not image_slots:
            image_slots.append(anyio.CapacityLimiter(limits.image_concurrency))
        try:
            text = await anyio.to_thread.run_sync(
                lambda: images.decode_qr(data, max_pixels=limits.max_image_pixels),
                limiter=image_slots[0])
        except images.ImageTooLarge as exc:
            metrics.count_image("too_large")
            raise HttpError(413, str(exc)) from None
        except images.ImageError as exc:
            metrics.count_image("bad_image")
            raise HttpError(400, str(exc)) from None
        if text is None:
            metrics.count_image("no_qr")
            raise HttpError(400, "no QR code found in the image")
        metrics.count_image("qr_found")
        return one_verdict(request, text, client)

    def store_status() -> dict[str, Any]:
        status_fn = getattr(verifier, "status", None) or verifier.store.status
        status: dict[str, Any] = status_fn()
        return status

    async def healthz(request: Request) -> Response:
        return json_response(200, b'{"status":"ok"}', NO_STORE)

    async def readyz(request: Request) -> Response:
        try:
            status = store_status()
        except Exception:  # noqa: BLE001 - a broken store is "not ready", not a 500
            app_log.warning("store status failed", exc_info=True)
            return json_response(503, orjson.dumps(
                {"ready": False, "reason": "store status unavailable"}), NO_STORE)
        counts = status.get("counts") or {}
        ready = bool(status.get("ready"))
        reason = status.get("reason")
        if ready and not counts.get("keys"):
            ready, reason = False, "no issuer keys loaded"
        if not ready and not reason:
            reason = "store not ready"
        body = {"ready": ready, "reason": None if ready else reason,
                "age_seconds": status.get("age_seconds"), "counts": counts,
                "source": status.get("source")}
        return json_response(200 if ready else 503, orjson.dumps(body, default=str), NO_STORE)

    async def metrics_endpoint(request: Request) -> Response:
        try:
            status: dict[str, Any] | None = store_status()
        except Exception:  # noqa: BLE001
            status = None
        return Response(metrics.render(status), media_type=METRICS_CONTENT_TYPE,
                        headers=NO_STORE)

    async def page(request: Request) -> Response:
        return _static_response(static, "index.html")

    async def static_file(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in static:
            return error_response(404, "not found")
        return _static_response(static, name)

    async def http_exception(request: Request, exc: Exception) -> Response:
        if not isinstance(exc, HTTPException):  # pragma: no cover - registered for it only
            return error_response(500, "internal error")
        messages = {404: "not found", 405: "method not allowed"}
        message = messages.get(exc.status_code, "bad request")
        return error_response(exc.status_code, message, dict(exc.headers or {}))

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # Keys, sets and modules loaded at start live as long as the process: move them out
        # of the collector's view so garbage collections stay proportional to request garbage.
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            if sink is not None:
                sink.flush()
            if close_store:
                with contextlib.suppress(Exception):
                    verifier.store.close()

    routes = [
        Route("/v1/verify", verify_one, methods=["POST"]),
        Route("/v1/verify/batch", verify_batch, methods=["POST"]),
        Route("/v1/verify/image", verify_image, methods=["POST"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics_endpoint, methods=["GET"]),
        Route("/", page, methods=["GET"]),
        Route("/static/{name}", static_file, methods=["GET"]),
    ]
    app = Service(routes=routes, exception_handlers={HTTPException: http_exception},
                   lifespan=lifespan)
    fast = FastVerify(route=routes[0], verify=verify, count_verdict=count_verdict,
                      api_keys=api_keys, max_body=limits.max_body)
    app.outer = lambda inner: Observe(inner, metrics=metrics, sink=sink, fast=fast)
    app.state.metrics = metrics
    app.state.verifier = verifier
    app.state.limits = limits
    return app


def _load_static(directory: Path) -> dict[str, tuple[bytes, str]]:
    files: dict[str, tuple[bytes, str]] = {}
    if directory.is_dir():
        for path in directory.iterdir():
            media = _STATIC_TYPES.get(path.suffix)
            if media and path.is_file():
                files[path.name] = (path.read_bytes(), media)
    return files


def _static_response(static: dict[str, tuple[bytes, str]], name: str) -> Response:
    entry = static.get(name)
    if entry is None:
        return error_response(404, "scanner page not installed")
    content, media = entry
    headers = dict(PAGE_HEADERS)
    headers["cache-control"] = "no-cache"
    return Response(content, media_type=media, headers=headers)
