"""The Starlette application: parse the request, hand the token(s) to the core, orjson out.

Routes (CONTRACT section 6; `openapi.py` describes them for clients):
    POST /v1/verify          {"token": "HC1:..."} or a text/plain bare token -> verdict
    POST /v1/verify/batch    {"tokens": [...]} (at most `max_batch`) -> {"results": [...]}
    POST /v1/verify/image    PNG/JPEG body, or multipart/form-data with a file -> verdict
    GET  /healthz            liveness (and the version)
    GET  /readyz             200 when keys are loaded and the store is fresh, else 503
    GET  /metrics            Prometheus text
    GET  /openapi.json       the API description; GET /docs a page that shows it
    GET  /                   the scanner page (and /static/<file>)

Endpoints are module-level functions that read everything from `request.app.state.ctx`
(a `Context`); `create_app` only assembles. Every error is `{"error": {"code", "message"}}`
(`_request.ERRORS`); an unexpected exception becomes a JSON 500 (`middleware.Observe`),
logged with its type and code locations only.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from verifier import __version__, link_limits
from verifier.http import _multipart, _request, images, openapi
from verifier.http._coalesce import Coalescer
from verifier.http._request import SCOPE_KEY, ApiError, Head
from verifier.http.auth import ApiKeys
from verifier.http.jsonlog import APP_LOGGER, LoggingAccessSink
from verifier.http.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from verifier.http.metrics import Metrics
from verifier.http.middleware import HEAD_KEY, Cors, Observe, Service, verify_single
from verifier.http.workers import SharedMetrics

STATIC_DIR = Path(__file__).with_name("static")
_STATIC_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".ico": "image/x-icon",
    ".png": "image/png",
    ".json": "application/json",
    ".webmanifest": "application/manifest+json",
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
JSON = "application/json"
NO_STORE = {"cache-control": "no-store"}
app_log = logging.getLogger(APP_LOGGER)


@dataclass(frozen=True)
class Limits:
    """Per-request caps of the app (the connection-level ones live in `_protocol`)."""

    max_body: int = 64 * 1024
    max_batch_body: int = 8 * 1024 * 1024
    max_batch: int = 1000
    max_image_bytes: int = 8 * 1024 * 1024
    max_image_pixels: int = images.DEFAULT_MAX_PIXELS
    body_timeout: float = 15.0
    image_concurrency: int = 2

    def __post_init__(self) -> None:
        for name in (
            "max_body",
            "max_batch_body",
            "max_batch",
            "max_image_bytes",
            "max_image_pixels",
            "image_concurrency",
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive integer, not {value!r}")
        if not self.body_timeout > 0:
            raise ValueError("body_timeout must be positive")


@dataclass
class Context:
    """Everything the endpoints need; `app.state.ctx`."""

    verifier: Any
    limits: Limits
    metrics: Metrics
    api_keys: ApiKeys | None = None
    cors: Cors | None = None
    verify_route: Any = None
    static: dict[str, tuple[bytes, str]] = field(default_factory=dict)
    image_slots: list[Any] = field(default_factory=list)  # made inside the event loop
    link_limiter: Any = None  # verifier.link_limits.NotFoundLimiter: 429 for guessers
    version: str = __version__
    # Hooks for per-client policies (`_request.admit` / `_request.record`):
    # admit(scope, client, token) may raise ApiError before a token is verified;
    # verdict(scope, client, reason_code) sees every verdict.
    admit_hooks: list[Callable[[Any, str | None, str], None]] = field(default_factory=list)
    verdict_hooks: list[Callable[[Any, str | None, str | None], None]] = field(default_factory=list)
    # Verify the signed tokens of concurrent /v1/verify requests together (`_coalesce`).
    coalesce: bool = True

    def __post_init__(self) -> None:
        self.verify = self.verifier.verify
        self.verify_many = self.verifier.verify_many
        self.coalescer = Coalescer(self.verify, self.verify_many) if self.coalesce else None

    def store_status(self) -> dict[str, Any]:
        """The store's status, with the snapshot `version` this process serves."""
        status_fn = getattr(self.verifier, "status", None) or self.verifier.store.status
        status: dict[str, Any] = status_fn()
        if status.get("version") is None:
            replica = getattr(getattr(self.verifier, "store", None), "replica", None)
            version = getattr(replica, "version", None)
            if version is not None:
                status = {**status, "version": str(version)}
        return status


