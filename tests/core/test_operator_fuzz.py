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


# --- register records (JSON Lines, CSV) and value-set directories ------------------------


def _records_valid(directory: Path) -> tuple[bytes, bytes]:
    """Three records as JSON Lines and as CSV (the writer of keys/link_records.py)."""
    from keys.link_records import append_record, sample_record

    records = [
        sample_record("vaccination"),
        sample_record("recovery", name="Петров Пётр Петрович"),
        sample_record("test"),
    ]
    jsonl, csv_file = directory / "seed.jsonl", directory / "seed.csv"
    for rec in records:
        append_record(jsonl, rec)
        append_record(csv_file, rec)
    return jsonl.read_bytes(), csv_file.read_bytes()


def _records_record_mutations(seed: int, valid: bytes) -> Iterator[bytes]:
    """JSON Lines: one line's object with a wrong value; the byte-level mutations."""
    rng = random.Random(seed)
    lines = valid.splitlines()
    first = json.loads(lines[0])
    for field in sorted(first):  # every field once with every wrong value
        for wrong in _WRONG:
            bad = json.dumps({**first, field: wrong}).encode()
            yield b"\n".join([bad, *lines[1:]]) + b"\n"
    for _ in range(ROUNDS):
        i = rng.randrange(len(lines))
        doc = json.loads(lines[i])
        bad = json.dumps(_mutate_value(rng, doc), ensure_ascii=rng.random() < 0.5).encode()
        yield b"\n".join([*lines[:i], bad, *lines[i + 1 :]]) + b"\n"


def _byte_mutations(seed: int, valid: bytes) -> Iterator[bytes]:
    rng = random.Random(seed)
    yield from (
        b"\x00" * 10,
        b'"' * 5000 + b"\n",
        b"a,b\n" * 10,
        b"x" * 70_000 + b"\n",
        b"\xef\xbb\xbf",
        b"\n\n\n",
        b"{}\n",
        b"[]\n",
        valid + valid,
    )
    for _ in range(ROUNDS):
        choice = rng.random()
        data = bytearray(valid)
        if choice < 0.5:
            for _ in range(rng.randint(1, 4)):
                data[rng.randrange(len(data))] = rng.randrange(256)
        elif choice < 0.75:
            pos = rng.randrange(len(data))
            data[pos:pos] = rng.choice([b",", b'"', b"\n", b"\r", b"\x00", b"{", b";;", b"\xd0"])
        else:
            data = data[: rng.randrange(len(data))]
        yield bytes(data)


def _csv_cell_mutations(seed: int, valid: bytes) -> Iterator[bytes]:
    """CSV: one cell replaced by a wrong text (empty, long, control characters, ...)."""
    import csv
    import io

    rng = random.Random(seed)
    rows = list(csv.reader(io.StringIO(valid.decode())))
    cells = [
        "",
        " ",
        "x" * 300,
        "\x01",
        "2024-02-30",
        "99999-01-01",
        "9" * 40,
        "revoked ",
        "VACCINATION",
        "0" * 16,
        "g" * 32,
        "1970-01-01",
        "2106-12-31T00:00:00",
        "2024-01-01T00:00:00",
        "=cmd()",
        "\u202e",
    ]
    for _ in range(ROUNDS):
        out = [list(r) for r in rows]
        r = rng.randrange(len(out))
        c = rng.randrange(len(out[r]))
        out[r][c] = rng.choice(cells)
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerows(out)
        yield buf.getvalue().encode()


@pytest.mark.parametrize("kind", ["jsonl", "csv"])
def test_records_loader_raises_only_its_clean_error(kind: str, tmp_path: Path) -> None:
    from verifier.records import RecordsFileError, load_table

    jsonl, csv_bytes = _records_valid(tmp_path)
    valid = jsonl if kind == "jsonl" else csv_bytes
    assert len(load_table(_write(tmp_path / f"valid.{kind}", valid))) == 3
    structured = (
        _records_record_mutations(7, jsonl)
        if kind == "jsonl"
        else _csv_cell_mutations(7, csv_bytes)
    )
    path = tmp_path / f"f.{kind}"
    failures = loads = 0
    for data in [*structured, *_byte_mutations(sum(kind.encode()), valid)]:
        path.write_bytes(data)
        try:
            load_table(path)
        except RecordsFileError as exc:
            failures += 1
            message = str(exc)
            assert message and "\n" not in message and str(path) in message
        else:
            loads += 1
        # anything else (TypeError, UnicodeError, csv.Error, ...) fails the test
    assert failures > ROUNDS // 2  # the mutations really were malformed
    assert loads > 0  # and some (an empty file, a harmless byte) still load


def _valueset_dir(tmp_path: Path, name: str) -> Path:
    import shutil

    from verifier.valuesets import PACKAGED_DIR

    target = tmp_path / name
    shutil.copytree(PACKAGED_DIR, target)
    return target


def test_valueset_loader_raises_only_its_clean_error(tmp_path: Path) -> None:
    from verifier.valuesets import FILES, OPTIONAL_FILES, ValueSetError, load_valuesets

    base = _valueset_dir(tmp_path, "vs")
    load_valuesets(base)  # the seed directory itself loads
    names = sorted(n for n in [*FILES.values(), *OPTIONAL_FILES.values()] if (base / n).exists())
    seeds = {n: (base / n).read_bytes() for n in names}
    rng = random.Random(13)
    failures = 0
    for _ in range(ROUNDS):
        name = rng.choice(names)
        valid = seeds[name]
        if len(valid) > 200_000:  # keep the big device list cheap: a value-level change
            data = json.dumps(_mutate_value(rng, json.loads(valid))).encode()
        else:
            data = list(mutations(rng.randrange(1 << 30), valid))[rng.randrange(11 + ROUNDS)]
        (base / name).write_bytes(data)
        gone = rng.choice(sorted(FILES.values())) if rng.random() < 0.1 else None
        if gone:
            (base / gone).unlink()
        try:
            load_valuesets(base)
        except ValueSetError as exc:
            failures += 1
            assert str(exc) and "\n" not in str(exc)
        # anything else fails the test
        (base / name).write_bytes(valid)
        if gone:
            (base / gone).write_bytes(seeds[gone])
    for bad in (tmp_path / "missing", _write(tmp_path / "a-file", b"{}")):
        with pytest.raises(ValueSetError):
            load_valuesets(bad)
    assert failures > ROUNDS // 4


@pytest.mark.parametrize("what", ["records-jsonl", "records-csv", "valuesets"])
def test_verify_bad_records_or_valuesets_exit_2(
    what: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if what == "valuesets":
        bad = _valueset_dir(tmp_path, "vs")
        (bad / "vaccine-prophylaxis.json").write_bytes(b'{"valueSetValues": [1, 2]}')
        argv = ["verify", "--trust", str(TRUST_FILE), "--valuesets", str(bad), "x"]
    else:
        suffix = what.split("-")[1]
        content = b'{"id": []}\n' if suffix == "jsonl" else b"id,ck\n1,2\n"
        bad = _write(tmp_path / f"bad.{suffix}", content)
        argv = ["verify", "--trust", str(TRUST_FILE), "--records", str(bad), "x"]
    code = main(argv)
    captured = capsys.readouterr()
    assert code == 2 and captured.out == ""
    assert captured.err.count("\n") == 1 and captured.err.startswith("qrverify verify: ")
    assert "Traceback" not in captured.err
