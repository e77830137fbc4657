"""The strict revocation / registry file parser."""

from __future__ import annotations

import base64
import os

import orjson
import pytest

from verifier.revocations import (
    RevocationFileError,
    load_revocations,
    parse_revocations,
)

H = [os.urandom(16) for _ in range(4)]


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def test_parses_all_three_types_and_registry():
    doc = {
        "revoked": [
            {"type": "UCI", "hash": b64(H[0])},
            {"type": "COUNTRYCODEUCI", "hash": b64(H[1])},
            {"type": "SIGNATURE", "hash": b64(H[2])},
        ],
        "registry": [b64(H[3])],
    }
    r = parse_revocations(orjson.dumps(doc))
    assert r.revoked == H[0] + H[1] + H[2]
    assert r.type_counts == {"UCI": 1, "COUNTRYCODEUCI": 1, "SIGNATURE": 1}
    assert r.registry == H[3] and r.registry_count == 1 and r.revoked_count == 3


def test_registry_absent_vs_empty():
    assert parse_revocations(b'{"revoked": []}').registry is None
    assert parse_revocations(b'{"registry": []}').registry == b""
    assert parse_revocations(b"{}").revoked == b""


@pytest.mark.parametrize(
    "doc, message",
    [
        (b"[]", "top level must be a JSON object"),
        (b"{", "invalid JSON"),
        (b"\xff\xfe", "invalid JSON"),
        (b'{"revoked": {}}', '"revoked" must be a list'),
        (b'{"registry": "x"}', '"registry" must be a list'),
        (b'{"extra": 1}', "unexpected top-level field"),
        (b'{"revoked": [1]}', r"revoked\[0\]: must be an object"),
        (b'{"revoked": [{"type": "UCI"}]}', r'revoked\[0\]: missing "hash"'),
        (b'{"revoked": [{"hash": "AAAAAAAAAAAAAAAAAAAAAA=="}]}', r'revoked\[0\]: missing "type"'),
        (
            b'{"revoked": [{"type": "uci", "hash": "AAAAAAAAAAAAAAAAAAAAAA=="}]}',
            r'revoked\[0\]: "type" must be one of',
        ),
        (
            b'{"revoked": [{"type": "UCI", "hash": "AAAAAAAAAAAAAAAAAAAAAA==", "x": 1}]}',
            r"revoked\[0\]: unexpected field",
        ),
        (
            b'{"revoked": [{"type": "UCI", "hash": "AAAAAAAAAAAAAAAAAAAAAAA="}]}',
            r"revoked\[0\]: hash must be base64 of exactly 16 bytes",
        ),
        (
            b'{"revoked": [{"type": "UCI", "hash": "AAAAAAAAAAAAAAAAAAAAAAAAAAAA"}]}',
            r"revoked\[0\]: hash must be base64 of exactly 16 bytes",
        ),
        (
            b'{"revoked": [{"type": "UCI", "hash": "AAAAAAAAAAAAAAAAAAAA*A=="}]}',
            r"revoked\[0\]: hash is not valid base64",
        ),
        (b'{"revoked": [{"type": "UCI", "hash": 5}]}', r"revoked\[0\]: hash must be base64"),
        (
            b'{"registry": ["AAAAAAAAAAAAAAAAAAAAAA==", "AAAA"]}',
            r"registry\[1\]: hash must be base64 of exactly 16 bytes",
        ),
        (b'{"registry": ["AAAAAAAAAAAAAAAAAAAAAA==", null]}', r"registry\[1\]"),
    ],
)
def test_rejects_malformed_input_naming_the_entry(doc, message):
    with pytest.raises(RevocationFileError, match=message):
        parse_revocations(doc)


def test_error_names_the_failing_index_not_the_first():
    good = {"type": "UCI", "hash": b64(H[0])}
    doc = {"revoked": [good] * 7 + [{"type": "UCI", "hash": "nope"}]}
    with pytest.raises(RevocationFileError, match=r"revoked\[7\]"):
        parse_revocations(orjson.dumps(doc))


def test_error_message_does_not_echo_hash_values():
    bad = "QUJDREVGR0hJSktMTU5PUA"  # 22 chars, missing padding
    with pytest.raises(RevocationFileError) as info:
        parse_revocations(orjson.dumps({"registry": [bad]}))
    assert bad not in str(info.value)


