"""The command layer (verifier/commands/): one error line, exit codes, QRVERIFY_* variables
for every command, --version, the common error base, `hashes`."""

from __future__ import annotations

import base64
import hashlib
import importlib
import json
import os
import shutil
import subprocess
import sys
import time
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest
from redis_support import redis_server  # noqa: F401  (fixture)
from vector_support import TRUST_FILE, load_vectors

from verifier.cli import main
from verifier.commands import COMMANDS
from verifier.errors import QrverifyError

V = {v.name: v for v in load_vectors()}
VALID_AT = "2021-11-15T12:00:00Z"
TOKEN = V["valid_test_pcr"].token


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _one_error_line(err: str, command: str) -> None:
    assert err.startswith(f"qrverify {command}: ") and err.endswith("\n"), err
    assert err.count("\n") == 1 and "Traceback" not in err


# -- structure ---------------------------------------------------------------------------


def test_every_command_is_a_module_with_add_arguments_and_run() -> None:
    assert set(COMMANDS) == {"serve", "verify", "keys", "issue", "sync", "hashes"}
    for name in COMMANDS:
        module = importlib.import_module(f"verifier.commands.{name}")
        assert callable(module.add_arguments) and callable(module.run)


def test_the_project_errors_share_one_base() -> None:
    from keys.issuer import IssuerError
    from keys.registry import TrustFileError
    from verifier.commands._common import CommandError, OptionError
    from verifier.core import ConfigError
    from verifier.http.auth import ApiKeyFileError
    from verifier.http.config import ServeConfigError
    from verifier.revocations import RevocationFileError
    from verifier.rules import RulesError
    from verifier.store import StoreUnavailable

    for cls in (
        IssuerError,
        TrustFileError,
        CommandError,
        OptionError,
        ConfigError,
        ApiKeyFileError,
        ServeConfigError,
        RevocationFileError,
        RulesError,
        StoreUnavailable,
    ):
        assert issubclass(cls, QrverifyError), cls
    # the old bases stay, for callers that catch them
    assert issubclass(TrustFileError, ValueError) and issubclass(StoreUnavailable, RuntimeError)


def test_read_capped_enforces_its_cap(tmp_path: Path) -> None:
    from keys._files import read_capped

    path = tmp_path / "f"
    path.write_bytes(b"x" * 11)
    assert read_capped(path, 11, "test file", ValueError) == b"x" * 11
    with pytest.raises(ValueError, match="test file .* is larger than 10 bytes"):
        read_capped(path, 10, "test file", ValueError)


# -- --version, usage --------------------------------------------------------------------


def test_version_from_package_metadata(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run(capsys, "--version")
    assert (code, out, err) == (0, f"qrverify {version('qrverify')}\n", "")


def test_usage_and_unknown_command(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "--help")
    assert code == 0 and "hashes" in out
    code, _, err = _run(capsys, "frobnicate")
    assert code == 2 and "unknown command 'frobnicate'" in err


# -- one error format, exit 2 -------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "command", "message"),
    [
        (["verify", "--trust", "/nonexistent/t.json", TOKEN], "verify", "trust file not found"),
        (["verify", "--leeway", "x", TOKEN], "verify", "--leeway: not an integer"),
        (
            ["verify", "--trust", str(TRUST_FILE), "--namespace", "a b", TOKEN],
            "verify",
            "--namespace: 1-64 characters",
        ),
        (
            ["keys", "new", "--country", "RUS", "--out", "/nonexistent/x"],
            "keys new",
            "two upper-case letters",
        ),
        (
            ["issue", "--key", "/nonexistent/x", "--type", "test"],
            "issue",
            "issuer directory not found",
        ),
        (["sync", "--trust", str(TRUST_FILE)], "sync", "--redis URL is required"),
        (["serve", "--port", "0"], "serve", "--port: 0 is outside 1..65535"),
        (["serve"], "serve", "no issuer keys"),
    ],
)
def test_errors_are_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str], argv: list[str], command: str, message: str
) -> None:
    code, out, err = _run(capsys, *argv)
    assert code == 2 and out == ""
    _one_error_line(err, command)
    assert message in err


# -- QRVERIFY_* for every command; flags win ---------------------------------------------


