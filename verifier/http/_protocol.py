"""uvicorn's httptools connection protocol with the limits it lacks.

- **Request line and header caps** (414 / 431): uvicorn with httptools has none; it
  re-joins the URL on every read (quadratic) and keeps whatever headers arrive. Here the
  bytes of a request head are counted as they arrive and refused once over the caps,
  before they pile up.
- **Timeouts**: a request head must arrive within `header_timeout` of its first byte (or
  of the connection opening), a body within `body_timeout` of the end of its headers
  (first byte included); else 408 and close.
- **Bounded drain**: when the app answered before reading a body (a 413 for a declared
  length over the cap), the rest of the body is read and thrown away, so that a client
  that writes its whole body before reading gets the answer rather than a reset, but at
  most `DRAIN_BYTES` and within `body_timeout`; then the connection is closed.
- **SIGTERM drain**: an idle keep-alive connection is not cut at once; a request arriving
  within `drain_seconds` is answered with `Connection: close`; then it is closed.

The limits are class attributes, set once per process by `configure()` (workers are
separate processes started by uvicorn, which builds this protocol by its import path).
The hot path costs a few integer comparisons per read: the timers are armed only while a
head or a body is incomplete after a read (a request that arrives in one read arms none;
the head timer of a new connection is the exception: an idle connection is closed).
"""

from __future__ import annotations

import asyncio
from typing import Any, cast

import httptools
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from verifier.http._request import raw_error

DEFAULT_MAX_LINE = 8 * 1024
DEFAULT_MAX_HEADERS = 16 * 1024
DEFAULT_HEADER_TIMEOUT = 10.0
DRAIN_BYTES = 8 * 1024 * 1024


class _Refuse(Exception):
    """Raised in a parser callback to stop parsing: answer `code`, or just close (None)."""

    def __init__(self, code: str | None) -> None:
        super().__init__(code)
        self.code = code


class _HeadWithBody:
    """The transport as a request's answer sees it: the answer's first write (uvicorn writes
    the status line and headers, then the body, separately) is held and sent with the next
    one, so an answer is one system call and one TCP segment instead of two. Bytes keep
    their order; a held write goes out with the next write, on close, or at the end of the
    current event-loop step, whichever comes first (a streamed answer's head is not held
    back by a slow body)."""

    __slots__ = ("transport", "loop", "held", "hold_next")

    def __init__(self, transport: Any, loop: asyncio.AbstractEventLoop) -> None:
        self.transport = transport
        self.loop = loop
        self.held: bytes | None = None
        self.hold_next = False

    def write(self, data: bytes) -> None:
        held = self.held
        if held is not None:
            self.held = None
            self.transport.write(held + data)
        elif self.hold_next:
            self.hold_next = False
            self.held = data
            self.loop.call_soon(self.flush)
        else:
            self.transport.write(data)

    def flush(self) -> None:
        held = self.held
        if held is not None:
            self.held = None
            if not self.transport.is_closing():
                self.transport.write(held)

    def is_closing(self) -> bool:
        return bool(self.transport.is_closing())

    def close(self) -> None:
        self.flush()
        self.transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.transport, name)


