"""The Starlette app through TestClient: every route, bad input, API keys, metrics, logs."""

from __future__ import annotations

import io
import json
import logging
import re
import struct
import zlib
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from starlette.testclient import TestClient

from keys.qr import png_bytes
from keys.registry import TrustRegistry
from verifier import Reason, Verifier
from verifier.http import ApiKeyFileError, ApiKeys, create_app
from verifier.http.app import Limits
from verifier.http.jsonlog import JsonFormatter
from verifier.store import MemoryStore

Tokens = Any  # conftest.Tokens: .valid .test .unknown_key .expired .ci .name .dob
JSON_CT = {"content-type": "application/json"}


@pytest.fixture
def client(verifier: Verifier) -> Any:
    with TestClient(create_app(verifier)) as c:
        yield c


def verifier_version() -> str:
    from verifier import __version__

    return __version__


def metric(text: str, name: str, **labels: Any) -> float:
    """The value of one sample in Prometheus text (0 when absent)."""
    for line in text.splitlines():
        if line.startswith("#") or not line.startswith(name + "{"):
            continue
        got = dict(re.findall(r'(\w+)="([^"]*)"', line[len(name) : line.rindex("}")]))
        if got == {k: str(v) for k, v in labels.items()}:
            return float(line.rsplit(" ", 1)[1])
    return 0.0


# -- /v1/verify ----------------------------------------------------------------------


def test_verify_json_valid(client: TestClient, tokens: Tokens) -> None:
    r = client.post("/v1/verify", json={"token": tokens.valid})
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json"
    assert r.headers["cache-control"] == "no-store"
    v = r.json()
    assert v["status"] == "valid" and v["reason"] is None
    assert v["holder"] == {"name": tokens.name, "name_latin": "SIDOROVA<MARIYA", "dob": tokens.dob}
    assert v["certificate"]["type"] == "vaccination" and v["certificate"]["issuer"] == "RU"


@pytest.mark.parametrize("suffix", ["", "\n", "\r\n"])
def test_verify_text_plain(client: TestClient, tokens: Tokens, suffix: str) -> None:
    r = client.post(
        "/v1/verify",
        content=(tokens.valid + suffix).encode(),
        headers={"content-type": "text/plain; charset=utf-8"},
    )
    assert r.status_code == 200 and r.json()["status"] == "valid"


@pytest.mark.parametrize(
    ("which", "reason"), [("unknown_key", "unknown_key"), ("expired", "token_expired")]
)
def test_verify_invalid_tokens_are_200(
    client: TestClient, tokens: Tokens, which: str, reason: str
) -> None:
    r = client.post("/v1/verify", json={"token": getattr(tokens, which)})
    assert r.status_code == 200
    v = r.json()
    assert v["status"] == "invalid" and v["reason"] == reason
    if reason == "unknown_key":
        assert "holder" not in v  # never show unverified data


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("", "bad_prefix"),
        ("hello", "bad_prefix"),
        ("HC1:~~~", "bad_base45"),
        ("HC1:" + "A" * 9000, None),
    ],
)
def test_verify_junk_tokens(client: TestClient, body: str, reason: str | None) -> None:
    r = client.post("/v1/verify", json={"token": body})
    assert r.status_code == 200
    v = r.json()
    assert v["status"] == "invalid"
    if reason:
        assert v["reason"] == reason
    assert v["reason"] in {x.value for x in Reason}