def test_verify_reads_qrverify_variables(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("QRVERIFY_TRUST", str(TRUST_FILE))
    monkeypatch.setenv("QRVERIFY_RULES", "none")
    code, out, err = _run(capsys, "verify", "--at", VALID_AT, TOKEN)
    assert (code, err) == (0, "")
    assert json.loads(out)["status"] == "valid"
    # a flag wins over the variable
    code, _, err = _run(capsys, "verify", "--trust", "/nonexistent/t.json", TOKEN)
    assert code == 2 and "/nonexistent/t.json" in err
    # a bad variable is named
    monkeypatch.setenv("QRVERIFY_LEEWAY", "-3")
    code, _, err = _run(capsys, "verify", "--at", VALID_AT, TOKEN)
    assert code == 2 and "QRVERIFY_LEEWAY: -3 is outside 0..86400" in err
    code, _, err = _run(capsys, "verify", "--leeway", "10", "--at", VALID_AT, TOKEN)
    assert code == 0


def test_sync_reads_the_redis_url_variable(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # an unreachable loopback port: the variable was read (a Redis error: one line, exit 2)
    monkeypatch.setenv("QRVERIFY_REDIS_URL", "redis://127.0.0.1:1/0")
    code, _, err = _run(capsys, "sync", "--trust", str(TRUST_FILE))
    _one_error_line(err, "sync")
    assert code == 2 and "network: cannot reach Redis" in err
    assert "(Redis at redis://127.0.0.1:1/0)" in err


def test_serve_and_verify_build_the_verifier_in_one_place(
    monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    import verifier.commands._common as common

    seen: list[tuple[str, Any]] = []
    real = common.build_verifier

    def spy(opts: Any, **kw: Any) -> Any:
        seen.append((type(opts).__name__, opts.namespace))
        return real(opts, **kw)

    monkeypatch.setattr(common, "build_verifier", spy)
    import verifier.commands.verify as verify_cmd

    monkeypatch.setattr(verify_cmd, "build_verifier", spy)
    assert (
        main(
            ["verify", "--trust", str(TRUST_FILE), "--namespace", "venueA", "--at", VALID_AT, TOKEN]
        )
        == 0
    )
    assert seen == [("VerifyOptions", "venueA")]


# -- `issue` reads the clock once ---------------------------------------------------------


def test_issue_reads_the_clock_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A clock that ticks a second on every read: iat, exp and the sample's dates still
    come from one instant (exp - iat is exactly the token lifetime)."""
    import cbor2

    from keys import base45
    from verifier.commands.issue import TOKEN_LIFETIME

    out = tmp_path / "long"
    assert main(["keys", "new", "--country", "ru", "--out", str(out), "--days", "800"]) == 0
    capsys.readouterr()
    start = time.time()
    ticks = iter(range(10_000))
    monkeypatch.setattr(time, "time", lambda: start + next(ticks))
    assert main(["issue", "--key", str(out), "--type", "test"]) == 0
    monkeypatch.undo()
    import zlib

    token = capsys.readouterr().out.strip()
    cose = cbor2.loads(zlib.decompress(base45.decode(token[4:])))
    claims = cbor2.loads(cose.value[2])
    assert claims[4] - claims[6] == TOKEN_LIFETIME
    assert claims[1] == "RU"  # --country ru was accepted, upper-cased


# -- hashes ------------------------------------------------------------------------------


def _h(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()[:16]).decode("ascii")


def test_hashes_prints_revocation_file_entries(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    import zlib

    import cbor2

    from keys import base45

    code, out, err = _run(capsys, "hashes", TOKEN, "HC1:NOT*BASE45~")
    assert code == 1 and err == "qrverify hashes: token 2: bad_base45\n"
    lines = [json.loads(line) for line in out.splitlines()]
    cose = cbor2.loads(zlib.decompress(base45.decode(TOKEN[4:])))
    claims = cbor2.loads(cose.value[2])
    ci = claims[-260][1]["t"][0]["ci"]
    country = claims.get(1) or claims[-260][1]["t"][0]["co"]
    signature = cose.value[3]
    expected = [
        {"type": "UCI", "hash": _h(ci.encode())},
        {"type": "COUNTRYCODEUCI", "hash": _h(country.encode() + ci.encode())},
    ]
    co = claims[-260][1]["t"][0]["co"]
    if claims.get(1) and claims[1] != co:
        expected.append({"type": "COUNTRYCODEUCI", "hash": _h(co.encode() + ci.encode())})
    expected.append({"type": "SIGNATURE", "hash": _h(signature[: len(signature) // 2])})
    assert lines == [*expected, {"registry": _h(ci.encode())}]  # JSON Lines entries
    # the output is a revocations file the verifier reads: the token is then revoked
    rev = tmp_path / "rev.jsonl"
    rev.write_text(out)
    code, out, _ = _run(
        capsys,
        "verify",
        "--trust",
        str(TRUST_FILE),
        "--revocations",
        str(rev),
        "--at",
        VALID_AT,
        TOKEN,
    )
    assert code == 1 and json.loads(out)["reason"] == "revoked"


def test_hashes_reads_stdin_with_input_hygiene(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import io

    code, want, _ = _run(capsys, "hashes", TOKEN)
    assert code == 0
    stdin = ("\ufeff hc1:" + TOKEN[4:] + " \r\nHC1%3A" + TOKEN[4:] + "\n").encode("utf-8")
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin)))
    code, out, _ = _run(capsys, "hashes")
    assert code == 0 and out == want + want


# -- a real process ----------------------------------------------------------------------


def _command() -> list[str]:
    exe = shutil.which("qrverify")
    return [exe] if exe else [sys.executable, "-m", "verifier"]


def test_subprocess_version_env_and_error_line(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("QRVERIFY_")}
    proc = subprocess.run(
        [*_command(), "--version"], capture_output=True, timeout=120, env=env, check=False
    )
    assert proc.returncode == 0 and proc.stdout.decode() == f"qrverify {version('qrverify')}\n"
    env["QRVERIFY_TRUST"] = str(tmp_path / "missing.json")
    proc = subprocess.run(
        [*_command(), "verify", TOKEN], capture_output=True, timeout=120, env=env, check=False
    )
    assert proc.returncode == 2 and proc.stdout == b""
    assert proc.stderr.decode() == (
        f"qrverify verify: trust file not found: {tmp_path / 'missing.json'}\n"
    )
    proc = subprocess.run(
        [*_command(), "hashes", TOKEN], capture_output=True, timeout=120, env=env, check=False
    )
    assert proc.returncode == 0
    assert {tuple(sorted(json.loads(line))) for line in proc.stdout.splitlines()} == {
        ("hash", "type"),
        ("registry",),
    }


# -- --namespace: serve/verify read what sync wrote ----------------------------------------


def test_verify_reads_the_namespace_sync_wrote(
    redis_server: Any,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    url = redis_server.url
    assert (
        main(
            [
                "sync",
                "--redis",
                url,
                "--trust",
                str(TRUST_FILE),
                "--namespace",
                "venueA",
                "--bootstrap",
            ]
        )
        == 0
    )
    assert "published version" in capsys.readouterr().out
    code, out, err = _run(
        capsys, "verify", "--redis", url, "--namespace", "venueA", "--at", VALID_AT, TOKEN
    )
    assert (code, err) == (0, "") and json.loads(out)["status"] == "valid"
    # the default namespace holds nothing: a configuration error, one line
    code, out, err = _run(capsys, "verify", "--redis", url, "--at", VALID_AT, TOKEN)
    assert code == 2 and out == ""
    _one_error_line(err, "verify")
    assert "holds no qrverify data" in err


def test_sync_strict_and_skipped_entries(
    redis_server: Any,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    doc = json.loads(TRUST_FILE.read_text())
    doc["keys"].append({"certificate": "!!", "country": "FI"})
    trust = tmp_path / "trust.json"
    trust.write_text(json.dumps(doc))
    url = redis_server.url
    assert main(["sync", "--redis", url, "--trust", str(trust), "--strict"]) == 2
    err = capsys.readouterr().err
    _one_error_line(err, "sync")
    assert "nothing written" in err and "keys[" in err
    assert redis_server.client().dbsize() == 0
    assert main(["sync", "--redis", url, "--trust", str(trust), "--bootstrap"]) == 0
    captured = capsys.readouterr()
    assert captured.err.startswith("qrverify sync: warning: trust file: keys[")
    assert f"keys {len(doc['keys']) - 1}," in captured.out


def test_unknown_rules_profile_lists_the_profiles(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run(capsys, "verify", "--trust", str(TRUST_FILE), "--rules", "venu", TOKEN)
    assert code == 2 and out == ""
    _one_error_line(err, "verify")
    assert "--rules: 'venu' is neither a profile (" in err
    assert "none" in err and "venue" in err