class GuardedProtocol(HttpToolsProtocol):
    max_line = DEFAULT_MAX_LINE
    max_headers = DEFAULT_MAX_HEADERS
    header_timeout = DEFAULT_HEADER_TIMEOUT
    body_timeout = 15.0
    drain_seconds = 5.0

    @classmethod
    def configure(
        cls,
        *,
        max_line: int,
        max_headers: int,
        header_timeout: float,
        body_timeout: float,
        drain_seconds: float,
    ) -> None:
        cls.max_line = max_line
        cls.max_headers = max_headers
        cls.header_timeout = header_timeout
        cls.body_timeout = body_timeout
        cls.drain_seconds = drain_seconds

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        self._in_head = True  # waiting for, or reading, a request head
        self._head_bytes = 0
        self._url_len = 0
        self._header_len = 0
        self._drained = 0
        self._closing_soon = False
        self._timer: asyncio.TimerHandle | None = None
        self._timer_kind = ""
        self._out = _HeadWithBody(transport, self.loop)
        self._arm("head")

    # -- timers ---------------------------------------------------------------------

    def _arm(self, kind: str) -> None:
        if self._timer is not None:
            if self._timer_kind == kind:
                return
            self._timer.cancel()
        delay = self.header_timeout if kind == "head" else self.body_timeout
        self._timer_kind = kind
        self._timer = self.loop.call_later(delay, self._expired)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
            self._timer_kind = ""

    def _expired(self) -> None:
        self._timer = None
        if self.transport.is_closing():
            return
        if self._timer_kind == "head":
            if self._head_bytes == 0 and (self.cycle is None or self.cycle.response_complete):
                self.transport.close()  # an idle connection: nothing to answer
                return
            self._refuse(
                "request_timeout",
                f"request headers not received within {self.header_timeout:g} seconds",
            )
            return
        cycle = self.cycle
        if cycle is not None and not cycle.response_started:
            self._refuse(
                "request_timeout", f"request body not received within {self.body_timeout:g} seconds"
            )
        else:  # the answer is out; the body (or its drain) is late: stop waiting
            self.transport.close()

    def _refuse(self, code: str, message: str | None = None) -> None:
        """Answer `code` on the connection itself (unless an answer is already on its way),
        then close it."""
        self._disarm()
        cycle = self.cycle
        answering = cycle is not None and cycle.response_started and not cycle.response_complete
        if cycle is not None and not cycle.response_complete:
            cycle.disconnected = True  # the app's receive() returns http.disconnect
            cycle.message_event.set()
        if not answering and not (
            cycle is not None and cycle.response_complete and not self._in_head
        ):
            self.transport.write(raw_error(code, message))
        self.transport.close()

    # -- reading ----------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        keep_alive = self.timeout_keep_alive_task
        if keep_alive is not None:
            keep_alive.cancel()
            self.timeout_keep_alive_task = None
        if self._in_head:
            self._head_bytes += len(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserCallbackError as exc:
            refused = exc.__context__
            code = refused.code if isinstance(refused, _Refuse) else "bad_request"
            if code is None:
                self.transport.close()
            else:
                self._refuse(code, None if isinstance(refused, _Refuse) else "invalid HTTP request")
            return
        except httptools.HttpParserError:
            self._refuse("bad_request", "invalid HTTP request")
            return
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
            return
        if self._in_head:
            if self._head_bytes:
                # A head is incomplete after this read: refused now if it cannot fit the
                # caps, else it must be complete within header_timeout.
                if self.transport.is_closing():
                    return
                if self._head_bytes > self.max_line + self.max_headers + 4:
                    self._refuse("headers_too_large")
                elif self._timer is None:
                    self._arm("head")
        elif self.cycle is not None and self.cycle.more_body:
            if not self.transport.is_closing():
                self._arm("body")

    # The parser callbacks below do uvicorn's own work for url and header inline (its
    # `on_url` / `on_header`: join the URL, lower-case the name, note Expect:
    # 100-continue), a method call per header less.

    def on_url(self, url: bytes) -> None:
        size = self._url_len + len(url)
        if size > self.max_line:
            raise _Refuse("uri_too_long")
        self._url_len = size
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        size = self._header_len + len(name) + len(value) + 4
        if size > self.max_headers:
            raise _Refuse("headers_too_large")
        self._header_len = size
        name = name.lower()
        if name == b"expect" and value.lower() == b"100-continue":
            self.expect_100_continue = True
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._head_bytes = 0
        if self._timer is not None:
            self._disarm()
        before = self.cycle
        super().on_headers_complete()
        cycle = self.cycle
        if cycle is not None and cycle is not before:
            cycle.transport = cast(asyncio.Transport, self._out)  # head and body in one write
            self._out.hold_next = True
            if self._closing_soon:
                cycle.keep_alive = False

    def on_body(self, body: bytes) -> None:
        cycle = self.cycle
        if cycle is not None and cycle.response_complete:
            # Answered already (e.g. 413): read and drop the rest, up to a bound.
            self._drained += len(body)
            if self._drained > DRAIN_BYTES:
                raise _Refuse(None)
            return
        super().on_body(body)

    def on_message_complete(self) -> None:
        self._in_head = True
        self._head_bytes = 0
        self._url_len = 0
        self._header_len = 0
        self._drained = 0
        if self._timer is not None:
            self._disarm()
        super().on_message_complete()

    # -- shutdown ---------------------------------------------------------------------

    def shutdown(self) -> None:
        """SIGTERM: close idle connections after a short drain, busy ones after their
        answer (with `Connection: close`)."""
        self._closing_soon = True
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete:
            cycle.keep_alive = False
            return
        if self._head_bytes:  # a request head is arriving: it is answered, then closed
            return
        self._disarm()
        self.loop.call_later(self.drain_seconds, self._close_if_idle)

    def _close_if_idle(self) -> None:
        if self.transport.is_closing():
            return
        cycle = self.cycle
        if (cycle is None or cycle.response_complete) and self._in_head:
            self.transport.close()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self._closing_soon and not self.transport.is_closing():
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)
