"""Issue 11, workers: `/metrics` summed across `serve --workers 2`, the snapshot version of
each worker on `/readyz` and `/metrics`, and SIGTERM draining keep-alive connections."""

from __future__ import annotations

import json
import signal
import socket
import time
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from socket_support import read_response

from verifier.http.metrics import Metrics
from verifier.http.workers import SharedMetrics

pytestmark = pytest.mark.slow


def _families(text: str) -> dict[str, Any]:
    return {f.name: f for f in text_string_to_metric_families(text)}


def _verify_count(text: str) -> float:
    fams = _families(text)
    return sum(
        s.value
        for s in fams["qrverify_http_requests"].samples
        if s.labels.get("route") == "/v1/verify" and s.name.endswith("_total")
    )


def test_metrics_summed_and_versions_per_worker(serve: Any, demo: Any, tokens: Any) -> None:
    server = serve(["--trust", str(demo.trust_path), "--workers", "2"])
    n = 40
    for _ in range(n):  # a new connection each: the kernel spreads them over the workers
        with httpx.Client(timeout=10) as c:
            assert (
                c.post(server.url + "/v1/verify", json={"token": tokens.valid}).json()["status"]
                == "valid"
            )
    seen_workers: set[int] = set()
    deadline = time.monotonic() + 60
    while True:  # workers publish once a second; poll, do not time
        with httpx.Client(timeout=10) as c:
            text = c.get(server.url + "/metrics").text
            ready = c.get(server.url + "/readyz").json()
        seen_workers.add(ready["worker"])
        fams = _families(text)
        workers = fams.get("qrverify_worker_snapshot_info")
        if (
            _verify_count(text) == n
            and workers is not None
            and len(workers.samples) == 2
            and len(seen_workers) == 2
        ):
            break
        assert time.monotonic() < deadline, (text[-3000:], ready, seen_workers)
        time.sleep(0.2)
    versions = {s.labels["version"] for s in workers.samples}
    assert len(versions) == 1 and versions != {"none"}
    assert {int(s.labels["worker"]) for s in workers.samples} == seen_workers
    assert [s.value for s in fams["qrverify_workers"].samples] == [2]
    assert {w["worker"] for w in ready["workers"]} == seen_workers
    assert {w["version"] for w in ready["workers"]} == versions
    assert ready["version"] in versions
    verdicts = {
        (s.labels["status"], s.labels["reason"]): s.value for s in fams["qrverify_verdicts"].samples
    }
    assert verdicts[("valid", "none")] == n
    assert server.stop() == 0


def _request(body: bytes) -> bytes:
    return (
        b"POST /v1/verify HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
    )


@pytest.mark.parametrize("workers", ["1", "2"])
def test_sigterm_drains_keep_alive_connections(
    serve: Any, demo: Any, tokens: Any, workers: str
) -> None:
    server = serve(
        ["--trust", str(demo.trust_path), "--workers", workers, "--graceful-timeout", "20"]
    )
    body = json.dumps({"token": tokens.valid}).encode()
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as s:
        s.sendall(_request(body))
        first = read_response(s)
        assert first.startswith(b"HTTP/1.1 200") and b"connection: close" not in first.lower()
        server.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 30
        while "Shutting down" not in server.logs():  # the worker is draining now
            assert time.monotonic() < deadline, server.logs()[-2000:]
            time.sleep(0.05)
        # the idle keep-alive connection was not cut: its next request is answered, and
        # the answer says the connection closes
        s.sendall(_request(body))
        second = read_response(s)
        assert second.startswith(b"HTTP/1.1 200"), second[:300]
        assert b"connection: close" in second.lower()
        assert b'"status":"valid"' in second
        assert s.recv(100) == b""
    assert server.proc.wait(30) == 0


def test_shared_metrics_sum_files(tmp_path: Any) -> None:
    a, b = SharedMetrics(tmp_path), Metrics()
    b.observe_request("/v1/verify", "POST", 200, 0.001)
    b.count_verdict("valid", None, "k")
    a.observe_request("/v1/verify", "POST", 200, 0.002)
    state = {"pid": 999_999_999, "time": 0, "worker": {"version": "v1"}, "counters": b.state()}
    (tmp_path / "999999999.json").write_bytes(json.dumps(state).encode())
    (tmp_path / "junk.json").write_bytes(b"{not json")
    text = a.render({"ready": True, "version": "v1", "source": "files"}).decode()
    fams = _families(text)
    assert _verify_count(text) == 2
    hist = [
        s
        for s in fams["qrverify_http_request_duration_seconds"].samples
        if s.name.endswith("_count")
    ]
    assert hist[0].value == 2
    # a dead worker's counts stay, but it is not listed as serving
    assert len(fams["qrverify_worker_snapshot_info"].samples) == 1
