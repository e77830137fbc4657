"""`GuardedProtocol` arms its timers only while a head or a body is incomplete after a read:
a request that arrives whole costs no timer; a partial one is still bounded (the 408s
themselves are tested through a real socket in test_hardening.py)."""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.config import Config
from uvicorn.server import ServerState

from verifier.http._protocol import GuardedProtocol


class _Transport:
    def __init__(self) -> None:
        self.out: list[bytes] = []
        self.closing = False

    def write(self, data: bytes) -> None:
        self.out.append(data)

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"sockname": ("127.0.0.1", 8000), "peername": ("127.0.0.1", 5555)}.get(name, default)

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


async def _app(scope: Any, receive: Any, send: Any) -> None:
    await receive()
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]}
    )
    await send({"type": "http.response.body", "body": b"{}"})


HEAD = b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n"


class _CountingLoop:
    """The running loop, counting the protocol's own timers (uvicorn's keep-alive timer,
    armed after each answer, is not one of them)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.armed = 0

    def call_later(self, delay: float, callback: Any, *args: Any) -> Any:
        if getattr(callback, "__name__", "") == "_expired":
            self.armed += 1
        return self.loop.call_later(delay, callback, *args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.loop, name)


def _run(steps: Any) -> list[Any]:
    """After each read: (timer kind armed now or None, timers armed so far)."""

    async def main() -> list[Any]:
        loop = _CountingLoop(asyncio.get_running_loop())
        config = Config(_app, lifespan="off", proxy_headers=False)
        config.load()
        proto = GuardedProtocol(config=config, server_state=ServerState(), app_state={}, _loop=loop)  # type: ignore[arg-type]
        transport = _Transport()
        proto.connection_made(transport)  # type: ignore[arg-type]
        seen: list[Any] = [(proto._timer_kind, loop.armed)]  # a new connection: idle timer
        for data in steps:
            proto.data_received(data)
            seen.append((proto._timer_kind if proto._timer is not None else None, loop.armed))
            for _ in range(5):
                await asyncio.sleep(0)
        seen.append(b"".join(transport.out).split(b"\r\n", 1)[0])
        proto.connection_lost(None)
        return seen

    return asyncio.run(main())


def test_whole_requests_arm_no_timer() -> None:
    assert _run([HEAD + b"{}", HEAD + b"{}", HEAD + b"{}"]) == [
        ("head", 1),
        (None, 1),
        (None, 1),
        (None, 1),
        b"HTTP/1.1 200 OK",
    ]


def test_partial_head_and_partial_body_arm_their_timers() -> None:
    assert _run([HEAD[:20], HEAD[20:], b"{", b"}", HEAD[:20]]) == [
        ("head", 1),
        ("head", 1),
        ("body", 2),
        ("body", 2),
        (None, 2),
        ("head", 3),
        b"HTTP/1.1 200 OK",
    ]
