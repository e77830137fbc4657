"""Property: no request, however malformed, makes the app answer 5xx."""

from __future__ import annotations

import json
from typing import Any

import pytest
from examples import examples
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from verifier import Verifier
from verifier.http import ApiKeys, create_app
from verifier.http.app import Limits

PATHS = [
    "/v1/verify",
    "/v1/verify/batch",
    "/v1/verify/image",
    "/healthz",
    "/readyz",
    "/metrics",
    "/",
    "/static/app.js",
    "/static/x",
    "/v1",
    "/v1/verify/",
    "//v1/verify",
]
CONTENT_TYPES = [
    "application/json",
    "application/json; charset=utf-8",
    "text/plain",
    "text/plain; charset=latin-1",
    "image/png",
    "image/jpeg",
    "application/octet-stream",
    "multipart/form-data",
    "multipart/form-data; boundary=b",
    "application/x-www-form-urlencoded",
    "application/problem+json",
    "",
]


def _json_values() -> st.SearchStrategy[Any]:
    scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
    return st.recursive(
        scalars,
        lambda inner: (
            st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
        ),
        max_leaves=12,
    )


@st.composite
def bodies(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["bytes", "json", "token", "tokens", "multipart", "png"]))
    if kind == "bytes":
        return draw(st.binary(max_size=300))
    if kind == "json":
        return json.dumps(draw(_json_values())).encode()
    if kind == "token":
        return json.dumps({"token": draw(st.one_of(_json_values(), st.text()))}).encode()
    if kind == "tokens":
        return json.dumps(
            {"tokens": draw(st.lists(st.text(max_size=40) | st.integers(), max_size=5))}
        ).encode()
    if kind == "multipart":
        part = draw(st.binary(max_size=60))
        return (
            b'--b\r\nContent-Disposition: form-data; name="image"; filename="x"\r\n\r\n'
            + part
            + b"\r\n--b--\r\n"
        )[: draw(st.integers(0, 200))]
    return b"\x89PNG\r\n\x1a\n" + draw(st.binary(max_size=80))


@pytest.fixture(scope="module")
def fuzz_client(demo: Any) -> Any:
    app = create_app(
        Verifier.from_files(trust=demo.trust_path),
        Limits(max_body=4096, max_batch_body=4096),
        api_keys=None,
    )
    with TestClient(app, raise_server_exceptions=True) as c:
        yield c


@pytest.fixture(scope="module")
def fuzz_client_keys(demo: Any) -> Any:
    keys = ApiKeys.from_dict({"keys": [{"name": "k", "key": "k" * 20}]})
    with TestClient(create_app(Verifier.from_files(trust=demo.trust_path), api_keys=keys)) as c:
        yield c


REQUESTS = st.tuples(
    st.sampled_from(["GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH"]),
    st.sampled_from(PATHS)
    | st.text(alphabet="/abcv1%.?&=", min_size=1, max_size=20).map(lambda p: "/" + p.lstrip("/")),
    st.sampled_from(CONTENT_TYPES) | st.text(max_size=30).filter(lambda t: t.isprintable()),
    bodies(),
    st.sampled_from([None, "k" * 20, "wrong", ""]),
)


def _check(client: TestClient, req: tuple[str, str, str, bytes, str | None]) -> None:
    method, path, ctype, body, key = req
    # header values travel as raw bytes (latin-1), as a misbehaving client may send them
    headers: dict[str, bytes] = {}
    if ctype:
        headers["content-type"] = ctype.encode("utf-8")
    if key is not None:
        headers["x-api-key"] = key.encode()
    r = client.request(method, path, content=body, headers=headers)
    assert r.status_code < 500, (req, r.status_code, r.text)
    if r.status_code >= 400 and method != "HEAD":
        assert r.headers["content-type"] == "application/json"
        error = r.json()["error"]
        assert set(error) == {"code", "message"} and isinstance(error["message"], str)
        from verifier.http._request import ERRORS

        assert ERRORS[error["code"]][0] == r.status_code


@settings(max_examples=examples(400), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(req=REQUESTS)
def test_random_requests_never_5xx(
    fuzz_client: TestClient, req: tuple[str, str, str, bytes, str | None]
) -> None:
    _check(fuzz_client, req)


@settings(max_examples=examples(150), deadline=None)
@given(req=REQUESTS)
def test_random_requests_with_api_keys_never_5xx(
    fuzz_client_keys: TestClient, req: tuple[str, str, str, bytes, str | None]
) -> None:
    _check(fuzz_client_keys, req)
