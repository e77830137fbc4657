"""Every generated vector (tests/vectors/vectors.json) through the Python API."""

from __future__ import annotations

from pathlib import Path

import pytest
from vector_support import (
    REVOCATIONS_FILE,
    TRUST_FILE,
    UNVERIFIED_REASONS,
    Vector,
    load_vectors,
    verifier_for,
)

import fastpath._decode
from keys.registry import TrustRegistry
from verifier import Reason, Verdict, Verifier
from verifier.store import MemoryStore

VECTORS = load_vectors()

#: Vectors that fail because of a known bug outside tests/: name -> "BUG: ..." reason.
#: Both bugs found so far (duplicate CBOR map keys with equal cached values, e52f0e0;
#: CBOR null taken for an absent optional field, 52b7125) are fixed; the vectors stay.
KNOWN_BUGS: dict[str, str] = {}


def _params(vectors: list[Vector]) -> list[object]:
    out = []
    for v in vectors:
        marks = []
        if v.name in KNOWN_BUGS:
            marks.append(pytest.mark.xfail(strict=True, reason=KNOWN_BUGS[v.name]))
        out.append(pytest.param(v, id=v.name, marks=marks))
    return out


def test_compiled_module_is_tested() -> None:
    assert fastpath._decode.__file__ is not None
    assert fastpath._decode.__file__.endswith(".so")


def test_vector_names_are_unique() -> None:
    names = [v.name for v in VECTORS]
    assert len(names) == len(set(names))


def test_every_reason_code_has_a_vector() -> None:
    covered = {v.reason for v in VECTORS}
    # Register-link codes have their vectors under tests/links (these vectors are HC1).
    missing = {r.value for r in Reason} - covered - {"bad_link", "not_found"}
    assert not missing, f"reason codes without a vector: {sorted(missing)}"
    assert None in covered  # and valid ones
    assert covered - {None} <= {r.value for r in Reason}  # nothing outside the contract


def _check(verdict: Verdict, vector: Vector) -> None:
    expect = vector.expect
    d = verdict.to_dict()
    assert (d["status"], d["reason"]) == (expect["status"], expect["reason"])
    assert verdict.status == expect["status"]
    assert isinstance(d["detail"], str) and d["detail"]
    if verdict.reason in UNVERIFIED_REASONS:
        # never show data from a token whose signature was not verified
        assert "holder" not in d and "certificate" not in d
        assert verdict.holder is None and verdict.certificate is None
    else:
        assert set(d) == {"status", "reason", "detail", "holder", "certificate"}
        assert set(d["holder"]) == {"name", "name_latin", "dob"}
        assert set(d["certificate"]) == {"type", "issuer", "valid_until"}
    for part in ("holder", "certificate"):
        if part in expect:
            got = d.get(part) or {}
            assert {k: got.get(k) for k in expect[part]} == expect[part]


@pytest.mark.parametrize("vector", _params(VECTORS))
def test_vector(vector: Vector, rules_dir: Path) -> None:
    verifier = verifier_for(vector, rules_dir)
    verdict = verifier.verify(vector.token, at=vector.at)
    _check(verdict, vector)
    # a re-scan (served from the cache when the token decoded) says the same
    assert verifier.verify(vector.token, at=vector.at) == verdict
    # the same token as bytes (a scanner's raw buffer), on a fresh verifier
    fresh = verifier_for(vector, rules_dir)
    assert fresh.verify(vector.token.encode("utf-8"), at=vector.at) == verdict


def test_vectors_through_verify_many_on_a_memory_store() -> None:
    """The same vectors in one batch on a hand-built MemoryStore with cache disabled."""
    import base64
    import json

    revocations = json.loads(REVOCATIONS_FILE.read_text())
    revoked = [base64.b64decode(e["hash"]) for e in revocations["revoked"]]
    registry = [base64.b64decode(h) for h in revocations["registry"]]
    trust = TrustRegistry.from_file(TRUST_FILE)
    plain = Verifier(MemoryStore(trust), "venue", cache_size=0)
    full = Verifier(MemoryStore(trust, revoked, registry), "venue", cache_size=0)
    for vector in VECTORS:
        if vector.rules != "venue" or vector.name in KNOWN_BUGS:
            continue
        v = full if vector.revocations else plain
        (verdict,) = v.verify_many([vector.token], at=vector.at)
        _check(verdict, vector)
    assert plain.cache_hits == full.cache_hits == 0


def test_generator_reproduces_the_committed_vectors(tmp_path: Path) -> None:
    """vectors.json is what generate.py writes (tokens differ: signatures are randomised)."""
    import json
    import subprocess
    import sys

    from vector_support import VECTORS_DIR, VECTORS_FILE

    proc = subprocess.run(
        [sys.executable, str(VECTORS_DIR / "generate.py"), "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    fresh = json.loads((tmp_path / "vectors.json").read_text(encoding="utf-8"))
    committed = json.loads(VECTORS_FILE.read_text(encoding="utf-8"))

    def shape(vectors: list[dict[str, object]]) -> list[tuple[object, ...]]:
        return [
            (
                v["name"],
                v["at"],
                json.dumps(v["rules"]),
                v["trust"],
                v["revocations"],
                json.dumps(v["expect"], sort_keys=True),
            )
            for v in vectors
        ]

    assert shape(fresh) == shape(committed)
    assert (tmp_path / "trust.json").read_bytes() == (VECTORS_DIR / "trust.json").read_bytes()


def test_bad_payload_vectors_name_the_failing_field() -> None:
    """The decoder names the field behind a bad_payload (value sets and schema), so the
    verdict's detail can: checked on the decoded record of every vector that says which."""
    from verifier.valuesets import packaged_valuesets

    checked = 0
    for vector in VECTORS:
        field = vector.expect.get("field")
        if field is None:
            continue
        d = fastpath._decode.decode(vector.token, valuesets=packaged_valuesets())
        assert not d.payload_ok, vector.name
        assert d.payload_field == field, vector.name
        assert d.payload_detail is not None and f" {field} " in d.payload_detail
        checked += 1
    assert checked >= 30


def test_unknown_codes_are_only_refused_with_value_sets_loaded() -> None:
    """Without value sets the same tokens pass the schema check: the value sets decide."""
    for vector in VECTORS:
        if not vector.name.startswith("bad_payload_unknown_"):
            continue
        d = fastpath._decode.decode(vector.token, valuesets=None)
        assert d.payload_ok, vector.name
        assert d.payload_field is None and d.payload_detail is None


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("bad_cwt_exp_year_10000", "exp is not a time"),
        ("bad_cwt_iat_year_0", "iat is not a time"),
        ("bad_cwt_exp_float_nan", "exp is not a time"),
        ("bad_cwt_iat_after_exp", "issued (iat) after it expires"),
        ("bad_cwt_iat_float_after_exp_by_rounding", "issued (iat) after it expires"),
        ("bad_cose_crit_unknown_label", "does not understand"),
        ("bad_cose_crit_text_label", "does not understand"),
        ("bad_cose_crit_empty", "not a non-empty array"),
        ("bad_cose_crit_unprotected", "not in the protected header"),
    ],
)
def test_decode_errors_carry_a_detail(name: str, words: str) -> None:
    (vector,) = [v for v in VECTORS if v.name == name]
    with pytest.raises(fastpath._decode.DecodeError) as info:
        fastpath._decode.decode(vector.token)
    assert info.value.reason == vector.reason
    assert info.value.detail is not None and words in info.value.detail