BAD_SINGLE = [
    (JSON_CT, b"{not json", 400, "not valid JSON"),
    (JSON_CT, b"", 400, "the request body is empty"),
    ({"content-type": "text/plain"}, b"", 400, "the request body is empty"),
    (JSON_CT, b"[1, 2]", 400, "JSON object"),
    (JSON_CT, b'"HC1:..."', 400, "JSON object"),
    (JSON_CT, b"{}", 400, 'missing field "token"'),
    (JSON_CT, b'{"token": 5}', 400, "must be a string"),
    (JSON_CT, b'{"token": ["HC1:"]}', 400, "must be a string"),
    (JSON_CT, b'{"token": null}', 400, 'missing field "token"'),
    (JSON_CT, b"\xff\xfe\x00junk", 400, "not valid JSON"),
    (JSON_CT, b"[" * 5000 + b"]" * 5000, 400, "not valid JSON"),
    ({"content-type": "text/plain"}, b"HC1:\xff\xfe", 400, "UTF-8"),
    ({"content-type": "application/x-www-form-urlencoded"}, b"token=HC1", 415, "application/json"),
    ({"content-type": "image/png"}, b"\x89PNG", 415, "application/json"),
    ({}, b'{"token": "HC1:"}', 415, "application/json"),
    ({"content-type": "application/json", "content-length": "abc"}, b"{}", 400, "Content-Length"),
]


@pytest.mark.parametrize(("headers", "body", "status", "message"), BAD_SINGLE)
def test_verify_bad_requests(
    client: TestClient, headers: dict[str, str], body: bytes, status: int, message: str
) -> None:
    r = client.post("/v1/verify", content=body, headers=headers)
    assert r.status_code == status
    assert r.headers["content-type"] == "application/json"
    assert message in r.json()["error"]["message"]


def test_oversized_body_is_413(verifier: Verifier, tokens: Tokens) -> None:
    with TestClient(create_app(verifier, Limits(max_body=2048))) as c:
        big = json.dumps({"token": tokens.valid, "pad": "x" * 4000}).encode()
        r = c.post("/v1/verify", content=big, headers=JSON_CT)
        assert r.status_code == 413 and "larger than 2048" in r.json()["error"]["message"]

        def chunks() -> Any:  # no Content-Length: chunked upload, counted while read
            for _ in range(10):
                yield b" " * 1000

        r = c.post("/v1/verify", content=chunks(), headers=JSON_CT)
        assert r.status_code == 413
        # the service keeps serving
        assert c.post("/v1/verify", json={"token": tokens.valid}).json()["status"] == "valid"


def test_chunked_body_within_limit_is_read(client: TestClient, tokens: Tokens) -> None:
    body = json.dumps({"token": tokens.valid}).encode()

    def chunks() -> Any:
        for i in range(0, len(body), 50):
            yield body[i : i + 50]

    r = client.post("/v1/verify", content=chunks(), headers=JSON_CT)
    assert r.status_code == 200 and r.json()["status"] == "valid"


# -- /v1/verify/batch ------------------------------------------------------------------


def test_batch_results_in_order(client: TestClient, tokens: Tokens) -> None:
    batch = [tokens.valid, "junk", tokens.unknown_key, tokens.test, tokens.expired, tokens.valid]
    r = client.post("/v1/verify/batch", json={"tokens": batch})
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
    results = r.json()["results"]
    assert [(x["status"], x["reason"]) for x in results] == [
        ("valid", None),
        ("invalid", "bad_prefix"),
        ("invalid", "unknown_key"),
        ("valid", None),
        ("invalid", "token_expired"),
        ("valid", None),
    ]
    assert results[3]["certificate"]["type"] == "test"


def test_batch_empty_and_limits(client: TestClient, tokens: Tokens) -> None:
    assert client.post("/v1/verify/batch", json={"tokens": []}).json() == {"results": []}
    r = client.post("/v1/verify/batch", json={"tokens": [tokens.valid] * 1000})
    assert r.status_code == 200 and len(r.json()["results"]) == 1000
    r = client.post("/v1/verify/batch", json={"tokens": ["x"] * 1001})
    assert r.status_code == 413 and "too many tokens" in r.json()["error"]["message"]


