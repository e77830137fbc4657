"""The app's outermost ASGI layer, `Observe`, and `Service`, the Starlette app it wraps.

`Observe` runs for every HTTP request: it scans the headers once (`_request.scan`), picks
the request id, answers CORS preflights, answers POST /v1/verify itself (the hot route:
no routing, no Request or Response objects, but the same `_request` functions as the
Starlette route), adds the request id and CORS headers to every other answer, counts the
request in the metrics, writes one access-log line, and turns a crash into a JSON 500.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from typing import Any, cast

from starlette.applications import Starlette
from starlette.types import ASGIApp as StarletteASGIApp

from verifier import link_limits
from verifier.http import _request
from verifier.http._request import (
    NO_STORE,
    SCOPE_KEY,
    ApiError,
    Message,
    Receive,
    Scope,
    Send,
)
from verifier.http.jsonlog import APP_LOGGER

ASGIApp = Callable[[Scope, Receive, Send], Any]
HEAD_KEY = "qrverify.head"  # the scanned `_request.Head` of the request

app_log = logging.getLogger(APP_LOGGER)

_CONTENT_RU = (b"content-language", b"ru")


class Cors:
    """Cross-origin access for browser apps on other origins (`--cors-origin`)."""

    ALLOW_HEADERS = b"content-type, x-api-key, x-request-id, accept-language"
    EXPOSE_HEADERS = b"x-request-id, content-language, www-authenticate"

    def __init__(self, origins: Iterable[str]) -> None:
        self.origins = frozenset(o.rstrip("/").encode("ascii") for o in origins)
        self.any = b"*" in self.origins

    def allowed(self, origin: bytes) -> bool:
        return self.any or origin in self.origins

    def headers(self, origin: bytes) -> list[tuple[bytes, bytes]]:
        return [
            (b"access-control-allow-origin", b"*" if self.any else origin),
            (b"vary", b"origin"),
            (b"access-control-expose-headers", self.EXPOSE_HEADERS),
        ]

    def preflight(self, origin: bytes) -> list[tuple[bytes, bytes]]:
        return [
            *self.headers(origin),
            (b"access-control-allow-methods", b"GET, POST, OPTIONS"),
            (b"access-control-allow-headers", self.ALLOW_HEADERS),
            (b"access-control-max-age", b"600"),
        ]


class Observe:
    """Outermost app middleware (see the module docstring)."""

    def __init__(self, app: ASGIApp, ctx: Any, sink: Any, fast_path: bool = True) -> None:
        self.app = app
        self.ctx = ctx
        self.sink = sink
        self.fast_path = fast_path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        state: dict[str, Any] = {}
        scope[SCOPE_KEY] = state
        head = _request.scan(scope["headers"])
        scope[HEAD_KEY] = head
        rid = _request.request_id(head.request_id)
        state["request_id"] = rid.decode("ascii")
        extra = [(b"x-request-id", rid)]
        ctx = self.ctx
        cors = ctx.cors
        method = scope["method"]
        if head.origin is not None and cors is not None and cors.allowed(head.origin):
            if method == "OPTIONS":
                scope["route"] = _PREFLIGHT
                await _request.send_json(send, 204, b"", [*extra, *cors.preflight(head.origin)])
                self._done(scope, state, start, 204)
                return
            extra += cors.headers(head.origin)
        status = 0
        try:
            if self.fast_path and method == "POST" and scope["path"] == "/v1/verify":
                scope["route"] = ctx.verify_route
                status = await _verify_fast(ctx, scope, receive, send, head, state, extra)
            else:

                async def send_with_headers(message: Message) -> None:
                    nonlocal status
                    if message["type"] == "http.response.start":
                        status = message["status"]
                        message["headers"] = [*message.get("headers", ()), *extra]
                    await send(message)

                await self.app(scope, receive, send_with_headers)
        except Exception:  # noqa: BLE001 - the last line of defence: never leak, never die
            app_log.error(
                "unhandled exception",
                exc_info=True,
                extra={"fields": {"route": _route_label(scope)}},
            )
            if status == 0:
                await _request.send_error(send, state, ApiError("internal_error"), extra)
            status = 500
        self._done(scope, state, start, status)

    def _done(self, scope: Scope, state: dict[str, Any], start: float, status: int) -> None:
        duration = time.perf_counter() - start
        route = _route_label(scope)
        method = scope["method"]
        self.ctx.metrics.observe_request(route, method, status, duration)
        if self.sink is not None:
            fields: dict[str, Any] = {
                "method": method if len(method) <= 16 else "OTHER",
                "route": route,
                "status": status,
                "duration_ms": int(duration * 1e6) / 1000,
            }
            fields.update(state)
            self.sink.write(fields)


async def _verify_fast(
    ctx: Any,
    scope: Scope,
    receive: Receive,
    send: Send,
    head: _request.Head,
    state: dict[str, Any],
    extra: list[tuple[bytes, bytes]],
) -> int:
    """POST /v1/verify in plain ASGI, through the same `_request` steps as the route."""
    try:
        body = await verify_single(ctx, scope, receive, head, state)
    except ApiError as exc:
        await _request.send_error(send, state, exc, extra)
        return exc.status
    headers = [NO_STORE, *extra]
    if head.language == "ru":
        headers.append(_CONTENT_RU)
    await _request.send_json(send, 200, body, headers)
    return 200


async def verify_single(
    ctx: Any, scope: Scope, receive: Receive, head: _request.Head, state: dict[str, Any]
) -> bytes:
    """The verdict JSON of one /v1/verify request (ApiError for a bad request)."""
    client = _request.authorize(ctx.api_keys, head)
    limits = ctx.limits
    body = await _request.read_body(receive, head, limits.max_body, limits.body_timeout)
    token = _request.token_of(head, body)
    if ctx.admit_hooks:
        _request.admit(ctx, scope, client, token)
    limiter = ctx.link_limiter
    coalescer = ctx.coalescer
    if limiter is None:
        verdict = ctx.verify(token) if coalescer is None else await coalescer.verify(token)
    elif coalescer is not None and not token[:8].lower().startswith(_LINK_SCHEMES):
        verdict = await coalescer.verify(token)  # the limiter counts register links only
    else:  # per-client limit on not_found answers (register links)
        # gate, verify and count with no await between: concurrent requests of one
        # client cannot all pass the gate before the first not_found is counted
        limited = link_limits.who(client, scope.get("client"))
        link_limits.gate(limiter, (token,), limited)
        verdict = ctx.verify(token)
        link_limits.note(limiter, (verdict,), limited)
    _request.record(ctx, scope, state, verdict, client)
    return _request.verdict_json(verdict, head.language)


_LINK_SCHEMES = ("http://", "https://")  # as verifier.link_limits tells a link


class _Label:
    def __init__(self, path: str) -> None:
        self.path = path


_PREFLIGHT = _Label("preflight")


def _route_label(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else "other"


class Service(Starlette):
    """The Starlette app with `Observe` as the outermost layer around Starlette's own stack,
    so the hottest route skips the error middleware and routing it does not need."""

    outer: Callable[[Any], Any] | None = None

    def build_middleware_stack(self) -> StarletteASGIApp:
        stack = super().build_middleware_stack()
        return stack if self.outer is None else cast(StarletteASGIApp, self.outer(stack))
