"""`qrverify hashes` for several tokens prints one revocations file (JSON Lines entries)
that `verify --revocations` and `sync --revocations` read as it is, also from a pipe."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from engine_support import AT, ES, NOW, key_of, token
from redis_support import requires_redis

from keys.registry import TrustRegistry
from keys.samples import sample_dcc
from verifier.cli import main

QRVERIFY = [sys.executable, "-m", "verifier"]


@pytest.fixture(scope="module")
def tokens() -> list[str]:
    out = []
    for kind in ("vaccination", "test", "recovery", "vaccination"):
        out.append(token(dcc=sample_dcc(kind, at=NOW)))
    return out


@pytest.fixture
def trust(tmp_path: Path) -> Path:
    path = tmp_path / "trust.json"
    path.write_bytes(TrustRegistry([key_of(ES)]).to_json())
    return path


def verdicts(out: str) -> list[str | None]:
    return [json.loads(line)["reason"] for line in out.splitlines()]


def test_hashes_of_three_tokens_is_one_revocations_file(tokens, trust, tmp_path, capsys):
    revoke, other = tokens[:3], tokens[3]
    assert main(["hashes", "--only", "revoked", *revoke]) == 0
    out = capsys.readouterr().out
    assert len(out.splitlines()) == 9  # three entries a token (iss and co agree)
    rev = tmp_path / "rev.jsonl"
    rev.write_text(out)
    args = ["verify", "--trust", str(trust), "--rules", "none", "--at", AT.isoformat()]
    assert main([*args, "--revocations", str(rev), *tokens]) == 1
    assert verdicts(capsys.readouterr().out) == ["revoked", "revoked", "revoked", None]
    # without --only: the registry lines come too, still one readable file
    assert main(["hashes", *revoke]) == 0
    both = capsys.readouterr().out
    assert sum('"registry"' in line for line in both.splitlines()) == 3
    rev.write_text(both)
    assert main([*args, "--revocations", str(rev), *revoke, other]) == 1
    assert verdicts(capsys.readouterr().out) == ["revoked", "revoked", "revoked", None]


@pytest.mark.redis
@requires_redis
def test_hashes_piped_into_sync(tokens, trust, redis_server, tmp_path):
    revoke = tokens[:3]
    me = " ".join(shlex.quote(p) for p in QRVERIFY)
    script = (
        "set -o pipefail; "
        f"{me} hashes --only revoked {' '.join(shlex.quote(t) for t in revoke)} | "
        f"{me} sync --redis {redis_server.url} --trust {shlex.quote(str(trust))} "
        "--revocations /dev/stdin"
    )
    proc = subprocess.run(
        ["bash", "-c", script], capture_output=True, timeout=120, check=False, text=True
    )
    assert proc.returncode == 0, proc.stderr
    assert "revoked 9" in proc.stdout
    proc = subprocess.run(
        [
            *QRVERIFY,
            "verify",
            "--redis",
            redis_server.url,
            "--rules",
            "none",
            "--at",
            AT.isoformat(),
            *tokens,
        ],
        capture_output=True,
        timeout=120,
        check=False,
        text=True,
    )
    assert proc.returncode == 1, proc.stderr
    assert verdicts(proc.stdout) == ["revoked", "revoked", "revoked", None]
    # the same pipe again: nothing to do
    proc = subprocess.run(
        ["bash", "-c", script], capture_output=True, timeout=120, check=False, text=True
    )
    assert proc.returncode == 0 and "already up to date" in proc.stdout


def test_gzipped_and_json_inputs_from_a_pipe(tokens, trust, tmp_path):
    """A pipe cannot seek: the gzip and JSON forms are still told apart and read."""
    me = " ".join(shlex.quote(p) for p in QRVERIFY)
    at = AT.isoformat()
    first, last = shlex.quote(tokens[0]), shlex.quote(tokens[3])
    for producer in (
        f"{me} hashes --only revoked {first} | gzip -c",
        f"""{me} hashes --only revoked {first} | python3 -c 'import sys, json; """
        """print(json.dumps({"revoked": [json.loads(l) for l in sys.stdin]}))'""",
    ):
        script = (
            f"set -o pipefail; {producer} | {me} verify --trust {shlex.quote(str(trust))} "
            f"--rules none --at {at} --revocations /dev/stdin {first} {last}"
        )
        proc = subprocess.run(
            ["bash", "-c", script], capture_output=True, timeout=120, check=False, text=True
        )
        assert proc.returncode == 1, proc.stderr
        assert verdicts(proc.stdout) == ["revoked", None]
