"""Issue 13, client developers: CORS, the OpenAPI document and docs page, the version,
Russian `detail`, the request id in answers and logs, metrics parsed by prometheus_client."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from starlette.testclient import TestClient

from verifier import Reason, Verifier, __version__, i18n
from verifier.http import ApiKeys, create_app
from verifier.http._request import ERRORS

ORIGIN = "https://app.example.org"


@pytest.fixture
def client(verifier: Verifier) -> Any:
    with TestClient(create_app(verifier, cors_origins=[ORIGIN])) as c:
        yield c


# -- CORS ---------------------------------------------------------------------------------


def test_preflight_for_an_allowed_origin(client: TestClient) -> None:
    r = client.options(
        "/v1/verify",
        headers={
            "origin": ORIGIN,
            "access-control-request-method": "POST",
            "access-control-request-headers": "content-type, x-api-key",
        },
    )
    assert r.status_code == 204
    assert r.headers["access-control-allow-origin"] == ORIGIN
    assert "POST" in r.headers["access-control-allow-methods"]
    assert "x-api-key" in r.headers["access-control-allow-headers"]
    assert r.headers["vary"] == "origin"


def test_cors_headers_on_answers_and_errors(client: TestClient, tokens: Any) -> None:
    r = client.post("/v1/verify", json={"token": tokens.valid}, headers={"origin": ORIGIN})
    assert r.status_code == 200 and r.headers["access-control-allow-origin"] == ORIGIN
    assert "x-request-id" in r.headers["access-control-expose-headers"]
    r = client.post(
        "/v1/verify/batch",
        content=b"{",
        headers={"origin": ORIGIN, "content-type": "application/json"},
    )
    assert r.status_code == 400 and r.headers["access-control-allow-origin"] == ORIGIN


def test_other_origins_get_no_cors(client: TestClient, tokens: Any) -> None:
    r = client.post(
        "/v1/verify", json={"token": tokens.valid}, headers={"origin": "https://evil.example"}
    )
    assert r.status_code == 200 and "access-control-allow-origin" not in r.headers
    r = client.options(
        "/v1/verify",
        headers={"origin": "https://evil.example", "access-control-request-method": "POST"},
    )
    assert r.status_code == 405 and "access-control-allow-origin" not in r.headers
    assert r.json()["error"]["code"] == "method_not_allowed"


def test_without_cors_options_is_405(verifier: Verifier) -> None:
    with TestClient(create_app(verifier)) as c:
        r = c.options(
            "/v1/verify", headers={"origin": ORIGIN, "access-control-request-method": "POST"}
        )
        assert r.status_code == 405 and "access-control-allow-origin" not in r.headers


def test_cors_origin_options(tmp_path: Any, api_key_file: Any, demo: Any) -> None:
    import argparse

    from verifier.http import config

    parser = argparse.ArgumentParser()
    config.add_arguments(parser)
    base = ["--trust", str(demo.trust_path)]
    args = parser.parse_args(
        [*base, "--cors-origin", ORIGIN, "--cors-origin", "http://localhost:3000/"]
    )
    assert config.resolve(args, {}).cors_origins == (ORIGIN, "http://localhost:3000")
    env = {"QRVERIFY_CORS_ORIGIN": f"{ORIGIN}, http://127.0.0.1:8080"}
    assert config.resolve(parser.parse_args(base), env).cors_origins == (
        ORIGIN,
        "http://127.0.0.1:8080",
    )
    with pytest.raises(config.ServeConfigError, match="not an origin"):
        config.resolve(parser.parse_args([*base, "--cors-origin", "evil.example/path"]), {})
    keys = ["--api-keys", str(api_key_file), "--cors-origin", "*"]
    with pytest.raises(config.ServeConfigError, match="--cors-wildcard-with-keys"):
        config.resolve(parser.parse_args([*base, *keys]), {})
    cfg = config.resolve(parser.parse_args([*base, *keys, "--cors-wildcard-with-keys"]), {})
    assert cfg.cors_origins == ("*",)
    assert config.ServeConfig.from_json_dict(json.loads(json.dumps(cfg.to_json_dict()))) == cfg


# -- OpenAPI -----------------------------------------------------------------------------


@pytest.mark.parametrize("with_keys", [False, True])
def test_openapi_document_is_valid_and_complete(verifier: Verifier, with_keys: bool) -> None:
    from openapi_spec_validator import validate

    from verifier.http.app import ROUTES

    keys = ApiKeys.from_dict({"keys": [{"name": "k", "key": "k" * 20}]}) if with_keys else None
    with TestClient(create_app(verifier, api_keys=keys)) as c:
        doc = c.get("/openapi.json").json()
    validate(doc)
    assert doc["info"]["version"] == __version__
    documented = {(p, m.upper()) for p, ops in doc["paths"].items() for m in ops}
    served = {
        (p, m) for p, _, m in ROUTES if p not in ("/", "/docs", "/favicon.ico", "/static/{name}")
    }
    assert documented == served
    schemas = doc["components"]["schemas"]
    assert set(schemas["Error"]["properties"]["error"]["properties"]["code"]["enum"]) == set(ERRORS)
    reasons = set(schemas["Verdict"]["properties"]["reason"]["oneOf"][1]["enum"])
    assert {r.value for r in Reason} <= reasons
    assert {"vaccine_not_accepted", "bad_link", "not_found"} <= reasons
    assert schemas["BatchRequest"]["properties"]["tokens"]["maxItems"] == 1000
    assert ("security" in doc["paths"]["/v1/verify"]["post"]) == with_keys


def test_answers_match_the_document(client: TestClient, tokens: Any) -> None:
    import jsonschema

    doc = client.get("/openapi.json").json()
    schemas = doc["components"]["schemas"]

    def check(instance: Any, name: str) -> None:
        schema = {**schemas[name], "components": doc["components"]}
        jsonschema.validate(instance, schema)

    check(client.post("/v1/verify", json={"token": tokens.valid}).json(), "Verdict")
    check(
        client.post("/v1/verify/batch", json={"tokens": [tokens.valid, "x"]}).json(), "BatchResults"
    )
    check(client.post("/v1/verify", content=b"{").json(), "Error")


def test_docs_page_is_served_from_the_package(client: TestClient) -> None:
    r = client.get("/docs")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in r.headers["content-security-policy"]
    assert "/v1/verify/batch" in r.text and "body_too_large" in r.text
    assert "http://" not in r.text and "https://" not in r.text  # nothing from outside


# -- version, metrics --------------------------------------------------------------------


def test_version_in_healthz_and_build_info(client: TestClient, tokens: Any) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    assert client.get("/healthz").json() == {"status": "ok", "version": __version__}
    client.post("/v1/verify", json={"token": tokens.valid})
    client.post("/v1/verify", json={"token": "HC1:junk"})
    r = client.get("/metrics")
    families = {f.name: f for f in text_string_to_metric_families(r.text)}
    info = (
        families["qrverify_build"].samples
        if "qrverify_build" in families
        else families["qrverify_build_info"].samples
    )
    assert [(s.labels, s.value) for s in info] == [({"version": __version__}, 1.0)]
    verdicts = {
        (s.labels["status"], s.labels["reason"]): s.value
        for s in families["qrverify_verdicts"].samples
    }
    assert verdicts[("valid", "none")] == 1
    assert sum(v for (st, _), v in verdicts.items() if st == "invalid") == 1
    requests = families["qrverify_http_requests"].samples
    assert any(
        s.labels == {"route": "/v1/verify", "method": "POST", "status": "200"} and s.value == 2
        for s in requests
    )
    hist = [
        s
        for s in families["qrverify_http_request_duration_seconds"].samples
        if s.name.endswith("_count") and s.labels["route"] == "/v1/verify"
    ]
    assert hist[0].value == 2


# -- Russian detail ----------------------------------------------------------------------


def test_every_reason_has_a_russian_detail() -> None:
    for reason in Reason:
        assert reason.value in i18n.DETAILS_RU, reason
    for code in ("vaccine_not_accepted", "bad_link", "not_found", ""):
        assert code in i18n.DETAILS_RU
    for text in i18n.DETAILS_RU.values():
        assert any("\u0400" <= ch <= "\u04ff" for ch in text)


@pytest.mark.parametrize(
    ("header", "lang"),
    [
        ("ru-RU,ru;q=0.9,en-US;q=0.8,en;q=0.7", "ru"),
        ("ru", "ru"),
        ("en-US,en;q=0.9,ru;q=0.8", "en"),
        ("de-DE,de;q=0.9,ru;q=0.5,en;q=0.3", "ru"),
        ("de-DE", "en"),
        ("en;q=0.2, ru;q=0.8", "ru"),
        ("ru;q=0", "en"),
        ("*", "en"),
        ("", "en"),
    ],
)
def test_language_choice(header: str, lang: str) -> None:
    assert i18n.choose(header) == lang


def test_russian_detail_same_reason_code(client: TestClient, tokens: Any) -> None:
    ru = {"accept-language": "ru-RU,ru;q=0.9"}
    for token in (tokens.valid, tokens.expired, tokens.unknown_key, "HC1:%%%"):
        en_v = client.post("/v1/verify", json={"token": token}).json()
        ru_r = client.post("/v1/verify", json={"token": token}, headers=ru)
        ru_v = ru_r.json()
        assert ru_r.headers["content-language"] == "ru"
        assert ru_v["reason"] == en_v["reason"] and ru_v["status"] == en_v["status"]
        assert ru_v["detail"] == i18n.detail_ru(en_v["reason"]) != en_v["detail"]
    batch = client.post("/v1/verify/batch", json={"tokens": [tokens.expired]}, headers=ru)
    assert batch.json()["results"][0]["detail"] == i18n.detail_ru("token_expired")


# -- request id ---------------------------------------------------------------------------


def test_request_id_echoed_made_and_logged(
    verifier: Verifier, tokens: Any, caplog: pytest.LogCaptureFixture
) -> None:
    with TestClient(create_app(verifier)) as c, caplog.at_level(logging.INFO, "qrverify.access"):
        r1 = c.post(
            "/v1/verify", json={"token": tokens.valid}, headers={"x-request-id": "gate-7:42"}
        )
        r2 = c.get("/healthz", headers={"x-request-id": "bad id with spaces"})
        r3 = c.get("/nope")
    assert r1.headers["x-request-id"] == "gate-7:42"
    made = {r2.headers["x-request-id"], r3.headers["x-request-id"]}
    assert len(made) == 2 and "bad id with spaces" not in made
    logged = [
        rec.fields["request_id"]
        for rec in caplog.records  # type: ignore[attr-defined]
        if rec.name == "qrverify.access"
    ]
    assert logged == ["gate-7:42", r2.headers["x-request-id"], r3.headers["x-request-id"]]
