"""A server builds its issuers' ES256 tables on a background thread (26 ms each), so no
request waits for one; the answers are the same while a table is being built."""

from __future__ import annotations

import json
from typing import Any

import pytest
from starlette.testclient import TestClient

from fastpath import _ossl
from keys.issuer import Issuer
from keys.registry import TrustRegistry
from keys.samples import sample_dcc
from keys.token import issue_token
from verifier.http import serve
from verifier.http.config import ServeConfig

pytestmark = pytest.mark.skipif(
    not (_ossl.available() and _ossl.ec_available()), reason="no libcrypto 3 EC entry points"
)


@pytest.fixture
def restore_mode():
    previous = _ossl.set_background_tables(False)
    yield
    assert _ossl.wait_tables()
    _ossl.set_background_tables(previous)


def test_a_worker_verifies_while_its_new_keys_tables_are_built(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch, restore_mode: None
) -> None:
    import time

    now = int(time.time())
    issuers = [Issuer.generate("RU", "ES256") for _ in range(3)]  # keys no test has used
    trust = tmp_path / "trust.json"
    trust.write_bytes(
        TrustRegistry.from_dict({"keys": [i.trust_entry() for i in issuers]}).to_json()
    )
    tokens = [
        issue_token(i, sample_dcc("vaccination", at=now), iat=now, exp=now + 86400) for i in issuers
    ]
    cfg = ServeConfig(trust=str(trust), log_level="warning")
    monkeypatch.setenv(serve.WORKER_ENV, json.dumps(cfg.to_json_dict()))
    app = serve.worker_app()
    with TestClient(app) as client:
        first = client.post("/v1/verify/batch", json={"tokens": tokens}).json()
        assert [v["status"] for v in first["results"]] == ["valid"] * 3
        assert _ossl.set_background_tables(True) is True  # the worker switched it on
        assert _ossl.wait_tables()
        again = client.post("/v1/verify/batch", json={"tokens": tokens}).json()
        assert [v["status"] for v in again["results"]] == ["valid"] * 3
        tampered = tokens[0][:-6] + ("A" if tokens[0][-6] != "A" else "B") + tokens[0][-5:]
        assert client.post("/v1/verify", json={"token": tampered}).json()["status"] != "valid"