@pytest.mark.parametrize(
    ("headers", "body", "status", "message"),
    [
        (JSON_CT, b'{"tokens": "HC1:"}', 400, "array of strings"),
        (JSON_CT, b'{"tokens": ["a", 3]}', 400, "tokens[1] must be a string"),
        (JSON_CT, b'{"token": "a"}', 400, 'missing field "tokens"'),
        (JSON_CT, b"[]", 400, "JSON object"),
        (JSON_CT, b"{", 400, "not valid JSON"),
        ({"content-type": "text/plain"}, b"HC1:", 415, "application/json"),
    ],
)
def test_batch_bad_requests(
    client: TestClient, headers: dict[str, str], body: bytes, status: int, message: str
) -> None:
    r = client.post("/v1/verify/batch", content=body, headers=headers)
    assert r.status_code == status and message in r.json()["error"]["message"]


# -- /v1/verify/image -----------------------------------------------------------------


def _jpeg(png: bytes) -> bytes:
    out = io.BytesIO()
    Image.open(io.BytesIO(png)).convert("RGB").save(out, "JPEG", quality=90)
    return out.getvalue()


def _png_with_size(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims width x height (a decompression-bomb shape)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    head = (
        b"\x89PNG\r\n\x1a\n"
        + struct.pack(">I", len(ihdr))
        + chunk
        + struct.pack(">I", zlib.crc32(chunk))
    )
    idat = b"IDAT" + zlib.compress(b"\x00" * 4096)
    tail = struct.pack(">I", len(idat) - 4) + idat + struct.pack(">I", zlib.crc32(idat))
    iend = struct.pack(">I", 0) + b"IEND" + struct.pack(">I", zlib.crc32(b"IEND"))
    return head + tail + iend


def test_image_png_jpeg_and_form(client: TestClient, tokens: Tokens) -> None:
    png = png_bytes(tokens.valid)
    for body, ctype in (
        (png, "image/png"),
        (_jpeg(png), "image/jpeg"),
        (png, "application/octet-stream"),
    ):
        r = client.post("/v1/verify/image", content=body, headers={"content-type": ctype})
        assert r.status_code == 200, r.text
        assert r.json()["holder"]["name"] == tokens.name
    r = client.post(
        "/v1/verify/image", files={"image": ("photo.png", png, "image/png")}, data={"note": "x"}
    )
    assert r.status_code == 200 and r.json()["status"] == "valid"
    # any file field name works when there is no "image" field
    r = client.post("/v1/verify/image", files={"upload": ("p.jpg", _jpeg(png), "image/jpeg")})
    assert r.status_code == 200 and r.json()["status"] == "valid"
    bad = client.post(
        "/v1/verify/image",
        content=png_bytes(tokens.unknown_key),
        headers={"content-type": "image/png"},
    )
    assert bad.status_code == 200 and bad.json()["reason"] == "unknown_key"


def test_image_errors(client: TestClient) -> None:
    blank = io.BytesIO()
    Image.new("L", (200, 200), 255).save(blank, "PNG")
    cases = [
        ({"content-type": "image/png"}, blank.getvalue(), 400, "no QR code found"),
        ({"content-type": "image/png"}, b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, 400, "PNG"),
        ({"content-type": "image/jpeg"}, b"\xff\xd8\xff\xe0" + b"\x00" * 30, 400, "JPEG"),
        ({"content-type": "image/png"}, b"GIF89a....", 415, "not a PNG or JPEG"),
        ({"content-type": "image/png"}, b"", 400, "empty image"),
        ({"content-type": "text/plain"}, b"HC1:", 415, "PNG or JPEG"),
        ({"content-type": "image/png"}, _png_with_size(60000, 60000), 413, "pixels"),
        ({"content-type": "multipart/form-data"}, b"--x\r\n", 400, "boundary"),
        (
            {"content-type": "multipart/form-data; boundary=xyz"},
            b'--xyz\r\nContent-Disposition: form-data; name="a"\r\n\r\nhello\r\n--xyz--\r\n',
            400,
            "no file",
        ),
        (
            {"content-type": "multipart/form-data; boundary=xyz"},
            b"--xyz\r\nbroken",
            400,
            "multipart",
        ),
    ]
    for headers, body, status, message in cases:
        r = client.post("/v1/verify/image", content=body, headers=headers)
        assert r.status_code == status, (message, r.text)
        assert message in r.json()["error"]["message"], r.text
    assert client.get("/healthz").status_code == 200


def test_image_size_cap(verifier: Verifier, tokens: Tokens) -> None:
    png = png_bytes(tokens.valid)
    with TestClient(create_app(verifier, Limits(max_image_bytes=len(png) - 1))) as c:
        r = c.post("/v1/verify/image", content=png, headers={"content-type": "image/png"})
        assert r.status_code == 413


# -- health, readiness, errors ----------------------------------------------------------


def test_health_and_readiness(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok", "version": verifier_version()}
    r = client.get("/readyz")
    assert r.status_code == 200
    body = r.json()
    assert body["ready"] is True and body["counts"]["keys"] == 1 and body["source"] == "files"
    assert isinstance(body["age_seconds"], float)


def test_readiness_without_keys_is_503() -> None:
    v = Verifier(MemoryStore(TrustRegistry.empty()))
    with TestClient(create_app(v)) as c:
        r = c.get("/readyz")
        assert r.status_code == 503
        assert r.json()["ready"] is False and "no issuer keys" in r.json()["reason"]
        assert c.get("/healthz").status_code == 200


class _BrokenStore(MemoryStore):
    def status(self) -> dict[str, Any]:
        raise RuntimeError("store exploded")


def test_readiness_with_broken_store_is_503(demo: Any) -> None:
    v = Verifier(_BrokenStore(TrustRegistry.from_file(demo.trust_path)))
    with TestClient(create_app(v)) as c:
        assert c.get("/readyz").status_code == 503
        assert c.get("/metrics").status_code == 200


def test_unknown_route_and_method(client: TestClient) -> None:
    r = client.get("/nope")
    assert r.status_code == 404
    assert r.json() == {"error": {"code": "not_found", "message": "not found"}}
    r = client.get("/v1/verify")
    assert r.status_code == 405
    assert r.json() == {"error": {"code": "method_not_allowed", "message": "method not allowed"}}
    assert "POST" in r.headers["allow"]
    assert client.delete("/healthz").status_code == 405


class _Exploding:
    """A verifier whose verify fails unexpectedly (with personal data in the message)."""

    def __init__(self, inner: Verifier) -> None:
        self.store = inner.store
        self.status = inner.status

    def verify(self, token: str) -> Any:
        raise ValueError(f"boom {token}")

    def verify_many(self, tokens: list[str]) -> Any:
        raise ValueError(f"boom {tokens}")


def test_unexpected_exception_is_json_500_without_leak(
    verifier: Verifier, tokens: Tokens, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    with TestClient(create_app(_Exploding(verifier)), raise_server_exceptions=False) as c:
        r = c.post("/v1/verify", json={"token": tokens.valid})
        assert r.status_code == 500
        assert r.json() == {"error": {"code": "internal_error", "message": "internal error"}}
        assert c.get("/healthz").status_code == 200
        assert (
            metric(
                c.get("/metrics").text,
                "qrverify_http_requests_total",
                route="/v1/verify",
                method="POST",
                status=500,
            )
            == 1
        )
    lines = [JsonFormatter().format(rec) for rec in caplog.records]
    crash = [json.loads(x) for x in lines if '"unhandled exception"' in x]
    assert crash and crash[0]["exc_type"] == "ValueError"
    assert all(tokens.valid not in x and "boom" not in x for x in lines)


# -- scanner page ----------------------------------------------------------------------


def test_scanner_page_and_assets(client: TestClient) -> None:
    r = client.get("/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    csp = r.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
    html = r.text
    assert 'id="photo"' in html and 'capture="environment"' in html
    assert not re.search(r'(src|href)="(https?:)?//', html)  # nothing external
    js = client.get("/static/app.js")
    assert js.status_code == 200 and js.headers["content-type"].startswith("text/javascript")
    assert "BarcodeDetector" in js.text and "/v1/verify/image" in js.text
    assert "innerHTML" not in js.text  # names are shown with textContent only
    assert client.get("/static/app.css").status_code == 200
    assert client.get("/static/nope.js").status_code == 404
    assert client.get("/static/..%2Fapp.py").status_code == 404


def test_page_explains_every_reason_code(client: TestClient) -> None:
    js = client.get("/static/app.js").text
    block = js[js.index("const REASONS") : js.index("};", js.index("const REASONS"))]
    codes = set(re.findall(r"^\s*(\w+):", block, re.M))
    assert codes == {r.value for r in Reason}


# -- API keys --------------------------------------------------------------------------


def test_api_keys_required_and_counted(
    verifier: Verifier, tokens: Tokens, api_key_file: Path
) -> None:
    keys = ApiKeys.from_file(api_key_file)
    with TestClient(create_app(verifier, api_keys=keys)) as c:
        for headers in (
            {},
            {"x-api-key": "wrong"},
            {"x-api-key": "cafe-secret-012345678"},
            {"x-api-key": ""},
        ):
            r = c.post("/v1/verify", json={"token": tokens.valid}, headers=headers)
            assert r.status_code == 401 and "X-API-Key" in r.json()["error"]["message"]
            r = c.post("/v1/verify/batch", json={"tokens": []}, headers=headers)
            assert r.status_code == 401
            r = c.post("/v1/verify/image", content=b"x", headers=headers)
            assert r.status_code == 401
        cafe = {"x-api-key": "cafe-secret-0123456789"}
        gate = {"x-api-key": "gate-secret-0123456789"}
        assert c.post("/v1/verify", json={"token": tokens.valid}, headers=cafe).status_code == 200
        r = c.post("/v1/verify/batch", json={"tokens": [tokens.valid, "x", "y"]}, headers=gate)
        assert r.status_code == 200
        assert c.get("/healthz").status_code == 200 and c.get("/readyz").status_code == 200
        text = c.get("/metrics").text
    assert metric(text, "qrverify_client_verdicts_total", client="cafe-12", status="valid") == 1
    assert metric(text, "qrverify_client_verdicts_total", client="gate-3", status="valid") == 1
    assert metric(text, "qrverify_client_verdicts_total", client="gate-3", status="invalid") == 2
    assert "cafe-secret" not in text and "gate-secret" not in text
    assert (
        metric(text, "qrverify_http_requests_total", route="/v1/verify", method="POST", status=401)
        == 4
    )


@pytest.mark.parametrize(
    ("obj", "message"),
    [
        ({}, '{"keys": [...]}'),
        ({"keys": []}, "no keys"),
        ({"keys": [{"name": "a b", "key": "x" * 20}]}, "name"),
        ({"keys": [{"name": "a", "key": "short"}]}, "16-1024"),
        ({"keys": [{"name": "a", "key": "x" * 20, "sha256": "0" * 64}]}, "exactly one"),
        ({"keys": [{"name": "a", "sha256": "zz"}]}, "64 hex"),
        ({"keys": [{"name": "a", "key": "x" * 20}, {"name": "a", "key": "y" * 20}]}, "duplicate"),
        ({"keys": [{"name": "a", "key": "x" * 20}, {"name": "b", "key": "x" * 20}]}, "same secret"),
        ({"keys": [{"name": "a", "key": "x" * 20, "role": "admin"}]}, "unknown field"),
        ({"keys": ["x"]}, "keys[0]"),
    ],
)
def test_api_key_file_errors(obj: Any, message: str) -> None:
    with pytest.raises(ApiKeyFileError, match=re.escape(message)):
        ApiKeys.from_dict(obj)


def test_api_key_file_io_errors(tmp_path: Path) -> None:
    with pytest.raises(ApiKeyFileError, match="cannot read"):
        ApiKeys.from_file(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_bytes(b"{nope")
    with pytest.raises(ApiKeyFileError, match="not valid JSON"):
        ApiKeys.from_file(bad)


# -- metrics and logs: contents and privacy ----------------------------------------------


def test_metrics_contents(client: TestClient, tokens: Tokens) -> None:
    client.post("/v1/verify", json={"token": tokens.valid})
    client.post("/v1/verify", json={"token": tokens.unknown_key})
    client.post("/v1/verify/batch", json={"tokens": [tokens.valid, tokens.expired, "x"]})
    client.post("/v1/verify", content=b"{", headers=JSON_CT)
    client.get("/random/path/1")
    client.get("/random/path/2")
    r = client.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
    text = r.text
    assert metric(text, "qrverify_verdicts_total", status="valid", reason="none") == 2
    assert metric(text, "qrverify_verdicts_total", status="invalid", reason="unknown_key") == 1
    assert metric(text, "qrverify_verdicts_total", status="invalid", reason="token_expired") == 1
    assert metric(text, "qrverify_verdicts_total", status="invalid", reason="bad_prefix") == 1
    assert (
        metric(text, "qrverify_http_requests_total", route="/v1/verify", method="POST", status=200)
        == 2
    )
    assert (
        metric(text, "qrverify_http_requests_total", route="/v1/verify", method="POST", status=400)
        == 1
    )
    assert (
        metric(text, "qrverify_http_requests_total", route="other", method="GET", status=404) == 2
    )  # random paths share one series
    assert metric(text, "qrverify_http_request_duration_seconds_count", route="/v1/verify") == 3
    assert (
        metric(text, "qrverify_http_request_duration_seconds_bucket", route="/v1/verify", le="+Inf")
        == 3
    )
    assert metric(text, "qrverify_store_ready", source="files") == 1
    assert metric(text, "qrverify_store_entries", source="files", set="keys") == 1
    assert metric(text, "qrverify_store_age_seconds", source="files") >= 0
    for secret in (tokens.name, tokens.dob, tokens.ci, tokens.valid[:20], "SIDOROVA"):
        assert secret not in text


def test_logs_carry_no_personal_data(
    verifier: Verifier, tokens: Tokens, api_key_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    app = create_app(verifier, api_keys=ApiKeys.from_file(api_key_file))
    key = {"x-api-key": "cafe-secret-0123456789"}
    with TestClient(app) as c:
        c.post("/v1/verify", json={"token": tokens.valid}, headers=key)
        c.post("/v1/verify", content=tokens.valid, headers={**key, "content-type": "text/plain"})
        c.post("/v1/verify/batch", json={"tokens": [tokens.valid, tokens.test]}, headers=key)
        c.post(
            "/v1/verify/image",
            content=png_bytes(tokens.valid),
            headers={**key, "content-type": "image/png"},
        )
        c.post("/v1/verify", json={"token": tokens.valid})  # 401
        c.post(
            "/v1/verify",
            content=b'{"token": 1, "x": "' + tokens.name.encode() + b'"}',
            headers={**key, **JSON_CT},
        )
    lines = [JsonFormatter().format(rec) for rec in caplog.records]
    access = [json.loads(x) for x in lines if '"qrverify.access"' in x]
    assert len(access) == 6
    assert access[0]["verdict_status"] == "valid" and access[0]["client"] == "cafe-12"
    assert access[0]["route"] == "/v1/verify" and access[0]["status"] == 200
    assert access[2]["tokens"] == 2 and access[2]["valid"] == 2
    assert access[4]["status"] == 401 and access[5]["status"] == 400
    blob = "\n".join(lines)
    for secret in (
        tokens.name,
        "SIDOROVA",
        "MARIYA",
        tokens.dob,
        tokens.ci,
        tokens.valid[4:40],
        "cafe-secret",
    ):
        assert secret not in blob


def test_create_app_rejects_bad_limits(verifier: Verifier) -> None:
    with pytest.raises(ValueError, match="max_batch"):
        create_app(verifier, Limits(max_batch=0))
    with pytest.raises(ValueError, match="body_timeout"):
        create_app(verifier, Limits(body_timeout=0))
