"""POST /v1/verify is answered by `Observe` itself (the fast path) through the same
`_request` steps as the Starlette route: both must give byte-identical answers, errors too.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from starlette.testclient import TestClient

from verifier import Verifier
from verifier.http.app import Limits, create_app

JSON_CT = "application/json"


def _metric(text: str, name: str, **labels: str) -> float:
    """One sample of Prometheus text; 0 when absent."""
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


@pytest.fixture
def clients(verifier: Verifier, api_key_file: Any) -> Any:
    from verifier.http.auth import ApiKeys

    keys = ApiKeys.from_file(api_key_file)
    with (
        TestClient(
            create_app(verifier, Limits(max_body=2048), api_keys=keys, access_log=None)
        ) as fast,
        TestClient(
            create_app(
                verifier, Limits(max_body=2048), api_keys=keys, access_log=None, fast_path=False
            )
        ) as slow,
    ):
        yield fast, slow


KEY = {"x-api-key": "cafe-secret-0123456789"}
CASES = [
    ("valid-json", JSON_CT, None, KEY, 200, None),
    ("valid-text", "text/plain", None, KEY, 200, None),
    ("expired-json", JSON_CT, None, KEY, 200, None),
    ("unknown-ru", JSON_CT, None, {**KEY, "accept-language": "ru-RU,ru;q=0.9,en;q=0.5"}, 200, None),
    ("valid-json", JSON_CT, None, {}, 401, "unauthorized"),
    ("valid-json", JSON_CT, None, {"x-api-key": "nope"}, 401, "unauthorized"),
    ("raw", JSON_CT, b"{not json", KEY, 400, "bad_json"),
    ("raw", JSON_CT, b'{"token": 5}', KEY, 400, "bad_request"),
    ("raw", JSON_CT, b'["HC1:"]', KEY, 400, "bad_request"),
    ("raw", "text/plain", b"\xff\xfe", KEY, 400, "bad_encoding"),
    ("raw", "text/plain", b"", KEY, 400, "empty_body"),
    ("raw", "text/plain", b"\r\n", KEY, 400, "empty_body"),
    ("raw", JSON_CT, b"", KEY, 400, "empty_body"),
    ("raw", JSON_CT, b"x" * 2049, KEY, 413, "body_too_large"),
    ("raw", "application/xml", b"<x/>", KEY, 415, "unsupported_media_type"),
]


@pytest.mark.parametrize(("which", "ctype", "raw", "headers", "status", "code"), CASES)
def test_fast_path_and_router_answer_alike(
    clients: Any,
    tokens: Any,
    which: str,
    ctype: str,
    raw: bytes | None,
    headers: dict[str, str],
    status: int,
    code: str | None,
) -> None:
    fast, slow = clients
    if raw is None:
        name = {"valid": "valid", "expired": "expired", "unknown": "unknown_key"}[
            which.split("-")[0]
        ]
        token = getattr(tokens, name)
        raw = token.encode() if ctype == "text/plain" else json.dumps({"token": token}).encode()
    answers = [
        c.post(
            "/v1/verify",
            content=raw,
            headers={"content-type": ctype, "x-request-id": "rid-1", **headers},
        )
        for c in (fast, slow)
    ]
    for r in answers:
        assert r.status_code == status
        assert r.headers["content-type"] == "application/json"
        assert r.headers["x-request-id"] == "rid-1"
        if code is not None:
            assert r.json()["error"]["code"] == code
    assert answers[0].content == answers[1].content
    for header in ("content-length", "cache-control", "content-language", "www-authenticate"):
        assert answers[0].headers.get(header) == answers[1].headers.get(header)
    if status == 401:
        assert answers[0].headers["www-authenticate"].startswith("ApiKey ")


def test_fast_path_counts_metrics_under_the_route(clients: Any, tokens: Any) -> None:
    fast, _ = clients
    for ctype in (JSON_CT, "text/plain"):
        body = tokens.valid if ctype == "text/plain" else json.dumps({"token": tokens.valid})
        assert (
            fast.post("/v1/verify", content=body, headers={"content-type": ctype, **KEY}).json()[
                "status"
            ]
            == "valid"
        )
    text = fast.get("/metrics").text
    assert (
        _metric(
            text, "qrverify_http_requests_total", route="/v1/verify", method="POST", status="200"
        )
        == 2
    )
    assert _metric(text, "qrverify_client_verdicts_total", client="cafe-12", status="valid") == 2


@pytest.mark.parametrize("fast_path", [True, False])
def test_policy_hooks_see_verdicts_and_can_refuse(
    verifier: Verifier, tokens: Any, fast_path: bool
) -> None:
    """The hooks a per-client limit uses: see every verdict's reason, refuse with 429."""
    from verifier.http._request import ApiError

    seen: list[tuple[str | None, str | None]] = []

    def count(scope: Any, client: str | None, reason: str | None) -> None:
        seen.append((client, reason))

    def admit(scope: Any, client: str | None, token: str) -> None:
        assert scope["client"] is not None and token.startswith("HC1:")
        if sum(1 for _, r in seen if r == "unknown_key") >= 2:
            raise ApiError("too_many_requests", headers=[(b"retry-after", b"7")])

    app = create_app(verifier, access_log=None, fast_path=fast_path)
    app.state.ctx.verdict_hooks.append(count)
    app.state.ctx.admit_hooks.append(admit)
    with TestClient(app) as c:
        for _ in range(2):
            assert c.post("/v1/verify", json={"token": tokens.unknown_key}).status_code == 200
        r = c.post("/v1/verify", json={"token": tokens.valid})
        assert r.status_code == 429 and r.json()["error"]["code"] == "too_many_requests"
        assert r.headers["retry-after"] == "7"
        r = c.post("/v1/verify/batch", json={"tokens": [tokens.valid]})
        assert r.status_code == 429
    assert seen == [(None, "unknown_key"), (None, "unknown_key")]
