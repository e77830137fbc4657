"""`qrverify keys new|trust` and `qrverify issue` through the real dispatcher."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import io
import json
import os
import stat
import time
import zlib
from pathlib import Path
from typing import Any

import cbor2
import pytest
import zxingcpp
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from PIL import Image

from keys import base45
from keys.cose import sig_structure
from keys.registry import TrustRegistry
from verifier.cli import main

_INCOMPRESSIBLE = "".join(hashlib.sha256(str(i).encode()).hexdigest() for i in range(100))


def _claims(token: str) -> tuple[dict[int, Any], Any]:
    cose = cbor2.loads(zlib.decompress(base45.decode(token.removeprefix("HC1:"))))
    protected, _, payload, signature = cose.value
    return cbor2.loads(payload), (protected, payload, signature)


def _verified_by(trust: TrustRegistry, token: str) -> bool:
    _, (protected, payload, signature) = _claims(token)
    header = cbor2.loads(protected)
    return any(
        k.verify(header[1], signature, sig_structure(protected, payload))
        for k in trust.candidates(header[4])
    )


@pytest.fixture(scope="module")
def issuer_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("cli") / "ru"
    assert main(["keys", "new", "--country", "RU", "--out", str(out)]) == 0
    return out


def test_keys_new(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "issuer"
    rc = main(
        [
            "keys",
            "new",
            "--country",
            "DE",
            "--out",
            str(out),
            "--alg",
            "EdDSA",
            "--types",
            "test, recovery",
            "--days",
            "30",
        ]
    )
    assert rc == 0
    assert "kid" in capsys.readouterr().out
    assert stat.S_IMODE(os.stat(out / "issuer.key").st_mode) == 0o600
    cert = x509.load_pem_x509_certificate((out / "issuer.crt").read_bytes())
    assert cert.not_valid_after_utc - cert.not_valid_before_utc == dt.timedelta(days=30)
    (key,) = TrustRegistry.from_dict(json.loads(_trust(capsys, out)))
    assert key.types == frozenset({"test", "recovery"})
    assert key.alg == -8 and key.country == "DE"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--country", "RUS"], "two upper-case letters"),
        (["--country", "р1"], "two upper-case letters"),
        (["--country", "RU", "--types", "vaccine"], "unknown certificate type"),
        (["--country", "RU", "--types", ","], "--types needs at least one"),
        (["--country", "RU", "--days", "0"], "--days must be from 1"),
    ],
)
def test_keys_new_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    out = tmp_path / "x"
    assert main(["keys", "new", "--out", str(out), *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and err.startswith("qrverify keys new: ")
    assert err.count("\n") == 1
    assert not (out / "issuer.key").exists()


def test_keys_new_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["keys"]) == 2
    assert main(["keys", "new", "--country", "RU"]) == 2  # --out missing
    assert main(["keys", "new", "--out", "x", "--country", "RU", "--alg", "RS256"]) == 2
    assert main(["keys", "rotate"]) == 2
    capsys.readouterr()


def test_keys_new_refuses_overwrite(issuer_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = (issuer_dir / "issuer.key").read_bytes()
    assert main(["keys", "new", "--country", "RU", "--out", str(issuer_dir)]) == 2
    assert "refusing to overwrite" in capsys.readouterr().err
    assert (issuer_dir / "issuer.key").read_bytes() == before


def _trust(capsys: pytest.CaptureFixture[str], *certs: Path | str) -> str:
    capsys.readouterr()
    assert main(["keys", "trust", *map(str, certs)]) == 0
    return capsys.readouterr().out


def test_keys_trust(tmp_path: Path, issuer_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    other = tmp_path / "fr"
    assert main(["keys", "new", "--country", "FR", "--out", str(other), "--alg", "PS256"]) == 0
    cert = x509.load_pem_x509_certificate((other / "issuer.crt").read_bytes())
    der_path = tmp_path / "fr.der"
    der_path.write_bytes(cert.public_bytes(serialization.Encoding.DER))
    doc = json.loads(_trust(capsys, issuer_dir / "issuer.crt", der_path, other))
    assert [e["country"] for e in doc["keys"]] == ["RU", "FR", "FR"]
    assert set(doc) == {"keys"} and all(set(e) == {"certificate", "country"} for e in doc["keys"])
    assert base64.b64decode(doc["keys"][1]["certificate"]) == der_path.read_bytes()
    assert len(TrustRegistry.from_dict(doc)) == 3


def test_keys_trust_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["keys", "trust", str(tmp_path / "missing.crt")]) == 2
    assert "file not found" in capsys.readouterr().err
    junk = tmp_path / "junk.crt"
    junk.write_bytes(b"hello")
    assert main(["keys", "trust", str(junk)]) == 2
    assert "not a PEM or DER X.509 certificate" in capsys.readouterr().err
    assert main(["keys", "trust"]) == 2
    capsys.readouterr()


@pytest.mark.parametrize("cert_type", ["vaccination", "recovery", "test"])
def test_issue(issuer_dir: Path, capsys: pytest.CaptureFixture[str], cert_type: str) -> None:
    trust = TrustRegistry.from_dict(json.loads(_trust(capsys, issuer_dir)))
    before = int(time.time())
    rc = main(
        [
            "issue",
            "--key",
            str(issuer_dir),
            "--type",
            cert_type,
            "--name",
            "Петров Пётр",
            "--dob",
            "1990-12-31",
        ]
    )
    out = capsys.readouterr().out
    assert rc == 0
    lines = out.splitlines()
    assert len(lines) == 1 and lines[0].startswith("HC1:")
    claims, _ = _claims(lines[0])
    assert _verified_by(trust, lines[0])
    assert claims[1] == "RU"
    assert before <= claims[6] <= int(time.time())
    # 365 days, capped by the issuer certificate (made a second or more earlier)
    not_after = int(
        x509.load_pem_x509_certificate(
            (issuer_dir / "issuer.crt").read_bytes()
        ).not_valid_after_utc.timestamp()
    )
    assert claims[4] == min(claims[6] + 365 * 86400, not_after)
    dcc = claims[-260][1]
    assert dcc["nam"] == {"fn": "Петров", "fnt": "PETROV", "gn": "Пётр", "gnt": "PETR"}
    assert dcc["dob"] == "1990-12-31"
    assert {"vaccination": "v", "recovery": "r", "test": "t"}[cert_type] in dcc


def test_issue_json_and_qr(
    tmp_path: Path, issuer_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    payload = {"ver": "1.3.0", "nam": {"fnt": "X"}, "dob": "", "t": [{"tg": "840539006"}]}
    path = tmp_path / "p.json"
    path.write_text(json.dumps(payload))
    qr = tmp_path / "qr.png"
    for spec in (json.dumps(payload), f"@{path}"):
        assert main(["issue", "--key", str(issuer_dir), "--json", spec, "--qr", str(qr)]) == 0
        token = capsys.readouterr().out.strip()
        assert _claims(token)[0][-260][1] == payload
        texts = [r.text for r in zxingcpp.read_barcodes(Image.open(io.BytesIO(qr.read_bytes())))]
        assert texts == [token]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--json", "[1, 2]"], "must be a JSON object"),
        (["--json", "{"], "is not valid JSON"),
        (["--json", "@/nonexistent/p.json"], "cannot read --json file"),
        (["--json", "{}", "--name", "A B"], "cannot be combined with --json"),
        (["--json", '{"v": []}', "--type", "test"], "does not match the payload"),
        ([], "--type is required"),
        (["--type", "test", "--dob", "01.01.1980"], "--dob must be YYYY-MM-DD"),
        (["--type", "test", "--dob", "1980-02-30"], "day is out of range"),
        (["--type", "test", "--name", " "], "name must not be empty"),
        (["--type", "test", "--qr", "/nonexistent/dir/x.png"], "cannot write"),
        (
            ["--json", json.dumps({"pad": _INCOMPRESSIBLE}), "--qr", "{tmp}/x.png"],
            "does not fit in a QR code",
        ),
    ],
)
def test_issue_errors(
    tmp_path: Path,
    issuer_dir: Path,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    message: str,
) -> None:
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    assert main(["issue", "--key", str(issuer_dir), *argv]) == 2
    assert list(tmp_path.iterdir()) == []
    captured = capsys.readouterr()
    assert message in captured.err
    assert captured.out == ""


def test_issue_bad_key_dir(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["issue", "--key", str(tmp_path), "--type", "test"]) == 2
    assert "issuer key not found" in capsys.readouterr().err
    assert main(["issue", "--type", "test"]) == 2  # --key missing
    assert main(["issue", "--key", str(tmp_path), "--type", "antibody"]) == 2
    capsys.readouterr()


def test_issue_exp_capped_to_certificate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "short"
    assert (
        main(
            ["keys", "new", "--country", "RU", "--out", str(out), "--days", "10", "--types", "test"]
        )
        == 0
    )
    cert = x509.load_pem_x509_certificate((out / "issuer.crt").read_bytes())
    capsys.readouterr()
    assert main(["issue", "--key", str(out), "--type", "test"]) == 0
    claims, _ = _claims(capsys.readouterr().out.strip())
    assert claims[4] == int(cert.not_valid_after_utc.timestamp())
    # a type outside the key usage is issued (for testing) but warned about
    assert main(["issue", "--key", str(out), "--type", "vaccination"]) == 0
    assert "may not sign vaccination" in capsys.readouterr().err
