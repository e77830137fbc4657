"""`GuardedProtocol` arms its timers only while a head or a body is incomplete after a read:
a request that arrives whole costs no timer; a partial one is still bounded (the 408s
themselves are tested through a real socket in test_hardening.py). An answer's head and
body go out in one write, but a head is never held back past the current loop step."""

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


def _writes(app: Any, requests: list[bytes], steps: int = 5) -> list[bytes]:
    async def main() -> list[bytes]:
        loop = asyncio.get_running_loop()
        config = Config(app, lifespan="off", proxy_headers=False)
        config.load()
        proto = GuardedProtocol(config=config, server_state=ServerState(), app_state={}, _loop=loop)
        transport = _Transport()
        proto.connection_made(transport)  # type: ignore[arg-type]
        for data in requests:
            proto.data_received(data)
            for _ in range(steps):
                await asyncio.sleep(0)
        proto.connection_lost(None)
        return transport.out

    return asyncio.run(main())


def test_an_answer_is_one_write() -> None:
    out = _writes(_app, [HEAD + b"{}", HEAD + b"{}", HEAD + b"{}"])
    assert len(out) == 3
    for data in out:
        assert data.startswith(b"HTTP/1.1 200 OK\r\n") and data.endswith(b"\r\n\r\n{}")


def test_a_streamed_head_is_not_held_back() -> None:
    seen: list[int] = []

    async def streaming(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send(
            {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"4")]}
        )
        await asyncio.sleep(0)  # the body comes later, in another loop step
        await asyncio.sleep(0)
        seen.append(len(transport_writes))
        await send({"type": "http.response.body", "body": b"ab", "more_body": True})
        await send({"type": "http.response.body", "body": b"cd"})

    transport_writes: list[bytes] = []

    async def main() -> list[bytes]:
        loop = asyncio.get_running_loop()
        config = Config(streaming, lifespan="off", proxy_headers=False)
        config.load()
        proto = GuardedProtocol(config=config, server_state=ServerState(), app_state={}, _loop=loop)
        transport = _Transport()
        transport.out = transport_writes
        proto.connection_made(transport)  # type: ignore[arg-type]
        proto.data_received(HEAD + b"{}")
        for _ in range(10):
            await asyncio.sleep(0)
        proto.connection_lost(None)
        return transport.out

    out = asyncio.run(main())
    assert seen == [1]  # the head was out before the body was sent
    assert out[0].startswith(b"HTTP/1.1 200 OK\r\n") and out[1:] == [b"ab", b"cd"]


def test_pipelined_requests_are_answered_in_order() -> None:
    async def numbered(scope: Any, receive: Any, send: Any) -> None:
        body = (await receive())["body"]
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-length", b"%d" % len(body))],
            }
        )
        await send({"type": "http.response.body", "body": body})

    def req(body: bytes) -> bytes:
        return b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)

    out = b"".join(_writes(numbered, [req(b"first") + req(b"second!") + req(b"3")], steps=20))
    answers = out.split(b"HTTP/1.1 200 OK\r\n")[1:]
    assert [a.rsplit(b"\r\n\r\n", 1)[1] for a in answers] == [b"first", b"second!", b"3"]
