"""The EU revocation list (DRL) for the embedded store: `verify --drl FILE` (and
`serve --drl`, `Verifier.from_files(drl=...)`), as `sync --drl` gives it to Redis."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

import pytest
from engine_support import AT, DAY, ES, NOW, key_of, token

from keys.registry import TrustRegistry
from keys.samples import sample_dcc
from verifier import Reason, Verifier
from verifier.cli import main


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path, str]:
    dcc = sample_dcc("vaccination", at=NOW)
    ci = dcc["v"][0]["ci"]
    trust = tmp_path / "trust.json"
    trust.write_bytes(TrustRegistry([key_of(ES)]).to_json())
    drl = tmp_path / "drl.json"
    batch = {
        "kid": b64(ES.kid),
        "hashType": "UCI",
        "expires": NOW + DAY,
        "entries": [b64(hashlib.sha256(ci.encode()).digest()[:16])],
    }
    drl.write_text(json.dumps({"drl": [batch]}))
    return trust, drl, token(dcc=dcc)


def test_verifier_from_files_with_drl(files: tuple[Path, Path, str]) -> None:
    trust, drl, t = files
    v = Verifier.from_files(trust, rules="none", drl=drl)
    assert v.verify(t, at=AT).reason is Reason.REVOKED
    assert v.verify(t, at=NOW + DAY + 1).valid  # expired: stops counting
    assert v.status()["counts"]["drl"] == 1
    assert Verifier.from_files(trust, rules="none").verify(t, at=AT).valid


def test_verify_drl_option(files: tuple[Path, Path, str], capsys: pytest.CaptureFixture[str]):
    trust, drl, t = files
    args = ["verify", "--trust", str(trust), "--rules", "none", "--at", AT.isoformat()]
    assert main([*args, "--drl", str(drl), t]) == 1
    assert json.loads(capsys.readouterr().out)["reason"] == "revoked"
    drl.write_text('{"drl": [{"kid": "", "hashType": "UCI", "expires": 1, "entries": []}]}')
    assert main([*args, "--drl", str(drl), t]) == 2
    err = capsys.readouterr().err
    assert err.startswith("qrverify verify: drl[0]") and len(err.splitlines()) == 1
    assert main([*args[:-2], "--redis", "redis://127.0.0.1:1/0", "--drl", str(drl), t]) == 2
    assert "--drl and --redis exclude each other" in capsys.readouterr().err
