"""The EU value sets: the packaged release, a replaced directory, the compiled table."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from vector_support import TRUST_FILE, load_vectors

from fastpath._decode import VALUESET_FIELDS, ValueSets, decode
from verifier import ConfigError, Verifier
from verifier.valuesets import (
    FILES,
    PACKAGED_DIR,
    ValueSetError,
    load_valuesets,
    packaged_valuesets,
)

VECTORS = {v.name: v for v in load_vectors()}


def _copy(tmp_path: Path) -> Path:
    out = tmp_path / "valuesets"
    shutil.copytree(PACKAGED_DIR, out)
    for f in out.iterdir():
        f.chmod(0o644)
    return out


def _add_code(directory: Path, filename: str, code: str) -> None:
    path = directory / filename
    doc = json.loads(path.read_text(encoding="utf-8"))
    doc["valueSetValues"][code] = {
        "display": "added by an operator",
        "lang": "en",
        "active": True,
        "system": "test",
        "version": "",
    }
    path.write_text(json.dumps(doc), encoding="utf-8")


def test_packaged_release_is_loaded_with_its_licence() -> None:
    vs = packaged_valuesets()
    assert vs.loaded == ("co", "tg", "vp", "mp", "ma", "tt", "tr")  # no device list
    assert len(vs) == 334
    assert (PACKAGED_DIR / "LICENSE").read_text().startswith(" " * 33 + "Apache License")
    assert "2.12.0" in (PACKAGED_DIR / "README.md").read_text()
    for name, code in [
        ("co", "RU"),
        ("co", "XK"),
        ("tg", "840539006"),
        ("vp", "J07BX03"),
        ("mp", "Sputnik-V"),
        ("mp", "EpiVacCorona-N"),
        ("ma", "Gamaleya-Research-Institute"),
        ("tt", "LP217198-3"),
        ("tr", "260373001"),
    ]:
        assert vs.contains(name, code), (name, code)
    for name, code in [
        ("co", "XY"),
        ("co", "ru"),
        ("mp", "sputnik-v"),
        ("tr", "26041500"),
        ("tr", "2604150000"),
        ("ma", ""),
    ]:
        assert not vs.contains(name, code), (name, code)
    assert vs.contains("test_ma", "9999")  # not loaded: not checked


def test_the_compiled_table_matches_python_sets() -> None:
    import random

    rng = random.Random(9)
    sets = {
        name: {f"{name}-{rng.randrange(10**6)}" for _ in range(rng.randrange(1, 400))}
        for name in VALUESET_FIELDS
    }
    sets["co"] |= {"Ж", "a" * 255}
    vs = ValueSets(sets, source="test")
    assert len(vs) == sum(len(v) for v in sets.values())
    for name, codes in sets.items():
        other = VALUESET_FIELDS[(VALUESET_FIELDS.index(name) + 1) % len(VALUESET_FIELDS)]
        for code in codes:
            assert vs.contains(name, code)
            assert not vs.contains(name, code + "x")
            assert not vs.contains(name, code[:-1])
            assert vs.contains(other, code) == (code in sets[other])


@pytest.mark.parametrize(
    ("sets", "words"),
    [
        ({"xx": ["a"]}, "unknown value set"),
        ({"co": [1]}, "codes must be text"),
        ({"co": [""]}, "a code of 0 bytes"),
        ({"co": ["a" * 256]}, "a code of 256 bytes"),
    ],
)
def test_value_sets_refuse_bad_input(sets: dict[str, list[object]], words: str) -> None:
    with pytest.raises(ValueError, match=words):
        ValueSets(sets)


def test_a_replaced_directory_admits_a_new_code(tmp_path: Path) -> None:
    vector = VECTORS["bad_payload_unknown_vaccination_co"]
    default = Verifier.from_files(trust=TRUST_FILE, cache_size=0)
    assert default.verify(vector.token, at=vector.at).reason is not None
    assert default.verify(vector.token, at=vector.at).reason.value == "bad_payload"
    directory = _copy(tmp_path)
    _add_code(directory, FILES["co"], "XY")
    replaced = Verifier.from_files(trust=TRUST_FILE, cache_size=0, valuesets=directory)
    assert replaced.verify(vector.token, at=vector.at).valid
    assert replaced.valuesets.source == str(directory)
    # a ValueSets object works the same; and the default verifier is unchanged
    again = Verifier.from_files(trust=TRUST_FILE, valuesets=load_valuesets(directory))
    assert again.verify(vector.token, at=vector.at).valid
    assert default.verify(vector.token, at=vector.at).reason.value == "bad_payload"


def test_a_device_list_checks_the_rapid_test_device(tmp_path: Path) -> None:
    vector = VECTORS["valid_test_device_not_checked_without_device_list"]
    directory = _copy(tmp_path)
    shutil.copy(directory / "test-manf-example.json", directory / "test-manf.json")
    vs = load_valuesets(directory)
    assert "test_ma" in vs.loaded
    d = decode(vector.token, valuesets=vs)
    assert not d.payload_ok
    assert d.payload_field == "ma"
    assert "test-manf" in (d.payload_detail or "")
    _add_code(directory, "test-manf.json", "9999")
    assert decode(vector.token, valuesets=load_valuesets(directory)).payload_ok


def test_broken_directories_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="value-set directory not found"):
        Verifier.from_files(trust=TRUST_FILE, valuesets=tmp_path / "missing")
    directory = _copy(tmp_path)
    (directory / FILES["tt"]).unlink()
    with pytest.raises(ConfigError, match="value-set file not found"):
        Verifier.from_files(trust=TRUST_FILE, valuesets=directory)
    for text, words in [
        ("[", "not JSON"),
        ("[]", "no valueSetValues"),
        ('{"valueSetValues": {}}', "no valueSetValues"),
        ('{"valueSetValues": {"a\\u0000": {}}}', "not printable"),
    ]:
        (directory / FILES["tt"]).write_text(text, encoding="utf-8")
        with pytest.raises(ValueSetError, match=words):
            load_valuesets(directory)
    (directory / FILES["tt"]).write_bytes(b" " * (9 * 1024 * 1024))
    with pytest.raises(ValueSetError, match="larger than"):
        load_valuesets(directory)
