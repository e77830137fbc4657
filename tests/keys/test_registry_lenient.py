"""Trust registry leniency (CONTRACT section 4, issue 9): entries without a country,
issuer certificates that are not strict DER, unusable entries skipped and counted,
--strict making them fatal."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from nonder_certs import (
    EU_RECOVERY,
    EU_TEST,
    EU_VACCINATION,
    Made,
    basic_constraints_explicit_false,
    certificate,
    eku,
    extension,
    finnish_style,
    octets,
    oid,
    seq,
    tlv,
)

from keys._der import DerError, eku_oids
from keys._x509 import cert_kid
from keys.issuer import Issuer
from keys.registry import TrustFileError, TrustRegistry
from keys.samples import sample_dcc
from keys.token import issue_token
from verifier import Verifier
from verifier.cli import main

OID_EKU = "2.5.29.37"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def cert_entry(made: Made, **extra: Any) -> dict[str, Any]:
    return {"certificate": b64(made.der), **extra}


def signer(made: Made, country: str = "FI") -> Issuer:
    cert = x509.load_der_x509_certificate(made.der)
    return Issuer(made.key, cert, cert_kid(made.der), "ES256", country)


def token(made: Made, cert_type: str = "vaccination") -> str:
    now = int(time.time())
    return issue_token(
        signer(made), sample_dcc(cert_type, at=now, country="FI"), iat=now, exp=now + 86400
    )


def write_trust(path: Path, entries: list[dict[str, Any]]) -> Path:
    path.write_text(json.dumps({"keys": entries}))
    return path


# -- the generator really makes what cryptography refuses ---------------------------------


def test_generated_certificate_is_not_strict_der() -> None:
    made = finnish_style(EU_VACCINATION)
    cert = x509.load_der_x509_certificate(made.der)  # loads...
    with pytest.raises(ValueError, match="EncodedDefault|parsing"):
        _ = cert.extensions  # ...but its extensions are refused
    assert eku_oids(made.der) == [EU_VACCINATION]


# -- non-DER certificates load, with their key usage ------------------------------------


def test_non_der_certificate_loads_with_its_key_usage() -> None:
    made = finnish_style(EU_VACCINATION, EU_RECOVERY)
    (key,) = TrustRegistry.from_dict({"keys": [cert_entry(made)]}, strict=True)
    assert key.types == frozenset({"vaccination", "recovery"})
    assert key.country == "FI"  # from the subject's C=
    assert (key.not_before, key.not_after) == (made.not_before, made.not_after)
    assert key.kid == cert_kid(made.der) and key.certificate_der == made.der


def test_non_der_certificate_verifies_and_its_key_usage_is_enforced(tmp_path: Path) -> None:
    made = finnish_style(EU_VACCINATION)
    trust = write_trust(tmp_path / "trust.json", [cert_entry(made)])
    verifier = Verifier.from_files(trust, rules="none")
    assert verifier.verify(token(made, "vaccination")).reason is None
    # not failing open: the key usage was read, so a test certificate is refused
    refused = verifier.verify(token(made, "test"))
    assert refused.reason is not None and refused.to_dict()["status"] == "invalid"


def test_non_der_certificate_without_key_usage_signs_every_type(tmp_path: Path) -> None:
    made = certificate([basic_constraints_explicit_false()])
    (key,) = TrustRegistry.from_dict({"keys": [cert_entry(made)]})
    assert key.types is None
    made2 = certificate([basic_constraints_explicit_false(), eku("1.3.6.1.5.5.7.3.2")])
    (key2,) = TrustRegistry.from_dict({"keys": [cert_entry(made2)]})
    assert key2.types is None  # an EKU without EU OIDs: all types (HCERT)


@pytest.mark.parametrize(
    "bad_eku",
    [
        extension(OID_EKU, b"\x30\x05\x06\x03\x2b"),  # truncated inside
        extension(OID_EKU, b"\x30\x80\x06\x01\x2b\x00\x00"),  # indefinite length
        extension(OID_EKU, seq()),  # empty
        extension(OID_EKU, seq(octets(b"x"))),  # not OIDs
        extension(OID_EKU, b"\x30\x03\x06\x01\xab"),  # OID ends mid-arc
    ],
    ids=["truncated", "indefinite", "empty", "not-oids", "bad-oid"],
)
def test_unreadable_key_usage_skips_the_entry(bad_eku: bytes) -> None:
    """Never fail open: an unreadable EKU must not become "all types"."""
    made = certificate([basic_constraints_explicit_false(), bad_eku])
    good = finnish_style(EU_TEST)
    doc = {"keys": [cert_entry(good), cert_entry(made)]}
    registry = TrustRegistry.from_dict(doc)
    assert [k.kid for k in registry] == [cert_kid(good.der)]
    (line,) = registry.skipped
    assert line.startswith(
        "trust file: keys[1]: the certificate's extended key usage cannot be read: "
    )
    assert line.endswith(f" (kid {b64(cert_kid(made.der))})")
    with pytest.raises(TrustFileError, match=r"keys\[1\]"):
        TrustRegistry.from_dict(doc, strict=True)
    with pytest.raises(TrustFileError, match="no usable key left"):
        TrustRegistry.from_dict({"keys": [cert_entry(made)]})


def test_repeated_key_usage_is_unreadable() -> None:
    made = certificate([basic_constraints_explicit_false(), eku(EU_TEST), eku(EU_VACCINATION)])
    with pytest.raises(DerError, match="twice"):
        eku_oids(made.der)


def test_lenient_reader_accepts_non_minimal_lengths() -> None:
    # the EKU value with a long-form length where a short one would do
    inner = oid(EU_RECOVERY)
    value = b"\x30\x81" + bytes([len(inner)]) + inner
    made = certificate([basic_constraints_explicit_false(), extension(OID_EKU, value)])
    assert eku_oids(made.der) == [EU_RECOVERY]
    assert eku_oids(certificate(None).der) is None  # no extensions at all
    with pytest.raises(DerError):
        eku_oids(b"\x30\x84\xff\xff\xff\xff")
    with pytest.raises(DerError):
        eku_oids(tlv(0x30, b""))


# -- country ---------------------------------------------------------------------------


def test_country_from_subject_or_none() -> None:
    with_c = finnish_style(EU_TEST)
    without_c = certificate([basic_constraints_explicit_false()], country=None)
    lower_c = certificate(None, country="fi")
    registry = TrustRegistry.from_dict(
        {
            "keys": [
                cert_entry(with_c),
                cert_entry(without_c),
                cert_entry(lower_c),
                cert_entry(with_c, country="SE"),  # an explicit country wins
            ]
        },
        strict=True,
    )
    assert [k.country for k in registry] == ["FI", None, "FI", "SE"]


def test_public_key_entry_without_country(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization

    made = finnish_style(EU_TEST)
    spki = made.key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    (key,) = TrustRegistry.from_dict(
        {"keys": [{"public_key": b64(spki), "kid": b64(cert_kid(made.der))}]}
    )
    assert key.country is None and key.types is None


# -- the commands: warnings, --strict, counts on /readyz and /metrics ------------------


def _mixed(tmp_path: Path) -> tuple[Path, Made, str]:
    good = finnish_style(EU_VACCINATION)
    bad = certificate([basic_constraints_explicit_false(), extension(OID_EKU, b"\x30\x01")])
    trust = write_trust(
        tmp_path / "trust.json",
        [cert_entry(good), cert_entry(bad), {"certificate": "!!", "country": "FI"}],
    )
    return trust, good, b64(cert_kid(bad.der))


def test_verify_warns_about_skipped_entries_and_strict_is_fatal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    trust, good, bad_kid = _mixed(tmp_path)
    tok = token(good)
    assert main(["verify", "--trust", str(trust), "--rules", "none", tok]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["status"] == "valid"
    lines = captured.err.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("qrverify verify: warning: trust file: keys[1]: ")
    assert lines[0].endswith(f" (kid {bad_kid}); entry skipped (--strict makes this fatal)")
    assert lines[1].startswith("qrverify verify: warning: trust file: keys[2]: ")
    assert lines[1].endswith("is not valid base64; entry skipped (--strict makes this fatal)")
    assert b64(good.der)[:40] not in captured.err and tok[:40] not in captured.err

    assert main(["verify", "--trust", str(trust), "--strict", tok]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("qrverify verify: trust file: keys[1]")
    monkeypatch.setenv("QRVERIFY_STRICT", "1")
    assert main(["verify", "--trust", str(trust), tok]) == 2
    capsys.readouterr()


def test_skipped_count_on_readyz_and_metrics(tmp_path: Path) -> None:
    from starlette.testclient import TestClient

    from verifier.commands._common import build_verifier
    from verifier.http.config import ServeConfig
    from verifier.http.serve import build_app

    trust, _, _ = _mixed(tmp_path)
    cfg = ServeConfig(trust=str(trust), log_level="warning")
    verifier = build_verifier(cfg)
    assert verifier.status()["counts"]["skipped_keys"] == 2
    assert verifier.status()["counts"]["keys"] == 1
    with TestClient(build_app(cfg, verifier)) as client:
        ready = client.get("/readyz")
        assert ready.status_code == 200
        assert ready.json()["counts"]["skipped_keys"] == 2
        metrics = client.get("/metrics").text
        assert 'qrverify_trust_skipped_keys{source="files"} 2' in metrics.splitlines()


def test_keys_trust_accepts_non_der_and_country_less_certificates(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fi = finnish_style(EU_TEST)
    anon = certificate([basic_constraints_explicit_false()], country=None)
    (tmp_path / "fi.der").write_bytes(fi.der)
    (tmp_path / "anon.der").write_bytes(anon.der)
    assert main(["keys", "trust", str(tmp_path / "fi.der"), str(tmp_path / "anon.der")]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc == {
        "keys": [{"certificate": b64(fi.der), "country": "FI"}, {"certificate": b64(anon.der)}]
    }


@pytest.mark.slow
def test_subprocess_serve_strict_exits_2(tmp_path: Path) -> None:
    trust, _, _ = _mixed(tmp_path)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "verifier",
            "serve",
            "--trust",
            str(trust),
            "--strict",
            "--port",
            "1",
        ],
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 2 and proc.stdout == b""
    err = proc.stderr.decode()
    assert err.startswith("qrverify serve: trust file: keys[1]") and err.count("\n") == 1