# -- answers --------------------------------------------------------------------------


def json_response(status: int, body: bytes, headers: dict[str, str] | None = None) -> Response:
    return Response(body, status_code=status, media_type=JSON, headers=headers)


def error_response(exc: ApiError) -> Response:
    """The one error answer of the Starlette routes (same body as the plain-ASGI paths)."""
    headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in exc.headers}
    return json_response(exc.status, _request.error_body(exc.code, exc.message), headers)


def _verdict_response(body: bytes, head: Head) -> Response:
    headers = dict(NO_STORE)
    if head.language == "ru":
        headers["content-language"] = "ru"
    return Response(body, media_type=JSON, headers=headers)


def _parts(request: Request) -> tuple[Context, Head, dict[str, Any]]:
    ctx: Context = request.app.state.ctx
    head = request.scope.get(HEAD_KEY)
    if head is None:
        head = request.scope[HEAD_KEY] = _request.scan(request.scope["headers"])
    state = request.scope.setdefault(SCOPE_KEY, {})
    return ctx, head, state


Endpoint = Callable[[Request], Awaitable[Response]]


def _answers_errors(fn: Endpoint) -> Endpoint:
    async def endpoint(request: Request) -> Response:
        try:
            return await fn(request)
        except ApiError as exc:
            request.scope.setdefault(SCOPE_KEY, {})["error"] = exc.code
            return error_response(exc)

    endpoint.__name__ = fn.__name__
    endpoint.__doc__ = fn.__doc__
    return endpoint


# -- endpoints ------------------------------------------------------------------------


@_answers_errors
async def verify_one(request: Request) -> Response:
    """Verify one token (the fast path in `Observe` answers this route the same way)."""
    ctx, head, state = _parts(request)
    return _verdict_response(
        await verify_single(ctx, request.scope, request.receive, head, state), head
    )


@_answers_errors
async def verify_batch(request: Request) -> Response:
    ctx, head, state = _parts(request)
    client = _request.authorize(ctx.api_keys, head)
    limits = ctx.limits
    body = await _request.read_body(
        request.receive, head, limits.max_batch_body, limits.body_timeout
    )
    tokens = _request.tokens_of(head, body, limits.max_batch)
    del body
    if ctx.admit_hooks:
        for token in tokens:
            _request.admit(ctx, request.scope, client, token)
    limited = link_limits.who(client, request.scope.get("client"))
    link_limits.gate(ctx.link_limiter, tokens, limited)
    verdicts = ctx.verify_many(tokens)
    link_limits.note(ctx.link_limiter, verdicts, limited)
    valid = 0
    metrics = ctx.metrics
    for v in verdicts:
        reason = _request.reason_code(v.reason)
        metrics.count_verdict(v.status, reason, client)
        for hook in ctx.verdict_hooks:
            hook(request.scope, client, reason)
        if v.status == "valid":
            valid += 1
    if client is not None:
        state["client"] = client
    state["tokens"] = len(verdicts)
    state["valid"] = valid
    payload = (
        b'{"results":['
        + b",".join([_request.verdict_json(v, head.language) for v in verdicts])
        + b"]}"
    )
    return _verdict_response(payload, head)


_IMAGE_TYPES = (b"image/png", b"image/jpeg", b"image/jpg", b"application/octet-stream")


def image_bytes(head: Head, body: bytes) -> bytes:
    """The raw image of a /v1/verify/image request (PNG/JPEG body or a multipart file)."""
    if head.media == b"multipart/form-data":
        try:
            data = _multipart.first_file(body, head.content_type)
        except _multipart.MultipartError as exc:
            raise ApiError("bad_multipart", str(exc)) from None
    elif head.media in _IMAGE_TYPES:
        data = body
    else:
        raise ApiError(
            "unsupported_media_type",
            "send a PNG or JPEG image (image/png, image/jpeg or a form upload)",
        )
    if not data:
        raise ApiError("empty_body", "empty image")
    if images.sniff(data) is None:
        raise ApiError("unsupported_media_type", "the upload is not a PNG or JPEG image")
    return data


