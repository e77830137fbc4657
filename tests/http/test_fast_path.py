"""POST /v1/verify has a plain-ASGI fast path in front of Starlette (middleware.FastVerify).

It must answer exactly as the Starlette route does, and hand everything unusual to it.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from starlette.testclient import TestClient

from verifier import Verifier
from verifier.http.app import create_app

FAST = "application/json"  # taken by the fast path
SLOW = "application/merge-patch+json"  # JSON too, but only the Starlette route takes it


def _metric(text: str, name: str, **labels: str) -> float:
    """One sample of Prometheus text; 0 when absent."""
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


@pytest.fixture
def client(verifier: Verifier) -> Any:
    with TestClient(create_app(verifier, access_log=None)) as c:
        yield c


@pytest.mark.parametrize("which", ["valid", "expired", "unknown_key"])
def test_fast_and_starlette_answers_are_identical(client: TestClient, tokens: Any,
                                                   which: str) -> None:
    body = json.dumps({"token": getattr(tokens, which)})
    fast = client.post("/v1/verify", content=body, headers={"content-type": FAST})
    slow = client.post("/v1/verify", content=body, headers={"content-type": SLOW})
    assert fast.status_code == slow.status_code == 200
    assert fast.content == slow.content
    for header in ("content-type", "content-length", "cache-control"):
        assert fast.headers[header] == slow.headers[header]
    assert fast.json()["status"] == ("valid" if which == "valid" else "invalid")


def test_fast_path_counts_metrics_under_the_route(client: TestClient, tokens: Any) -> None:
    for ctype in (FAST, "text/plain"):
        body = tokens.valid if ctype == "text/plain" else json.dumps({"token": tokens.valid})
        assert client.post("/v1/verify", content=body,
                           headers={"content-type": ctype}).json()["status"] == "valid"
    text = client.get("/metrics").text
    assert _metric(text, "qrverify_http_requests_total", route="/v1/verify", method="POST",
                   status="200") == 2


@pytest.mark.parametrize(
    ("body", "ctype", "status", "error"),
    [
        (b"{not json", FAST, 400, "request body is not valid JSON"),
        (b'{"token": 5}', FAST, 400, 'field "token" must be a string'),
        (b'["HC1:"]', FAST, 400, 'expected a JSON object {"token": "HC1:..."}'),
        (b"\xff\xfe", "text/plain", 400, "text/plain body is not valid UTF-8"),
        (b"x" * (64 * 1024 + 1), FAST, 413, None),
    ],
)
def test_what_the_fast_path_declines_gets_the_starlette_answer(
        client: TestClient, body: bytes, ctype: str, status: int, error: str | None) -> None:
    r = client.post("/v1/verify", content=body, headers={"content-type": ctype})
    assert r.status_code == status
    if error is not None:
        assert r.json() == {"error": error}
    else:
        assert "error" in r.json()


def test_wrong_api_key_is_refused_by_the_starlette_route(verifier: Verifier, tokens: Any,
                                                         api_key_file: Any) -> None:
    from verifier.http.auth import ApiKeys

    keys = ApiKeys.from_file(api_key_file)
    with TestClient(create_app(verifier, api_keys=keys, access_log=None)) as c:
        r = c.post("/v1/verify", json={"token": tokens.valid}, headers={"x-api-key": "nope"})
        assert r.status_code == 401
        assert r.json() == {"error": "missing or invalid X-API-Key header"}
