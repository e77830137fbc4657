"""The access log through a real `qrverify serve` socket: every request is one line, none
lost at shutdown (SIGTERM right after the last answer, while lines are still queued)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.slow

N = 240


@pytest.mark.parametrize("workers", [1, 2])
def test_every_request_is_one_access_line_after_sigterm(
    serve: Any, demo: Any, tokens: Any, workers: int
) -> None:
    server = serve(
        ["--trust", str(demo.trust_path), "--log-level", "info", "--workers", str(workers)]
    )
    sent: dict[str, tuple[str, int]] = {}
    headers = {"connection": "close"} if workers > 1 else {}  # spread over the workers
    with httpx.Client(base_url=server.url, timeout=10) as c:
        for i in range(N):
            rid = f"acc-{i}"
            kind = i % 4
            h = {**headers, "x-request-id": rid}
            if kind == 0:
                r = c.post("/v1/verify", json={"token": tokens.valid}, headers=h)
                sent[rid] = ("/v1/verify", 200)
            elif kind == 1:
                r = c.post("/v1/verify", json={"token": tokens.unknown_key}, headers=h)
                sent[rid] = ("/v1/verify", 200)
            elif kind == 2:
                r = c.post("/v1/verify/batch", json={"tokens": [tokens.valid, "x"]}, headers=h)
                sent[rid] = ("/v1/verify/batch", 200)
            else:
                r = c.post(
                    "/v1/verify", content=b"{", headers={**h, "content-type": "application/json"}
                )
                sent[rid] = ("/v1/verify", 400)
            assert r.status_code == sent[rid][1]
    assert server.stop() == 0  # SIGTERM at once: the queued lines are written at shutdown
    text = server.logs()
    lines = [json.loads(x) for x in text.splitlines() if x.strip()]
    access = [
        x
        for x in lines
        if x["logger"] == "qrverify.access" and x.get("request_id", "").startswith("acc-")
    ]
    assert len(access) == N
    assert {x["request_id"]: (x["route"], x["status"]) for x in access} == sent
    for x in access:
        assert list(x)[:4] == ["ts", "level", "logger", "msg"]
        assert x["method"] == "POST" and isinstance(x["duration_ms"], float)
    valid = [x for x in access if x["route"] == "/v1/verify" and x["status"] == 200]
    assert {x["verdict_reason"] for x in valid} == {None, "unknown_key"}
    assert not any("dropped" in x for x in lines)
    for secret in (
        tokens.name,
        tokens.dob,
        tokens.ci,
        tokens.valid[4:40],
        tokens.unknown_key[4:40],
    ):
        assert secret not in text