@_answers_errors
async def verify_image(request: Request) -> Response:
    import anyio
    import anyio.to_thread

    ctx, head, state = _parts(request)
    client = _request.authorize(ctx.api_keys, head)
    limits = ctx.limits
    body = await _request.read_body(
        request.receive, head, limits.max_image_bytes, limits.body_timeout
    )
    data = image_bytes(head, body)
    del body
    if not ctx.image_slots:
        ctx.image_slots.append(anyio.CapacityLimiter(limits.image_concurrency))
    try:
        text = await anyio.to_thread.run_sync(
            lambda: images.decode_qr(data, max_pixels=limits.max_image_pixels),
            limiter=ctx.image_slots[0],
        )
    except images.ImageTooLarge as exc:
        ctx.metrics.count_image("too_large")
        raise ApiError("image_too_large", str(exc)) from None
    except images.ImageError as exc:
        ctx.metrics.count_image("bad_image")
        raise ApiError("bad_image", str(exc)) from None
    if text is None:
        ctx.metrics.count_image("no_qr")
        raise ApiError("no_qr_code")
    ctx.metrics.count_image("qr_found")
    if ctx.admit_hooks:
        _request.admit(ctx, request.scope, client, text)
    limited = link_limits.who(client, request.scope.get("client"))
    link_limits.gate(ctx.link_limiter, (text,), limited)
    verdict = ctx.verify(text)
    link_limits.note(ctx.link_limiter, (verdict,), limited)
    _request.record(ctx, request.scope, state, verdict, client)
    return _verdict_response(_request.verdict_json(verdict, head.language), head)


async def healthz(request: Request) -> Response:
    ctx: Context = request.app.state.ctx
    return json_response(200, orjson.dumps({"status": "ok", "version": ctx.version}), NO_STORE)


def _store_version(status: dict[str, Any]) -> str | None:
    version = status.get("version")
    return None if version is None else str(version)


async def readyz(request: Request) -> Response:
    ctx: Context = request.app.state.ctx
    try:
        status = ctx.store_status()
    except Exception:  # noqa: BLE001 - a broken store is "not ready", not a 500
        app_log.warning("store status failed", exc_info=True)
        return json_response(
            503, orjson.dumps({"ready": False, "reason": "store status unavailable"}), NO_STORE
        )
    counts = status.get("counts") or {}
    ready = bool(status.get("ready"))
    reason = status.get("reason")
    if ready and not counts.get("keys"):
        ready, reason = False, "no issuer keys loaded"
    if not ready and not reason:
        reason = "store not ready"
    body: dict[str, Any] = {
        "ready": ready,
        "reason": None if ready else reason,
        "age_seconds": status.get("age_seconds"),
        "counts": counts,
        "source": status.get("source"),
        "version": _store_version(status),
        "worker": os.getpid(),
    }
    workers = ctx.metrics.workers(status)
    if workers is not None:
        body["workers"] = workers
    return json_response(200 if ready else 503, orjson.dumps(body, default=str), NO_STORE)


async def metrics_endpoint(request: Request) -> Response:
    ctx: Context = request.app.state.ctx
    try:
        status: dict[str, Any] | None = ctx.store_status()
    except Exception:  # noqa: BLE001
        status = None
    return Response(ctx.metrics.render(status), media_type=METRICS_CONTENT_TYPE, headers=NO_STORE)


def api_document(ctx: Context) -> dict[str, Any]:
    """The OpenAPI document of this app (its routes, limits, version, key policy)."""
    return openapi.document(
        [(path, method) for path, _, method in ROUTES],
        ctx.limits,
        ctx.version,
        ctx.api_keys is not None,
    )


async def openapi_json(request: Request) -> Response:
    ctx: Context = request.app.state.ctx
    return json_response(200, orjson.dumps(api_document(ctx), option=orjson.OPT_INDENT_2))


async def docs_page(request: Request) -> Response:
    ctx: Context = request.app.state.ctx
    headers = dict(PAGE_HEADERS)
    headers["cache-control"] = "no-cache"
    return Response(
        openapi.docs_html(api_document(ctx)), media_type="text/html; charset=utf-8", headers=headers
    )


async def page(request: Request) -> Response:
    ctx: Context = request.app.state.ctx
    return _static_response(ctx.static, "index.html")


async def static_file(request: Request) -> Response:
    ctx: Context = request.app.state.ctx
    name = request.path_params["name"]
    if name not in ctx.static:
        return error_response(ApiError("not_found"))
    return _static_response(ctx.static, name)


