from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path
from typing import Any

import pytest

from keys.samples import _luhn_mod_n, icao_transliterate, sample_dcc, uvci

AT = int(dt.datetime(2021, 11, 15, 12, 0, tzinfo=dt.UTC).timestamp())
ROOT = Path(__file__).resolve().parents[2]
SCHEMA_CANDIDATES = [
    ROOT / "reference" / "DCC.combined-schema.json",
    ROOT / "verifier" / "data" / "DCC.combined-schema.json",
    Path("/work/shared/reference/DCC.combined-schema.json"),
]


def _schema() -> dict[str, Any]:
    for path in SCHEMA_CANDIDATES:
        if path.is_file():
            return json.loads(path.read_text())  # type: ignore[no-any-return]
    pytest.skip("DCC.combined-schema.json not found")


def _errors(schema: dict[str, Any], node: dict[str, Any], value: Any, where: str) -> list[str]:
    """A small JSON-schema subset evaluator (enough for the DCC combined schema)."""
    if "$ref" in node:
        name = node["$ref"].removeprefix("#/$defs/")
        node = {**schema["$defs"][name], **{k: v for k, v in node.items() if k != "$ref"}}
    errs: list[str] = []
    kind = node.get("type")
    types = {"string": str, "object": dict, "array": list, "integer": int}
    if kind in types and (not isinstance(value, types[kind]) or isinstance(value, bool)):
        return [f"{where}: expected {kind}"]
    if isinstance(value, str):
        if "pattern" in node and not re.search(node["pattern"], value):
            errs.append(f"{where}: pattern {node['pattern']}")
        if len(value) > node.get("maxLength", 10**9):
            errs.append(f"{where}: too long")
        if node.get("format") == "date":
            dt.date.fromisoformat(value)
        if node.get("format") == "date-time":
            assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)", value)
    if isinstance(value, int) and "minimum" in node and value < node["minimum"]:
        errs.append(f"{where}: below minimum")
    if isinstance(value, list):
        if not node.get("minItems", 0) <= len(value) <= node.get("maxItems", 10**9):
            errs.append(f"{where}: item count")
        for i, item in enumerate(value):
            errs += _errors(schema, node.get("items", {}), item, f"{where}[{i}]")
    if isinstance(value, dict):
        errs += [f"{where}: missing {r}" for r in node.get("required", []) if r not in value]
        for key, sub in node.get("properties", {}).items():
            if key in value:
                errs += _errors(schema, sub, value[key], f"{where}.{key}")
    for alt in node.get("anyOf", []), node.get("oneOf", []):
        if alt:
            passing = sum(not _errors(schema, a, value, where) for a in alt)
            if passing == 0 or (alt is node.get("oneOf") and passing != 1):
                errs.append(f"{where}: anyOf/oneOf")
    return errs


@pytest.mark.parametrize("cert_type", ["vaccination", "recovery", "test"])
def test_schema_valid(cert_type: str) -> None:
    schema = _schema()
    dcc = sample_dcc(cert_type, at=AT, name="Иванов Иван Петрович", dob="1985-03-04")
    assert _errors(schema, schema, dcc, "dcc") == []
    # the checker can fail:
    assert _errors(schema, schema, {**dcc, "dob": "1899-01-01"}, "dcc")
    assert _errors(schema, schema, {k: v for k, v in dcc.items() if k != "nam"}, "dcc")


def test_vaccination_fields() -> None:
    dcc = sample_dcc("vaccination", at=AT)
    assert dcc["ver"] == "1.3.0"
    assert dcc["nam"] == {"fn": "IVANOV", "fnt": "IVANOV", "gn": "IVAN", "gnt": "IVAN"}
    assert dcc["dob"] == "1980-01-01"
    (v,) = dcc["v"]
    assert {k: v[k] for k in ("tg", "vp", "mp", "ma", "dn", "sd", "dt", "co", "is")} == {
        "tg": "840539006",
        "vp": "J07BX03",
        "mp": "Sputnik-V",
        "ma": "Gamaleya-Research-Institute",
        "dn": 2,
        "sd": 2,
        "dt": "2021-10-16",
        "co": "RU",
        "is": "Ministry of Health of the Russian Federation",
    }
    assert set(dcc) == {"ver", "nam", "dob", "v"}


def test_test_fields() -> None:
    (t,) = sample_dcc("test", at=AT, country="DE")["t"]
    assert t["tt"] == "LP6464-4" and t["tr"] == "260415000" and t["tg"] == "840539006"
    assert t["sc"] == "2021-11-15T10:00:00Z"
    assert t["co"] == "DE" and t["ci"].startswith("URN:UVCI:01:DE:")
    assert t["tc"]


def test_recovery_fields() -> None:
    (r,) = sample_dcc("recovery", at=dt.datetime(2021, 11, 15, tzinfo=dt.UTC))["r"]
    assert (r["fr"], r["df"], r["du"]) == ("2021-10-16", "2021-10-27", "2022-04-14")


def test_unknown_type_and_bad_name() -> None:
    with pytest.raises(ValueError, match="unknown certificate type"):
        sample_dcc("antibody", at=AT)
    with pytest.raises(ValueError):
        sample_dcc("test", at=AT, name="   ")
    with pytest.raises(ValueError):
        sample_dcc("test", at=dt.datetime(2021, 1, 1))  # naive datetime


def test_single_word_name() -> None:
    nam = sample_dcc("test", at=AT, name="Madonna")["nam"]
    assert nam == {"fn": "Madonna", "fnt": "MADONNA"}


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Иванов", "IVANOV"),
        ("Иван", "IVAN"),
        ("Щербаков", "SHCHERBAKOV"),
        ("Юрьев", "IUREV"),
        ("Ёлкина-Жукова", "ELKINA<ZHUKOVA"),
        ("Хачатурян Цой", "KHACHATURIAN<TSOI"),
        ("Подъячев", "PODIEIACHEV"),
        ("Мышкин", "MYSHKIN"),
        ("Эрнст", "ERNST"),
        ("Яковлев", "IAKOVLEV"),
        ("Йорик", "IORIK"),
        ("d'Červenková Panklová", "DCERVENKOVA<PANKLOVA"),
        ("Jiřina-Maria Alena", "JIRINA<MARIA<ALENA"),
        ("Müller", "MULLER"),
        ("Weiß", "WEISS"),
        ("smith", "SMITH"),
        ("  Anna  Maria ", "ANNA<MARIA"),
    ],
)
def test_icao_transliteration(name: str, expected: str) -> None:
    assert icao_transliterate(name) == expected
    assert re.fullmatch(r"[A-Z<]*", icao_transliterate(name))


def test_uvci_format_and_check_character() -> None:
    ids = {uvci("RU") for _ in range(20)}
    assert len(ids) == 20
    for ci in ids:
        assert re.fullmatch(r"URN:UVCI:01:RU:[0-9A-F]{24}#[A-Z0-9/:]", ci)
        body, check = ci.split("#")
        assert _luhn_mod_n(body) == check
    # Luhn mod N detects every single-character substitution
    body = "URN:UVCI:01:RU:ABC123"
    assert _luhn_mod_n(body) != _luhn_mod_n("URN:UVCI:01:RU:ABC124")
