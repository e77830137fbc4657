"""Plausible EU DCC payloads (schema 1.3.0) that are currently valid under the venue rules."""

from __future__ import annotations

import datetime as dt
import secrets
import unicodedata
from typing import Any

from keys._x509 import CERT_TYPES

__all__ = ["DCC_KEYS", "ENTRY_KEYS", "NAME_KEYS", "icao_transliterate", "sample_dcc", "uvci"]

ISSUER_NAME = "Ministry of Health of the Russian Federation"
MAX_NAME = 80

#: The keys a DCC payload may have at its top level, in `nam`, and in one v/t/r entry
#: (the fuzzers and property tests edit these).
DCC_KEYS = ("ver", "nam", "dob", "v", "t", "r", "x")
NAME_KEYS = ("fn", "fnt", "gn", "gnt")
ENTRY_KEYS = (
    "tg", "vp", "mp", "ma", "dn", "sd", "dt", "co", "is", "ci", "tt", "nm", "sc", "tr", "tc",
    "fr", "df", "du",
)  # fmt: skip

# ICAO Doc 9303 Part 3, Cyrillic -> Latin (upper case; lower case is folded first).
_CYRILLIC = {
    "А": "A",
    "Б": "B",
    "В": "V",
    "Г": "G",
    "Д": "D",
    "Е": "E",
    "Ё": "E",
    "Ж": "ZH",
    "З": "Z",
    "И": "I",
    "Й": "I",
    "К": "K",
    "Л": "L",
    "М": "M",
    "Н": "N",
    "О": "O",
    "П": "P",
    "Р": "R",
    "С": "S",
    "Т": "T",
    "У": "U",
    "Ф": "F",
    "Х": "KH",
    "Ц": "TS",
    "Ч": "CH",
    "Ш": "SH",
    "Щ": "SHCH",
    "Ъ": "IE",
    "Ы": "Y",
    "Ь": "",
    "Э": "E",
    "Ю": "IU",
    "Я": "IA",
    "І": "I",
    "Ї": "I",
    "Є": "IE",
    "Ґ": "G",
    "Ў": "U",
}
# Latin letters that do not decompose into base letter + accent.
_LATIN_SPECIAL = {
    "ß": "SS",
    "Æ": "AE",
    "Ø": "OE",
    "Œ": "OE",
    "Þ": "TH",
    "Ð": "D",
    "Ł": "L",
    "Ħ": "H",
    "Ŀ": "L",
    "Ŋ": "N",
    "Ŧ": "T",
    "İ": "I",
    "I": "I",
}
_SEPARATORS = frozenset(" -‐‑–\t,")

_UVCI_CHARSET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/:"


def icao_transliterate(name: str) -> str:
    """Machine-readable form of a name (ICAO 9303): A-Z, with "<" between words.

    "Иванов" -> "IVANOV"; "d'Červenková Panklová" -> "DCERVENKOVA<PANKLOVA".
    """
    out: list[str] = []
    for ch in name.upper():
        if "A" <= ch <= "Z":
            out.append(ch)
        elif ch in _CYRILLIC:
            out.append(_CYRILLIC[ch])
        elif ch in _LATIN_SPECIAL:
            out.append(_LATIN_SPECIAL[ch])
        elif ch in _SEPARATORS:
            if out and out[-1] != "<":
                out.append("<")
        else:
            base = unicodedata.normalize("NFKD", ch)[:1]
            if "A" <= base <= "Z":
                out.append(base)
            # apostrophes, digits and anything else are dropped
    return "".join(out).strip("<")[:MAX_NAME]


def _luhn_mod_n(text: str) -> str:
    """Luhn mod N check character over the UVCI charset (EU DCC UVCI checksum)."""
    n = len(_UVCI_CHARSET)
    factor, total = 2, 0
    for ch in reversed(text):
        addend = factor * _UVCI_CHARSET.index(ch)
        factor = 1 if factor == 2 else 2
        total += addend // n + addend % n
    return _UVCI_CHARSET[(n - total % n) % n]


def uvci(country: str) -> str:
    """A random UVCI like URN:UVCI:01:RU:1A2B...#C (check character over the whole string)."""
    body = f"URN:UVCI:01:{country}:{secrets.token_hex(12).upper()}"
    return f"{body}#{_luhn_mod_n(body)}"


def _at(at: int | float | dt.datetime) -> dt.datetime:
    if isinstance(at, dt.datetime):
        if at.tzinfo is None:
            raise ValueError("at must be timezone-aware")
        return at.astimezone(dt.UTC)
    return dt.datetime.fromtimestamp(int(at), dt.UTC)


def _split_name(name: str) -> dict[str, str]:
    words = name.split()
    if not words:
        raise ValueError("name must not be empty")
    family, given = words[0], " ".join(words[1:])
    nam = {"fn": family[:MAX_NAME], "fnt": icao_transliterate(family)}
    if given:
        nam["gn"] = given[:MAX_NAME]
        nam["gnt"] = icao_transliterate(given)
    if not nam["fnt"] and not nam.get("gnt"):
        raise ValueError("name has no letters that can be transliterated")
    return nam


def sample_dcc(
    cert_type: str,
    *,
    at: int | float | dt.datetime,
    name: str = "IVANOV IVAN",
    dob: str = "1980-01-01",
    country: str = "RU",
) -> dict[str, Any]:
    """A DCC payload of ``cert_type`` (vaccination, recovery, test) valid at ``at``.

    ``name`` is "FAMILY GIVEN..." (the first word is the family name).
    """
    if cert_type not in CERT_TYPES:
        raise ValueError(
            f"unknown certificate type {cert_type!r}; expected {', '.join(CERT_TYPES)}"
        )
    now = _at(at)
    common = {"co": country, "is": ISSUER_NAME, "ci": uvci(country)}
    entry: dict[str, Any]
    if cert_type == "vaccination":
        entry = {
            # Sputnik V: one of the vaccines the venue rules accept (CONTRACT section 3)
            "tg": "840539006",
            "vp": "J07BX03",
            "mp": "Sputnik-V",
            "ma": "Gamaleya-Research-Institute",
            "dn": 2,
            "sd": 2,
            "dt": (now - dt.timedelta(days=30)).date().isoformat(),
        }
        group = "v"
    elif cert_type == "test":
        entry = {
            "tg": "840539006",
            "tt": "LP6464-4",
            "nm": "SARS-CoV-2 RT-PCR",
            "sc": (now - dt.timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "tr": "260415000",
            "tc": "Moscow City Diagnostic Laboratory",
        }
        group = "t"
    else:
        first = (now - dt.timedelta(days=30)).date()
        entry = {
            "tg": "840539006",
            "fr": first.isoformat(),
            "df": (first + dt.timedelta(days=11)).isoformat(),
            "du": (first + dt.timedelta(days=180)).isoformat(),
        }
        group = "r"
    entry.update(common)
    return {"ver": "1.3.0", "nam": _split_name(name), "dob": dob, group: [entry]}