async def favicon(request: Request) -> Response:
    ctx: Context = request.app.state.ctx
    for name in ("favicon.ico", "favicon.svg"):
        if name in ctx.static:
            return _static_response(ctx.static, name)
    return Response(status_code=204, headers={"cache-control": "max-age=86400"})


async def _http_exception(request: Request, exc: Exception) -> Response:
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    code = {404: "not_found", 405: "method_not_allowed"}.get(status, "bad_request")
    if status == 500:
        code = "internal_error"
    error = ApiError(code)
    request.scope.setdefault(SCOPE_KEY, {})["error"] = code
    response = error_response(error)
    if isinstance(exc, HTTPException) and exc.headers:
        response.headers.update(exc.headers)
    return response


ROUTES: tuple[tuple[str, Endpoint, str], ...] = (
    ("/v1/verify", verify_one, "POST"),
    ("/v1/verify/batch", verify_batch, "POST"),
    ("/v1/verify/image", verify_image, "POST"),
    ("/healthz", healthz, "GET"),
    ("/readyz", readyz, "GET"),
    ("/metrics", metrics_endpoint, "GET"),
    ("/openapi.json", openapi_json, "GET"),
    ("/docs", docs_page, "GET"),
    ("/", page, "GET"),
    ("/favicon.ico", favicon, "GET"),
    ("/static/{name}", static_file, "GET"),
)


def create_app(
    verifier: Any,
    limits: Limits | None = None,
    *,
    api_keys: ApiKeys | None = None,
    cors_origins: Iterable[str] = (),
    metrics: Metrics | None = None,
    close_store: bool = True,
    access_log: Any = "logging",
    static_dir: Path = STATIC_DIR,
    fast_path: bool = True,
    link_limiter: Any = None,
    coalesce: bool = True,
) -> Starlette:
    """Assemble the service around a `verifier.Verifier` (anything with verify/verify_many).

    `api_keys`: when given, every /v1/verify* call needs a valid X-API-Key header.
    `cors_origins`: origins (or "*") whose browser apps may call the API.
    `close_store`: close the verifier's store when the app shuts down.
    `access_log`: "logging" (lines through the `qrverify.access` logger), None (off), or a
    sink with write(fields) and flush() such as `jsonlog.AccessLog` (what `serve` uses).
    `fast_path`: answer POST /v1/verify in `Observe` (False: through the router, the same
    steps; the tests compare both).
    `link_limiter`: a verifier.link_limits.NotFoundLimiter: a client that has had too many
    `not_found` answers gets 429 with Retry-After for its register links.
    `coalesce`: verify the signed tokens of concurrent /v1/verify requests in one
    `verify_many` call (`_coalesce`; False: each on its own, the tests compare both).
    """
    sink = LoggingAccessSink() if access_log == "logging" else access_log
    origins = tuple(cors_origins)
    ctx = Context(
        verifier=verifier,
        limits=limits or Limits(),
        metrics=metrics if metrics is not None else Metrics(),
        api_keys=api_keys,
        cors=Cors(origins) if origins else None,
        static=_load_static(static_dir),
        link_limiter=link_limiter,
        coalesce=coalesce,
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # Keys, sets and modules loaded at start live as long as the process: move them out
        # of the collector's view so garbage collections stay proportional to request garbage.
        gc.collect()
        gc.freeze()
        ctx.metrics.start()
        try:
            yield
        finally:
            ctx.metrics.stop()
            if sink is not None:
                sink.flush()
            if close_store:
                with contextlib.suppress(Exception):
                    verifier.store.close()

    if isinstance(ctx.metrics, SharedMetrics):
        ctx.metrics.status_fn = ctx.store_status
    routes = [Route(path, endpoint, methods=[method]) for path, endpoint, method in ROUTES]
    ctx.verify_route = routes[0]
    app = Service(
        routes=routes, exception_handlers={HTTPException: _http_exception}, lifespan=lifespan
    )
    app.outer = lambda inner: Observe(inner, ctx=ctx, sink=sink, fast_path=fast_path)
    app.state.ctx = ctx
    app.state.metrics = ctx.metrics
    app.state.verifier = verifier
    app.state.limits = ctx.limits
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
        return error_response(ApiError("not_found", "scanner page not installed"))
    content, media = entry
    headers = dict(PAGE_HEADERS)
    headers["cache-control"] = "no-cache"
    return Response(content, media_type=media, headers=headers)
