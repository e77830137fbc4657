"""The app's own ASGI layers, outside Starlette's stack (plain classes, as Starlette's
middleware are): `Observe` (metrics, one access-log line, a JSON 500 on a crash) and
`FastVerify` (the hot POST /v1/verify route without routing or Request objects, which
`Observe` tries first), and `Service`, the Starlette app that puts them around its stack.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, cast

import orjson
from starlette.applications import Starlette
from starlette.routing import Route
from starlette.types import ASGIApp as StarletteASGIApp

from verifier.http.auth import ApiKeys
from verifier.http.jsonlog import APP_LOGGER
from verifier.http.metrics import Metrics

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

JSON = "application/json"
NO_STORE = {"cache-control": "no-store"}
SCOPE_KEY = "qrverify"  # per-request state that handlers leave for the access log

app_log = logging.getLogger(APP_LOGGER)


def reason_code(reason: Any) -> str | None:
    if reason is None:
        return None
    value = getattr(reason, "value", reason)
    return str(value)


class Observe:
    """Outermost app middleware: metrics, one access-log line, and a JSON 500 on a crash."""

    def __init__(self, app: ASGIApp, metrics: Metrics, sink: Any,
                 fast: FastVerify | None = None) -> None:
        self.app = app
        self.metrics = metrics
        self.sink = sink
        self.fast = fast

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        state: dict[str, Any] = {}
        scope[SCOPE_KEY] = state
        status = 0

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            fallback = receive if self.fast is None else await self.fast(scope, receive, send)
            if fallback is None:  # answered by the fast path
                status = 200
            else:
                await self.app(scope, fallback, send_wrapper)
        except Exception:  # noqa: BLE001 - the last line of defence: never leak, never die
            app_log.error("unhandled exception", exc_info=True,
                          extra={"fields": {"route": _route_label(scope)}})
            if status == 0:
                await send({"type": "http.response.start", "status": 500,
                            "headers": [(b"content-type", b"application/json"),
                                        (b"content-length", b"26")]})
                await send({"type": "http.response.body", "body": b'{"error":"internal error"}'})
            status = 500
        duration = time.perf_counter() - start
        route = _route_label(scope)
        method = scope.get("method", "")
        self.metrics.observe_request(route, method, status, duration)
        if self.sink is not None:
            fields: dict[str, Any] = {"method": method if len(method) <= 16 else "OTHER",
                                      "route": route, "status": status,
                                      "duration_ms": int(duration * 1e6) / 1000}
            fields.update(state)
            self.sink.write(fields)


class FastVerify:
    """The hottest route, POST /v1/verify, answered in plain ASGI: no Request or Response
    objects, no routing. It handles only the ordinary case: a JSON {"token": "..."} or a
    text/plain body arriving in one piece within the cap, and a valid API key when keys are
    configured. `Observe` calls it first; it returns None when it answered, else the
    `receive` for the Starlette app (replaying the body if it was read), so everything else
    (other routes, chunked or oversized bodies, other content types, malformed JSON, a
    missing or wrong key) and every error answer is made by the Starlette route. Verdict,
    headers, metrics and access-log fields are the same as the Starlette route's.
    """

    _START_HEADERS = [(b"cache-control", b"no-store")]
    _JSON_TYPE = (b"content-type", JSON.encode())

    def __init__(self, *, route: Route, verify: Callable[[str], Any],
                 count_verdict: Callable[..., None], api_keys: ApiKeys | None,
                 max_body: int) -> None:
        self.route = route
        self.verify = verify
        self.count_verdict = count_verdict
        self.api_keys = api_keys
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> Receive | None:
        if scope["path"] != "/v1/verify" or scope["method"] != "POST":
            return receive
        media = b""
        key: bytes | None = None
        for name, value in scope["headers"]:
            if name == b"content-type":
                media = value.split(b";", 1)[0].strip().lower()
            elif name == b"x-api-key":
                key = value
        client = None
        if self.api_keys is not None:
            client = self.api_keys.lookup(key)
            if client is None:
                return receive
        if media != b"application/json" and media != b"text/plain":
            return receive
        message = await receive()
        token = self._token(message, media)
        if token is None:
            return _replay(message, receive)
        scope["route"] = self.route  # the metrics and log label of the Starlette route
        verdict = self.verify(token)
        status, reason = verdict.status, reason_code(verdict.reason)
        self.count_verdict(status, reason, client)
        state = scope[SCOPE_KEY]
        if client is not None:
            state["client"] = client
        state["verdict_status"] = status
        state["verdict_reason"] = reason
        body = verdict.to_json()
        headers = [*self._START_HEADERS, (b"content-length", str(len(body)).encode()),
                   self._JSON_TYPE]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})
        return None

    def _token(self, message: Message, media: bytes) -> str | None:
        """The token of a complete, well-formed body; None sends the request the slow way."""
        if message["type"] != "http.request" or message.get("more_body", False):
            return None
        body: bytes = message.get("body", b"")
        if len(body) > self.max_body:
            return None
        if media == b"text/plain":
            try:
                text = body.decode("utf-8")
            except UnicodeDecodeError:
                return None
            if text.endswith("\r\n"):
                return text[:-2]
            return text[:-1] if text.endswith("\n") else text
        try:
            obj = orjson.loads(body)
        except orjson.JSONDecodeError:
            return None
        token = obj.get("token") if isinstance(obj, dict) else None
        return token if isinstance(token, str) else None


def _replay(message: Message, receive: Receive) -> Receive:
    """`receive` that hands back an already received message first."""
    pending = [message]

    async def replay() -> Message:
        if pending:
            return pending.pop()
        return await receive()

    return replay


def _route_label(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else "other"


class Service(Starlette):
    """The Starlette app with `Observe` (metrics, access log, a JSON 500 on a crash, and the
    `FastVerify` attempt) as the outermost layer around Starlette's own stack, so the
    hottest route skips the error middleware and routing it does not need."""

    outer: Callable[[Any], Any] | None = None

    def build_middleware_stack(self) -> StarletteASGIApp:
        stack = super().build_middleware_stack()
        return stack if self.outer is None else cast(StarletteASGIApp, self.outer(stack))
