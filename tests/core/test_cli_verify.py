"""`qrverify verify`: in process via verifier.cli.main, and as a real subprocess."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from vector_support import REVOCATIONS_FILE, TRUST_FILE, load_vectors

from verifier import cli

V = {v.name: v for v in load_vectors()}
VALID_AT = "2021-11-15T12:00:00Z"  # the default instant of the vectors


def _tokens(*names: str) -> list[str]:
    return [V[n].token for n in names]


def _lines(out: bytes) -> list[dict[str, Any]]:
    text = out.decode("utf-8")
    assert text == "" or text.endswith("\n")
    return [json.loads(line) for line in text.splitlines()]


def run_main(
    argv: list[str],
    capsysbinary: pytest.CaptureFixture[bytes],
    monkeypatch: pytest.MonkeyPatch,
    stdin: bytes | None = None,
) -> tuple[int, list[dict[str, Any]], str]:
    if stdin is not None:
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin)))
    code = cli.main(["verify", *argv])
    captured = capsysbinary.readouterr()
    return code, _lines(captured.out), captured.err.decode("utf-8")


BASE = ["--trust", str(TRUST_FILE), "--at", VALID_AT]


# -- in process ---------------------------------------------------------------------------


def test_args_all_valid_exit_0(capsysbinary: Any, monkeypatch: Any) -> None:
    names = ("valid_vaccination_es256", "valid_test_pcr", "valid_recovery")
    code, out, err = run_main([*BASE, *_tokens(*names)], capsysbinary, monkeypatch)
    assert code == 0
    assert [d["status"] for d in out] == ["valid"] * 3
    assert [d["certificate"]["type"] for d in out] == ["vaccination", "test", "recovery"]
    assert out[0]["holder"] == {
        "name": "Иванов Иван",
        "name_latin": "IVANOV<IVAN",
        "dob": "1980-01-01",
    }
    assert err == ""


def test_args_output_in_input_order_exit_1(capsysbinary: Any, monkeypatch: Any) -> None:
    names = (
        "bad_prefix_hc2",
        "valid_vaccination_ps256",
        "unknown_key_untrusted_issuer",
        "test_positive",
        "valid_vaccination_eddsa",
        "bad_cwt_exp_missing",
    )
    code, out, _ = run_main([*BASE, *_tokens(*names)], capsysbinary, monkeypatch)
    assert code == 1
    assert [d["reason"] for d in out] == [V[n].reason for n in names]
    for d in out:
        assert set(d) <= {"status", "reason", "detail", "holder", "certificate"}
        assert isinstance(d["detail"], str)
    assert "holder" not in out[0] and "holder" not in out[2]
    assert "holder" in out[3]  # signature verified, then refused by the rules


def test_stdin_one_per_line_spaces_kept_crlf(capsysbinary: Any, monkeypatch: Any) -> None:
    spaced = [
        v
        for v in V.values()
        if " " in v.token[4:]
        and v.reason is None
        and v.at_text == VALID_AT
        and v.rules == "venue"
        and v.revocations is None
    ]
    assert len(spaced) >= 3  # Base45 tokens with spaces inside
    t1, t2, t3 = (v.token for v in spaced[:3])
    data = (t1 + "\r\n" + t2 + "\n" + t3 + " \n" + t1).encode("ascii")
    code, out, _ = run_main(BASE, capsysbinary, monkeypatch, stdin=data)
    # line 3's trailing space goes too: surrounding whitespace is removed (CONTRACT 1)
    assert [d["reason"] for d in out] == [None, None, None, None]
    assert code == 0


def test_stdin_all_valid_exit_0(capsysbinary: Any, monkeypatch: Any) -> None:
    data = "\n".join(_tokens("valid_recovery", "valid_test_pcr")).encode() + b"\n"
    code, out, _ = run_main(BASE, capsysbinary, monkeypatch, stdin=data)
    assert code == 0
    assert [d["certificate"]["type"] for d in out] == ["recovery", "test"]


def test_stdin_empty_prints_nothing(capsysbinary: Any, monkeypatch: Any) -> None:
    code, out, _ = run_main(BASE, capsysbinary, monkeypatch, stdin=b"")
    assert (code, out) == (0, [])


def test_stdin_overlong_line_is_too_large_and_reading_continues(
    capsysbinary: Any, monkeypatch: Any
) -> None:
    data = b"HC1:" + b"0" * 100_000 + b"\n" + V["valid_test_pcr"].token.encode() + b"\n"
    code, out, _ = run_main(BASE, capsysbinary, monkeypatch, stdin=data)
    assert [d["reason"] for d in out] == ["too_large", None]
    assert code == 1


def test_stdin_binary_garbage(capsysbinary: Any, monkeypatch: Any) -> None:
    data = b"\xff\xfe\x00HC1\n" + b"HC1:\xd0\x96\xff\n" + b"\n"
    code, out, _ = run_main(BASE, capsysbinary, monkeypatch, stdin=data)
    assert [d["reason"] for d in out] == ["bad_prefix", "bad_base45", "bad_prefix"]
    assert code == 1


def test_at_changes_the_outcome(capsysbinary: Any, monkeypatch: Any) -> None:
    v = V["vaccination_365_days_plus_1s_expired"]
    ok = V["vaccination_365_days_exactly_valid"]
    assert v.token == ok.token
    code, out, _ = run_main(
        ["--trust", str(TRUST_FILE), "--at", ok.at_text, v.token], capsysbinary, monkeypatch
    )
    assert (code, out[0]["reason"]) == (0, None)
    code, out, _ = run_main(
        ["--trust", str(TRUST_FILE), "--at", v.at_text, v.token], capsysbinary, monkeypatch
    )
    assert (code, out[0]["reason"]) == (1, "vaccination_expired")
    # a naive --at means UTC; an offset is honoured
    naive = v.at_text.rstrip("Z")
    code, out, _ = run_main(
        ["--trust", str(TRUST_FILE), "--at", naive, v.token], capsysbinary, monkeypatch
    )
    assert out[0]["reason"] == "vaccination_expired"


def test_at_default_is_now(capsysbinary: Any, monkeypatch: Any) -> None:
    # the vectors lie in 2021-2022: today, their CWT has expired
    code, out, _ = run_main(
        ["--trust", str(TRUST_FILE), V["valid_recovery"].token], capsysbinary, monkeypatch
    )
    assert (code, out[0]["reason"]) == (1, "token_expired")


def test_rules_none_accepts_old_vaccination(capsysbinary: Any, monkeypatch: Any) -> None:
    token = V["vaccination_old_rules_none_valid"].token
    code, out, _ = run_main([*BASE, token], capsysbinary, monkeypatch)
    assert (code, out[0]["reason"]) == (1, "vaccination_expired")
    code, out, _ = run_main([*BASE, "--rules", "none", token], capsysbinary, monkeypatch)
    assert (code, out[0]["reason"]) == (0, None)


def test_rules_file(tmp_path: Path, capsysbinary: Any, monkeypatch: Any) -> None:
    rules = tmp_path / "rules.json"
    rules.write_text(json.dumps({"vaccination_days": 270}))
    token = V["vaccination_300_days_rules_270_expired"].token
    code, out, _ = run_main([*BASE, "--rules", str(rules), token], capsysbinary, monkeypatch)
    assert (code, out[0]["reason"]) == (1, "vaccination_expired")
    code, out, _ = run_main([*BASE, token], capsysbinary, monkeypatch)
    assert (code, out[0]["reason"]) == (0, None)


def test_revocations_file(capsysbinary: Any, monkeypatch: Any) -> None:
    names = (
        "revoked_uci",
        "registry_recovery_absent",
        "registry_recovery_present",
        "revoked_signature_es256_r_half",
    )
    code, out, _ = run_main(
        [*BASE, "--revocations", str(REVOCATIONS_FILE), *_tokens(*names)], capsysbinary, monkeypatch
    )
    assert [d["reason"] for d in out] == ["revoked", "not_in_registry", None, "revoked"]
    assert code == 1


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--trust", "/nonexistent/trust.json"], "trust"),
        ([], "--trust"),
        (["--trust", str(TRUST_FILE), "--at", "yesterday"], "--at"),
        (["--trust", str(TRUST_FILE), "--at", "2021-13-01"], "--at"),
        (["--trust", str(TRUST_FILE), "--rules", "/nonexistent/rules.json"], "rules"),
        (["--trust", str(TRUST_FILE), "--revocations", "/nonexistent/rev.json"], "rev"),
    ],
    ids=[
        "missing-trust",
        "no-trust",
        "bad-at",
        "bad-at-month",
        "missing-rules",
        "missing-revocations",
    ],
)
def test_configuration_errors_exit_2(
    argv: list[str], message: str, capsysbinary: Any, monkeypatch: Any
) -> None:
    code, out, err = run_main([*argv, V["valid_test_pcr"].token], capsysbinary, monkeypatch)
    assert code == 2
    assert out == []
    assert message in err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    "content",
    [
        b"{not json",
        b'{"vaccination_days": "365"}',
        b'{"unknown_knob": 1}',
        b"[]",
        b'{"vaccination_days": 0}',
    ],
    ids=["invalid-json", "string-days", "unknown-knob", "not-an-object", "zero-days"],
)
def test_bad_rules_file_exit_2(
    content: bytes, tmp_path: Path, capsysbinary: Any, monkeypatch: Any
) -> None:
    rules = tmp_path / "rules.json"
    rules.write_bytes(content)
    code, out, err = run_main(
        [*BASE, "--rules", str(rules), V["valid_test_pcr"].token], capsysbinary, monkeypatch
    )
    assert (code, out) == (2, [])
    assert err.startswith("qrverify verify: ") and "Traceback" not in err


def test_bad_trust_file_exit_2(tmp_path: Path, capsysbinary: Any, monkeypatch: Any) -> None:
    bad = tmp_path / "trust.json"
    bad.write_text('{"keys": [{"certificate": "!!!", "country": "RU"}]}')
    code, out, err = run_main(
        ["--trust", str(bad), V["valid_test_pcr"].token], capsysbinary, monkeypatch
    )
    assert (code, out) == (2, [])
    assert "keys[0]" in err


def test_unknown_option_exit_2(capsysbinary: Any, monkeypatch: Any) -> None:
    code, out, _ = run_main([*BASE, "--no-such-option"], capsysbinary, monkeypatch)
    assert (code, out) == (2, [])


# -- a real process of the installed command ----------------------------------------------


def _command() -> list[str]:
    exe = shutil.which("qrverify")
    return [exe] if exe else [sys.executable, "-m", "verifier"]


def _run(args: list[str], stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    env = dict(os.environ)
    env.pop("PYTHONWARNINGS", None)
    return subprocess.run(
        [*_command(), "verify", *args],
        input=stdin,
        capture_output=True,
        timeout=120,
        env=env,
        check=False,
    )


@pytest.mark.slow
def test_subprocess_args_stdin_and_exit_codes() -> None:
    names = ("valid_vaccination_es256", "kid_protected_wrong_unprotected_right", "valid_test_pcr")
    proc = _run([*BASE, *_tokens(*names)])
    assert proc.returncode == 1, proc.stderr
    assert [d["reason"] for d in _lines(proc.stdout)] == [V[n].reason for n in names]

    stdin = "\r\n".join(_tokens("valid_recovery", "valid_vaccination_eddsa")).encode() + b"\r\n"
    proc = _run(BASE, stdin)
    assert proc.returncode == 0, proc.stderr
    out = _lines(proc.stdout)
    assert [(d["status"], d["certificate"]["type"]) for d in out] == [
        ("valid", "recovery"),
        ("valid", "vaccination"),
    ]

    proc = _run(["--trust", "/nonexistent.json", V["valid_test_pcr"].token])
    assert proc.returncode == 2
    assert proc.stdout == b""
    assert b"Traceback" not in proc.stderr

    proc = _run([*BASE, "--rules", "none", V["vaccination_old_rules_none_valid"].token])
    assert proc.returncode == 0, proc.stderr


def test_leeway_option_widens_the_clock_skew(tmp_path: Path) -> None:
    """--leeway sets the iat/exp tolerance (default 300 s); a bad value is a usage error."""
    from datetime import UTC, datetime

    from keys.issuer import Issuer
    from keys.samples import sample_dcc
    from keys.token import issue_token
    from verifier.cli import main as cli_main

    now = 1_700_000_000
    issuer = Issuer.generate(country="RU", alg="ES256", not_before=now - 86400)
    trust = tmp_path / "trust.json"
    trust.write_text(json.dumps({"keys": [issuer.trust_entry()]}))
    token = issue_token(issuer, sample_dcc("vaccination", at=now), iat=now - 60, exp=now)
    at = datetime.fromtimestamp(now + 400, UTC).isoformat()
    base = ["verify", "--trust", str(trust), "--rules", "none", "--at", at]
    assert cli_main([*base, token]) == 1  # 400 s past exp: outside the default 300 s
    assert cli_main([*base, "--leeway", "600", token]) == 0
    assert cli_main([*base, "--leeway", "-1", token]) == 2
