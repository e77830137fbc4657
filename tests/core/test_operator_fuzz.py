"""Malformed operator files (issue 10 point 7): every loader answers with its own error
class (a QrverifyError), and the commands with one line and exit 2, never a traceback.

Mutations of valid files, seeded and bounded: wrong types, deep nesting, huge numbers,
bad base64, truncation, bytes flipped.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from vector_support import REVOCATIONS_FILE, TRUST_FILE

from verifier.cli import main
from verifier.errors import QrverifyError

ROUNDS = 60  # per loader; bounded so the quick tier stays quick
_WRONG: list[Any] = [
    None,
    True,
    0,
    -1,
    10**400,
    1.5e308,
    "",
    "x" * 300,
    [],
    {},
    [[]],
    {"a": {}},
    "!!!!",
    "AAAA",
    ["UCI"],
    {"type": "UCI"},
]


def _mutate_value(rng: random.Random, obj: Any, depth: int = 0) -> Any:
    """A copy of obj with one value somewhere replaced by a wrong one."""
    if isinstance(obj, dict) and obj and depth < 6 and rng.random() < 0.8:
        key = rng.choice(sorted(obj))
        return {**obj, key: _mutate_value(rng, obj[key], depth + 1)}
    if isinstance(obj, list) and obj and depth < 6 and rng.random() < 0.8:
        i = rng.randrange(len(obj))
        return obj[:i] + [_mutate_value(rng, obj[i], depth + 1)] + obj[i + 1 :]
    return rng.choice(_WRONG)


def mutations(seed: int, valid: bytes) -> Iterator[bytes]:
    rng = random.Random(seed)
    doc = json.loads(valid)
    fixed = [
        b"",
        b"{",
        b"[" * 50_000,
        b'{"a":' * 20_000,
        b"\xff\xfe",
        b"null",
        b"[]",
        b"1e999999",
        b'"' + b"A" * 1000,
        valid[: len(valid) // 2],
        valid + b"garbage",
    ]
    yield from fixed
    for _ in range(ROUNDS):
        choice = rng.random()
        if choice < 0.6:
            yield json.dumps(_mutate_value(rng, doc)).encode()
        elif choice < 0.8:
            data = bytearray(valid)
            for _ in range(rng.randint(1, 4)):
                data[rng.randrange(len(data))] = rng.randrange(256)
            yield bytes(data)
        else:
            yield valid[: rng.randrange(len(valid))]


def _api_keys_valid() -> bytes:
    return json.dumps({"keys": [{"name": "gate-1", "key": "s" * 32}]}).encode()


def _rules_valid() -> bytes:
    return json.dumps({"vaccination_days": 365}).encode()


def _loaders() -> dict[str, tuple[Callable[[Path], Any], bytes]]:
    from keys.registry import TrustRegistry
    from verifier.http.auth import ApiKeys
    from verifier.revocations import load_revocations
    from verifier.rules import load as load_rules

    return {
        "trust": (TrustRegistry.from_file, TRUST_FILE.read_bytes()),
        "revocations": (load_revocations, REVOCATIONS_FILE.read_bytes()),
        "rules": (load_rules, _rules_valid()),
        "api_keys": (ApiKeys.from_file, _api_keys_valid()),
    }


@pytest.mark.parametrize("name", ["trust", "revocations", "rules", "api_keys"])
def test_loaders_raise_only_their_clean_error(name: str, tmp_path: Path) -> None:
    loader, valid = _loaders()[name]
    loader(_write(tmp_path / "valid.json", valid))  # the seed file itself loads
    path = tmp_path / "f.json"
    failures = 0
    for data in mutations(sum(name.encode()), valid):
        path.write_bytes(data)
        try:
            loader(path)
        except QrverifyError as exc:
            failures += 1
            assert "\n" not in str(exc) and str(exc)
        # anything else (TypeError, RecursionError, KeyError...) fails the test
    assert failures > ROUNDS // 4  # the mutations really were malformed


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(
    ("argv", "content"),
    [
        (
            ["verify", "--trust", str(TRUST_FILE), "--revocations", "{f}", "x"],
            b'{"revoked":[{"type":["UCI"],"hash":"AAAAAAAAAAAAAAAAAAAAAA=="}]}',
        ),
        (["verify", "--trust", str(TRUST_FILE), "--rules", "{f}", "x"], b"[" * 50_000),
        (["verify", "--trust", "{f}", "x"], b"[" * 50_000),
        (
            ["serve", "--trust", str(TRUST_FILE), "--revocations", "{f}", "--port", "1"],
            b'{"revoked":[{"type":["UCI"],"hash":"AAAAAAAAAAAAAAAAAAAAAA=="}]}',
        ),
        (["serve", "--trust", str(TRUST_FILE), "--rules", "{f}", "--port", "1"], b"[" * 50_000),
        (["serve", "--trust", str(TRUST_FILE), "--api-keys", "{f}", "--port", "1"], b"[" * 50_000),
        (
            ["sync", "--redis", "redis://127.0.0.1:1/0", "--revocations", "{f}"],
            b'{"revoked":[{"type":["UCI"],"hash":"AAAAAAAAAAAAAAAAAAAAAA=="}]}',
        ),
        (["sync", "--redis", "redis://127.0.0.1:1/0", "--trust", "{f}"], b'{"keys": [[[]]]}'),
    ],
    ids=[
        "verify-rev",
        "verify-rules",
        "verify-trust",
        "serve-rev",
        "serve-rules",
        "serve-api-keys",
        "sync-rev",
        "sync-trust",
    ],
)
def test_commands_answer_one_line_exit_2(
    argv: list[str], content: bytes, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    f = _write(tmp_path / "f.json", content)
    code = main([a.replace("{f}", str(f)) for a in argv])
    captured = capsys.readouterr()
    assert code == 2 and captured.out == ""
    assert captured.err.count("\n") == 1 and captured.err.startswith(f"qrverify {argv[0]}: ")
    assert "Traceback" not in captured.err
