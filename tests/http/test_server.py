"""`qrverify serve` as a real uvicorn process on a loopback socket."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from socket_support import free_port, read_response

from keys.qr import png_bytes

pytestmark = pytest.mark.slow


def _json_lines(text: str) -> list[dict[str, Any]]:
    out = []
    for line in text.splitlines():
        if line.strip():
            out.append(json.loads(line))  # every log line is one JSON object
    return out


def _exercise(url: str, tokens: Any, headers: dict[str, str] | None = None) -> None:
    h = headers or {}
    with httpx.Client(base_url=url, timeout=10, headers=h) as c:
        v = c.post("/v1/verify", json={"token": tokens.valid}).json()
        assert v["status"] == "valid" and v["holder"]["dob"] == tokens.dob
        r = c.post("/v1/verify", content=tokens.unknown_key, headers={"content-type": "text/plain"})
        assert r.json()["reason"] == "unknown_key"
        res = c.post("/v1/verify/batch", json={"tokens": [tokens.valid, "x", tokens.test]})
        assert [x["status"] for x in res.json()["results"]] == ["valid", "invalid", "valid"]
        img = c.post(
            "/v1/verify/image",
            content=png_bytes(tokens.test),
            headers={"content-type": "image/png"},
        )
        assert img.json()["certificate"]["type"] == "test"
        assert c.get("/readyz").json()["ready"] is True
        assert "qrverify_verdicts_total" in c.get("/metrics").text
        assert c.get("/").status_code == 200


def test_embedded_store_end_to_end(serve: Any, demo: Any, tokens: Any) -> None:
    server = serve(["--trust", str(demo.trust_path), "--log-level", "info"])
    _exercise(server.url, tokens)
    assert server.stop() == 0  # SIGTERM: graceful, exit 0
    logs = _json_lines(server.logs())
    access = [x for x in logs if x["logger"] == "qrverify.access"]
    assert {x["route"] for x in access} >= {"/v1/verify", "/v1/verify/batch", "/readyz"}
    assert any(x.get("verdict_reason") == "unknown_key" for x in access)
    assert any("Shutting down" in x["msg"] for x in logs)
    text = server.logs()
    for secret in (tokens.name, tokens.dob, tokens.ci, tokens.valid[4:40]):
        assert secret not in text


def test_env_config_and_api_keys(serve: Any, demo: Any, tokens: Any, api_key_file: Path) -> None:
    port = free_port()
    env = {
        "QRVERIFY_PORT": str(port),
        "QRVERIFY_HOST": "127.0.0.1",
        "QRVERIFY_TRUST": str(demo.trust_path),
        "QRVERIFY_API_KEYS": str(api_key_file),
        "QRVERIFY_LOG_LEVEL": "warning",
    }
    server = serve([], env=env, port=port)
    r = httpx.post(server.url + "/v1/verify", json={"token": tokens.valid})
    assert r.status_code == 401
    _exercise(server.url, tokens, {"x-api-key": "gate-secret-0123456789"})
    metrics = httpx.get(server.url + "/metrics").text
    assert 'qrverify_client_verdicts_total{client="gate-3",status="valid"} 4' in metrics
    assert server.stop() == 0
    assert "qrverify.access" not in server.logs()  # log level warning from the environment


def test_flag_wins_over_environment(serve: Any, demo: Any) -> None:
    port = free_port()
    server = serve(
        ["--trust", str(demo.trust_path), "--port", str(port)],
        env={"QRVERIFY_PORT": "1", "QRVERIFY_TRUST": "/nonexistent"},
        port=port,
    )
    assert httpx.get(server.url + "/readyz").status_code == 200
    assert server.stop() == 0


def test_two_workers(serve: Any, demo: Any, tokens: Any) -> None:
    server = serve(["--trust", str(demo.trust_path), "--workers", "2"])
    with httpx.Client(base_url=server.url, timeout=10) as c:
        for _ in range(20):  # fresh connections spread over the workers
            r = c.post("/v1/verify", json={"token": tokens.valid}, headers={"connection": "close"})
            assert r.json()["status"] == "valid"
    _exercise(server.url, tokens)
    assert server.stop() == 0
    started = {
        x["msg"]
        for x in _json_lines(server.logs())
        if x["msg"].startswith("Started server process")
    }
    assert len(started) == 2  # two worker processes, each with its own replica


def test_demo_prints_working_tokens(serve: Any) -> None:
    server = serve(["--demo"])
    out = server.stdout()
    assert "scanner page: http://127.0.0.1:" in out
    samples = [
        line.strip().split(": ", 1)
        for line in out.splitlines()
        if line.strip().startswith(
            ("vaccination:", "recovery:", "test:", "revoked:", "expired:", "not_found:")
        )
    ]
    tokens = [v for k, v in samples if v.startswith("HC1:")]
    links = {k: v for k, v in samples if v.startswith("https://")}
    assert len(tokens) == 3
    r = httpx.post(server.url + "/v1/verify/batch", json={"tokens": tokens}).json()
    assert [x["status"] for x in r["results"]] == ["valid"] * 3
    assert set(links) == {"vaccination", "recovery", "test", "revoked", "expired", "not_found"}
    r = httpx.post(server.url + "/v1/verify/batch", json={"tokens": list(links.values())}).json()
    got = {kind: (x["status"], x["reason"]) for kind, x in zip(links, r["results"], strict=True)}
    assert got == {
        "vaccination": ("valid", None),
        "recovery": ("valid", None),
        "test": ("valid", None),
        "revoked": ("invalid", "revoked"),
        "expired": ("invalid", "token_expired"),
        "not_found": ("invalid", "not_found"),
    }
    demo_dir = Path(out.split("trust file:", 1)[1].split()[0]).parent
    assert (demo_dir / "qr-vaccination.png").is_file()
    assert server.stop() == 0
    assert not demo_dir.exists()  # the temporary demo issuer is removed on exit


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["--trust", "/nonexistent/trust.json"], {}, "trust"),
        ([], {}, "no issuer keys"),
        (["--trust", "{trust}", "--rules", "/nonexistent/rules.json"], {}, "rules"),
        (["--trust", "{trust}", "--rules", "bogus"], {}, "bogus"),
        (["--trust", "{trust}"], {"QRVERIFY_PORT": "http"}, "QRVERIFY_PORT"),
        (["--trust", "{trust}", "--workers", "0"], {}, "--workers"),
        (["--trust", "{trust}", "--api-keys", "/nonexistent/keys.json"], {}, "API-key"),
        (["--demo", "--trust", "{trust}"], {}, "--demo"),
        (
            ["--trust", "{trust}", "--redis", "redis://127.0.0.1:1", "--revocations", "{trust}"],
            {},
            "exclude",
        ),
    ],
)
def test_configuration_errors_exit_2(
    demo: Any, args: list[str], env: dict[str, str], message: str
) -> None:
    args = [a.replace("{trust}", str(demo.trust_path)) for a in args]
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("QRVERIFY_")}
    full_env.update(env)
    p = subprocess.run(
        [sys.executable, "-m", "verifier", "serve", "--port", str(free_port()), *args]
        if "QRVERIFY_PORT" not in env
        else [sys.executable, "-m", "verifier", "serve", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=full_env,
    )
    assert p.returncode == 2, p.stderr
    assert p.stderr.startswith("qrverify serve: ") and message in p.stderr
    assert "Uvicorn running" not in p.stderr


def test_slow_and_broken_clients(serve: Any, demo: Any, tokens: Any) -> None:
    server = serve(["--trust", str(demo.trust_path), "--body-timeout", "0.5"])
    # a client that announces a body and stalls gets 408 once the body timeout passes
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
        s.sendall(
            b"POST /v1/verify HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b'Content-Length: 500\r\n\r\n{"token": "HC1:'
        )
        reply = read_response(s)
    assert reply.startswith(b"HTTP/1.1 408"), reply
    assert b"not received within" in reply
    # binary junk instead of HTTP: the connection is dropped or answered 400, never a crash
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
        s.sendall(os.urandom(2048))
        try:
            junk_reply = s.recv(4096)
        except ConnectionResetError:
            junk_reply = b""
    assert not junk_reply.startswith(b"HTTP/1.1 5")
    # oversized declared body: 413 before the body is sent
    r = httpx.post(
        server.url + "/v1/verify",
        content=b"x" * 70000,
        headers={"content-type": "application/json"},
    )
    assert r.status_code == 413
    # the service still serves
    assert (
        httpx.post(server.url + "/v1/verify", json={"token": tokens.valid}).json()["status"]
        == "valid"
    )
    assert server.stop() == 0


def test_sigterm_waits_for_request_in_flight(serve: Any, demo: Any, tokens: Any) -> None:
    server = serve(["--trust", str(demo.trust_path), "--graceful-timeout", "20"])
    body = json.dumps({"token": tokens.valid}).encode()
    with socket.create_connection(("127.0.0.1", server.port), timeout=20) as s:
        s.sendall(
            b"POST /v1/verify HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body[:10]
        )
        time.sleep(0.3)  # the request is now in flight
        server.proc.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        s.sendall(body[10:])
        reply = read_response(s)
    assert reply.startswith(b"HTTP/1.1 200"), reply[:200]
    assert b'"status":"valid"' in reply
    assert server.proc.wait(30) == 0