def test_file_errors(tmp_path):
    with pytest.raises(RevocationFileError, match="not found"):
        load_revocations(tmp_path / "missing.json")
    with pytest.raises(RevocationFileError, match="is a directory"):
        load_revocations(tmp_path)


def test_size_cap(monkeypatch):
    import verifier.revocations as rev

    monkeypatch.setattr(rev, "MAX_FILE_BYTES", 100)
    with pytest.raises(RevocationFileError, match="larger than 100 bytes"):
        rev.parse_revocations(b" " * 101)


def test_one_million_entries(tmp_path):
    raw = os.urandom(16 * 1_000_000)
    from verifier.revocations import dump_revocations

    path = tmp_path / "big.json"
    path.write_bytes(dump_revocations(raw, raw[: 16 * 1000]))
    r = load_revocations(path)
    assert r.revoked == raw and r.revoked_count == 1_000_000 and r.registry_count == 1000


# ---- removals, JSON Lines, gzip (streamed input) ----------------------------------------


def _b64(raw: bytes) -> str:
    import base64

    return base64.b64encode(raw).decode()


def test_removed_key_in_json(tmp_path):
    a, b = os.urandom(16), os.urandom(16)
    path = tmp_path / "r.json"
    path.write_bytes(
        orjson.dumps({"revoked": [{"type": "UCI", "hash": _b64(a)}], "removed": [_b64(b)]})
    )
    parsed = load_revocations(path)
    assert parsed.revoked == a and parsed.removed == b and parsed.registry is None
    assert parsed.removed_count == 1


@pytest.mark.parametrize("gz", [False, True])
def test_json_lines_streamed_and_gzip(tmp_path, gz):
    import gzip

    rev = [os.urandom(16) for _ in range(300)]
    reg = [os.urandom(16) for _ in range(5)]
    gone = [os.urandom(16) for _ in range(7)]
    lines = [orjson.dumps({"type": "SIGNATURE", "hash": _b64(h)}) for h in rev]
    lines += [b"", b"  "]  # blank lines are skipped
    lines += [orjson.dumps({"registry": _b64(h)}) for h in reg]
    lines += [orjson.dumps({"removed": _b64(h)}) for h in gone]
    data = b"\n".join(lines) + b"\n"
    path = tmp_path / ("r.jsonl.gz" if gz else "r.jsonl")
    path.write_bytes(gzip.compress(data) if gz else data)
    seen = []
    parsed = load_revocations(path, progress=seen.append)
    assert parsed.revoked == b"".join(rev) and parsed.type_counts["SIGNATURE"] == 300
    assert parsed.registry == b"".join(reg) and parsed.removed == b"".join(gone)


def test_gzipped_json_document(tmp_path):
    import gzip

    a = os.urandom(16)
    path = tmp_path / "r.json.gz"
    path.write_bytes(gzip.compress(orjson.dumps({"revoked": [{"type": "UCI", "hash": _b64(a)}]})))
    assert load_revocations(path).revoked == a


@pytest.mark.parametrize(
    "line, message",
    [
        (b'{"type": "UCI", "hash": "short"}', "line 2"),
        (b'{"type": "XYZ", "hash": "AAAAAAAAAAAAAAAAAAAAAA=="}', "line 2"),
        (b'{"registry": 5}', "line 2"),
        (b"[1, 2]", "line 2"),
        (b"{" + b" " * 5000 + b"}", "longer than"),
    ],
)
def test_json_lines_errors_name_the_line(tmp_path, line, message):
    first = orjson.dumps({"type": "UCI", "hash": _b64(os.urandom(16))})
    path = tmp_path / "bad.jsonl"
    path.write_bytes(first + b"\n" + line + b"\n")
    with pytest.raises(RevocationFileError, match=message):
        load_revocations(path)


def test_json_lines_without_registry_line_means_no_registry(tmp_path):
    path = tmp_path / "r.jsonl"
    path.write_bytes(orjson.dumps({"type": "UCI", "hash": _b64(os.urandom(16))}) + b"\n")
    parsed = load_revocations(path)
    assert parsed.registry is None and parsed.removed is None and parsed.revoked_count == 1
