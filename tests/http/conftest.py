"""Fixtures for the HTTP tests: a real demo issuer, real tokens, the real Verifier."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from socket_support import free_port

from keys.demo import make_demo
from keys.issuer import Issuer
from keys.samples import sample_dcc
from keys.token import issue_token
from verifier import Verifier

# Distinctive personal data: the privacy tests look for these strings in logs and metrics.
HOLDER_NAME = "SIDOROVA MARIYA"
HOLDER_DOB = "1971-07-19"


@dataclass(frozen=True)
class Tokens:
    valid: str  # vaccination, HOLDER_NAME / HOLDER_DOB
    test: str  # a valid test certificate of the same holder
    unknown_key: str  # signed by an issuer that is not in the trust file
    expired: str  # exp in the past
    ci: str  # certificate id of `valid`
    demo: dict[str, str]
    name: str = HOLDER_NAME
    dob: str = HOLDER_DOB


@pytest.fixture(scope="session")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return make_demo(tmp_path_factory.mktemp("demo"))


@pytest.fixture(scope="session")
def tokens(demo: Any) -> Tokens:
    now = int(time.time())
    dcc = sample_dcc("vaccination", at=now, name=HOLDER_NAME, dob=HOLDER_DOB)
    valid = issue_token(demo.issuer, dcc, iat=now, exp=now + 86400 * 30)
    test = issue_token(
        demo.issuer,
        sample_dcc("test", at=now, name=HOLDER_NAME, dob=HOLDER_DOB),
        iat=now,
        exp=now + 86400,
    )
    stranger = Issuer.generate("RU", "ES256")
    unknown = issue_token(stranger, sample_dcc("vaccination", at=now), iat=now, exp=now + 86400)
    # inside the demo issuer's validity (from a day ago), expired an hour ago
    old = issue_token(
        demo.issuer, sample_dcc("vaccination", at=now - 72000), iat=now - 72000, exp=now - 3600
    )
    return Tokens(valid, test, unknown, old, dcc["v"][0]["ci"], dict(demo.tokens))


@pytest.fixture
def verifier(demo: Any) -> Verifier:
    return Verifier.from_files(trust=demo.trust_path)


@pytest.fixture(scope="session")
def api_key_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("keys") / "api-keys.json"
    path.write_text(
        json.dumps(
            {
                "keys": [
                    {"name": "cafe-12", "key": "cafe-secret-0123456789"},
                    {
                        "name": "gate-3",
                        "sha256": __import__("hashlib")
                        .sha256(b"gate-secret-0123456789")
                        .hexdigest(),
                    },
                ]
            }
        )
    )
    return path


# -- a real `qrverify serve` process ----------------------------------------------------


@dataclass
class Server:
    proc: subprocess.Popen[bytes]
    port: int
    stderr_path: Path
    stdout_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def logs(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def stdout(self) -> str:
        return self.stdout_path.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
            raise


def start_server(
    args: list[str],
    tmp: Path,
    env: dict[str, str] | None = None,
    port: int | None = None,
    wait: bool = True,
) -> Server:
    """Start `python -m verifier serve ARGS` on a free loopback port; wait for /healthz."""
    port = port or free_port()
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("QRVERIFY_")}
    full_env["QRVERIFY_REQUIRE_INSTALLED"] = os.environ.get("QRVERIFY_REQUIRE_INSTALLED", "")
    full_env.update(env or {})
    cmd = [sys.executable, "-m", "verifier", "serve", *args]
    if "QRVERIFY_PORT" not in (env or {}):
        cmd += ["--host", "127.0.0.1", "--port", str(port)]
    tmp.mkdir(parents=True, exist_ok=True)
    out, err = tmp / f"serve-{port}.out", tmp / f"serve-{port}.err"
    with open(out, "wb") as fo, open(err, "wb") as fe:
        # a session of its own: teardown can end the workers with their supervisor
        proc = subprocess.Popen(
            cmd, stdout=fo, stderr=fe, env=full_env, cwd=tmp, start_new_session=True
        )
    server = Server(proc, port, err, out)
    if wait:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"serve exited {proc.returncode}: {server.logs()[-2000:]}")
            try:
                if httpx.get(server.url + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                server.stop(signal.SIGKILL)
                raise AssertionError(f"serve did not start: {server.logs()[-2000:]}")
            time.sleep(0.1)
    return server


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Any]:
    """Factory fixture: serve(args, env=...) -> Server; every server is stopped afterwards."""
    yield from _servers(tmp_path)


@pytest.fixture(scope="module")
def serve_module(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The same factory for servers shared by the tests of one module."""
    yield from _servers(tmp_path_factory.mktemp("serve"))


def _servers(tmp_path: Path) -> Iterator[Any]:
    started: list[Server] = []

    def factory(args: list[str], env: dict[str, str] | None = None, **kw: Any) -> Server:
        server = start_server(args, tmp_path, env, **kw)
        started.append(server)
        return server

    yield factory
    for server in started:
        if server.proc.poll() is None:
            server.stop(signal.SIGKILL)
        try:  # workers a killed supervisor left behind (same process group)
            os.killpg(server.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
