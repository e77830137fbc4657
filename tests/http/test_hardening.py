"""Issue 10 (HTTP points) against a real `qrverify serve` socket: request line and header
caps (414/431), slow headers and bodies that never arrive (408), an oversized body from a
client that writes it all before reading (413, not a reset), image dimensions (4xx, never
500), and bounded transient memory per request."""

from __future__ import annotations

import json
import socket
import struct
import tracemalloc
import zlib
from typing import Any

import httpx
import pytest
from socket_support import read_response

from verifier.http import _multipart, _request, images

LIMITS = [
    "--max-request-line",
    "1024",
    "--max-header-bytes",
    "2048",
    "--header-timeout",
    "1",
    "--body-timeout",
    "1",
]


def _error(reply: bytes) -> tuple[int, str]:
    head, _, body = reply.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    assert b"content-type: application/json" in head.lower(), head
    return status, json.loads(body)["error"]["code"]


def _healthy(server: Any) -> None:
    assert httpx.get(server.url + "/healthz", timeout=10).status_code == 200


@pytest.fixture(scope="module")
def server(serve_module: Any, demo: Any) -> Any:
    """One server for the module: each test opens its own connections, and those that push
    the limits check afterwards that it still serves."""
    return serve_module(["--trust", str(demo.trust_path), *LIMITS])


def _send_until_refused(server: Any, parts: list[bytes]) -> bytes:
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as s:
        try:
            for part in parts:
                s.sendall(part)
        except (BrokenPipeError, ConnectionResetError):
            pass  # refused mid-way: the answer is already in our receive buffer
        return read_response(s)


def test_long_request_line_is_414(server: Any) -> None:
    # 256 KiB of path in 4 KiB writes: refused as soon as the line passes the cap
    reply = _send_until_refused(server, [b"GET /"] + [b"a" * 4096] * 64)
    assert _error(reply) == (414, "uri_too_long")
    _healthy(server)


def test_many_headers_are_431(server: Any) -> None:
    head = (
        b"GET /healthz HTTP/1.1\r\nHost: x\r\n"
        + b"".join(b"X-Pad-%d: %s\r\n" % (i, b"v" * 100) for i in range(40))
        + b"\r\n"
    )
    assert _error(_send_until_refused(server, [head])) == (431, "headers_too_large")
    _healthy(server)


def test_one_endless_header_is_431(server: Any) -> None:
    parts = [b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: "] + [b"v" * 4096] * 64
    assert _error(_send_until_refused(server, parts)) == (431, "headers_too_large")
    _healthy(server)


def test_headers_within_the_caps_are_served(server: Any) -> None:
    r = httpx.get(server.url + "/healthz", headers={"x-pad": "v" * 1500}, timeout=10)
    assert r.status_code == 200
    assert httpx.get(server.url + "/healthz?" + "q" * 900, timeout=10).status_code == 200


def test_slow_headers_are_408(server: Any) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as s:
        s.sendall(b"POST /v1/verify HTTP/1.1\r\nHost: x\r\n")  # and never the end of the head
        assert _error(read_response(s)) == (408, "request_timeout")


def test_idle_connection_is_closed(server: Any) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as s:
        assert s.recv(100) == b""  # closed after --header-timeout, nothing to answer


@pytest.mark.parametrize("route", ["/v1/verify", "/v1/verify/batch", "/v1/verify/image"])
def test_body_that_never_arrives_is_408(server: Any, route: str) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as s:
        s.sendall(
            b"POST " + route.encode() + b" HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n"
        )
        assert _error(read_response(s)) == (408, "request_timeout")
    _healthy(server)


def test_oversized_body_written_before_reading_gets_413(server: Any, tokens: Any) -> None:
    """A plain client (http.client) writes 2 MB, then reads: it must read the 413."""
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    conn.request(
        "POST",
        "/v1/verify",
        body=b"x" * (2 * 1024 * 1024),
        headers={"Content-Type": "application/json"},
    )
    r = conn.getresponse()
    assert r.status == 413
    assert json.loads(r.read())["error"]["code"] == "body_too_large"
    # the drained connection keeps serving
    body = json.dumps({"token": tokens.valid})
    conn.request("POST", "/v1/verify", body=body, headers={"Content-Type": "application/json"})
    r = conn.getresponse()
    assert r.status == 200 and json.loads(r.read())["status"] == "valid"
    conn.close()


def _png(width: int, height: int) -> bytes:
    """A PNG whose header says width x height (its pixel data is a token few bytes)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )


@pytest.mark.parametrize(
    ("width", "height", "status", "code"),
    [
        (70_000, 1, 413, "image_too_large"),
        (1, 20_000_000, 413, "image_too_large"),
        (3000, 3000, 413, "image_too_large"),  # 9 MP: over the PNG cap (full decode)
        (100_000, 100_000, 413, "image_too_large"),  # Pillow's own bomb check: still a 413
        (64, 64, 400, "bad_image"),  # header fine, pixel data short
    ],
)
def test_image_dimensions_are_checked_before_decoding(
    server: Any, width: int, height: int, status: int, code: str
) -> None:
    r = httpx.post(
        server.url + "/v1/verify/image",
        content=_png(width, height),
        headers={"content-type": "image/png"},
        timeout=30,
    )
    assert r.status_code == status, r.text
    assert r.json()["error"]["code"] == code


def test_header_dimensions_come_from_pillow() -> None:
    assert images.dimensions(_png(70_000, 3)) == (70_000, 3)
    with pytest.raises(images.ImageError):
        images.dimensions(b"\x89PNG\r\n\x1a\n" + b"\0" * 10)


# -- transient memory per request (deterministic: Python allocations, tracemalloc) -------


def _peak(fn: Any) -> int:
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_batch_of_empty_objects_is_refused_cheaply() -> None:
    body = b'{"tokens":[' + b",".join([b"{}"] * (4 * 1024 * 1024)) + b"]}"  # 12 MiB
    head = _request.scan([(b"content-type", b"application/json")])

    def parse() -> None:
        with pytest.raises(_request.ApiError) as info:
            _request.tokens_of(head, body, 1000)
        assert info.value.code == "too_many_tokens"

    assert _peak(parse) < 1024 * 1024


def test_multipart_of_tiny_parts_is_refused_cheaply() -> None:
    part = b'--b\r\nContent-Disposition: form-data; name="f"\r\n\r\nx\r\n'
    body = part * 300_000 + b"--b--\r\n"  # ~15 MB of one-byte fields

    def parse() -> None:
        with pytest.raises(_multipart.MultipartError, match="more than 16 parts"):
            _multipart.first_file(body, b"multipart/form-data; boundary=b")

    assert _peak(parse) < 1024 * 1024


def test_multipart_keeps_only_the_chosen_file() -> None:
    data = b"\x89PNG" + b"p" * 100_000
    body = (
        b'--b\r\nContent-Disposition: form-data; name="note"\r\n\r\n'
        + b"n" * 100_000
        + b'\r\n--b\r\nContent-Disposition: form-data; name="image"; filename="q.png"\r\n'
        b"Content-Type: image/png\r\n\r\n" + data + b"\r\n--b--\r\n"
    )
    assert _multipart.first_file(body, b"multipart/form-data; boundary=b") == data
    peak = _peak(lambda: _multipart.first_file(body, b"multipart/form-data; boundary=b"))
    assert peak < 3 * len(data)
