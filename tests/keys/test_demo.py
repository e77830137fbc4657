from __future__ import annotations

import datetime as dt
import json
import zlib
from pathlib import Path

import cbor2
import pytest

from keys import base45
from keys.cose import sig_structure
from keys.demo import make_demo
from keys.issuer import IssuerError
from keys.registry import TrustRegistry

AT = int(dt.datetime(2021, 11, 15, 12, tzinfo=dt.UTC).timestamp())


def test_make_demo(tmp_path: Path) -> None:
    demo = make_demo(tmp_path, at=AT)
    assert demo.trust_path == tmp_path / "trust.json"
    assert (tmp_path / "issuer" / "issuer.key").is_file()
    trust = TrustRegistry.from_file(demo.trust_path)
    assert len(trust) == 1
    (key,) = trust.candidates(demo.issuer.kid)
    assert key.types is not None and key.types == frozenset({"vaccination", "recovery", "test"})
    assert key.not_before is not None and key.not_after is not None
    assert key.not_before <= AT < key.not_after
    assert set(demo.tokens) == {"vaccination", "recovery", "test"}
    groups = {"vaccination": "v", "recovery": "r", "test": "t"}
    for cert_type, token in demo.tokens.items():
        cose = cbor2.loads(zlib.decompress(base45.decode(token[4:])))
        protected, _, payload, signature = cose.value
        assert cbor2.loads(protected) == {1: -7, 4: demo.issuer.kid}
        assert key.verify(-7, signature, sig_structure(protected, payload))
        claims = cbor2.loads(payload)
        assert claims[6] == AT and AT < claims[4] <= key.not_after
        assert groups[cert_type] in claims[-260][1]
        assert claims[-260][1]["nam"]["fnt"] == "IVANOV"


def test_make_demo_reuses_issuer(tmp_path: Path) -> None:
    first = make_demo(tmp_path, at=AT)
    second = make_demo(tmp_path, at=AT + 3600)
    assert second.issuer.kid == first.issuer.kid
    assert json.loads(second.trust_path.read_text()) == json.loads(first.trust_path.read_text())
    with pytest.raises(IssuerError, match="not valid at the requested time"):
        make_demo(tmp_path, at=AT + 5 * 365 * 86400)


def test_make_demo_now(tmp_path: Path) -> None:
    demo = make_demo(tmp_path)
    assert len(demo.tokens) == 3
    assert all(t.startswith("HC1:") for t in demo.tokens.values())
