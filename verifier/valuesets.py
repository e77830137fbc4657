"""The EU DCC value sets: which codes a certificate's coded fields may hold.

The files are the EU's own (ehn-dcc-development/ehn-dcc-valuesets, one JSON document per
value set with the codes as the keys of `valueSetValues`). Release 2.12.0 ships as package
data (verifier/data/valuesets/); an operator replaces them without a release by pointing
`load_valuesets(directory)` (the Verifier's `valuesets=`, the CLI's `--valuesets DIR`) at a
directory holding the same file names. The codes are compiled once into a C-level table
(fastpath._decode.ValueSets) that the decoder checks while it parses.

A directory must hold every file of FILES; `test-manf.json` (the rapid-test device list,
which the EU gateway serves from the JRC database) is optional: without it the device of
a rapid test is not checked. Every problem raises ValueSetError naming the file.

Through Redis (`qrverify sync --valuesets DIR`) the codes travel as one canonical JSON
document, `{"co": [sorted codes], ...}` (`codes_json`), read back by `from_codes_json`
with the same checks as a directory.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path

import orjson

from fastpath._decode import ValueSets
from keys._files import read_capped

__all__ = [
    "FILES",
    "MAX_JSON_BYTES",
    "codes_json",
    "from_codes_json",
    "read_codes",
    "OPTIONAL_FILES",
    "ValueSetError",
    "ValueSets",
    "load_valuesets",
    "packaged_valuesets",
    "PACKAGED_DIR",
]

PACKAGED_DIR = Path(__file__).resolve().parent / "data" / "valuesets"

#: value set (ValueSets name) -> file name; all required
FILES = {
    "co": "country-2-codes.json",
    "tg": "disease-agent-targeted.json",
    "vp": "vaccine-prophylaxis.json",
    "mp": "vaccine-medicinal-product.json",
    "ma": "vaccine-mah-manf.json",
    "tt": "test-type.json",
    "tr": "test-result.json",
}
#: loaded when present
OPTIONAL_FILES = {"test_ma": "test-manf.json"}

MAX_FILE_BYTES = 8 * 1024 * 1024  # the JRC device list is ~1 MB
MAX_CODES_PER_FILE = 50_000
MAX_CODE_CHARS = 80
MAX_JSON_BYTES = 8 * MAX_FILE_BYTES  # the canonical document of all value sets


class ValueSetError(ValueError):
    """A value-set directory or file that cannot be used."""


def _codes(path: Path) -> list[str]:
    raw = read_capped(path, MAX_FILE_BYTES, "value-set file", ValueSetError)
    if len(raw) > MAX_FILE_BYTES:
        raise ValueSetError(f"value-set file {path}: larger than {MAX_FILE_BYTES} bytes")
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ValueSetError(f"value-set file {path}: not JSON ({exc})") from None
    values = doc.get("valueSetValues") if isinstance(doc, dict) else None
    if not isinstance(values, dict) or not values:
        raise ValueSetError(f"value-set file {path}: no valueSetValues object")
    if len(values) > MAX_CODES_PER_FILE:
        raise ValueSetError(f"value-set file {path}: more than {MAX_CODES_PER_FILE} codes")
    _check_codes(values, f"value-set file {path}")
    return list(values)


def _check_codes(codes: Iterable[object], where: str) -> None:
    for code in codes:
        if (
            not isinstance(code, str)
            or not code
            or len(code) > MAX_CODE_CHARS
            or not code.isprintable()
        ):
            raise ValueSetError(
                f"{where}: a code that is empty, longer than "
                f"{MAX_CODE_CHARS} characters or not printable"
            )


def read_codes(directory: str | os.PathLike[str] | None = None) -> dict[str, list[str]]:
    """The codes of every value set of `directory` (None: the packaged release), by
    ValueSets name; ValueSetError naming the file for any problem."""
    base = PACKAGED_DIR if directory is None else Path(directory)
    if not base.is_dir():
        raise ValueSetError(f"value-set directory not found: {base}")
    sets: dict[str, list[str]] = {}
    for name, filename in FILES.items():
        sets[name] = _codes(base / filename)
    for name, filename in OPTIONAL_FILES.items():
        if (base / filename).exists():
            sets[name] = _codes(base / filename)
    return sets


def _build(sets: dict[str, list[str]], source: str, where: str) -> ValueSets:
    try:
        return ValueSets(sets, source=source)
    except ValueError as exc:
        raise ValueSetError(f"{where}: {exc}") from None


def load_valuesets(directory: str | os.PathLike[str] | None = None) -> ValueSets:
    """The value sets of `directory` (None: the packaged release) as a ValueSets."""
    base = PACKAGED_DIR if directory is None else Path(directory)
    return _build(read_codes(base), str(base), f"value-set directory {base}")


def codes_json(sets: dict[str, list[str]]) -> bytes:
    """The canonical document of value-set codes (names and codes sorted, no duplicates):
    the same codes give the same bytes, whatever order the files had."""
    return orjson.dumps(
        {name: sorted(set(codes)) for name, codes in sets.items()}, option=orjson.OPT_SORT_KEYS
    )


def from_codes_json(data: bytes, source: str = "value sets") -> ValueSets:
    """A ValueSets from `codes_json` bytes, checked as a directory is (every required set
    present, known names only, codes within the limits); ValueSetError otherwise."""
    if len(data) > MAX_JSON_BYTES:
        raise ValueSetError(f"{source}: larger than {MAX_JSON_BYTES} bytes")
    try:
        obj = orjson.loads(data)
    except orjson.JSONDecodeError:
        raise ValueSetError(f"{source}: not JSON") from None
    if not isinstance(obj, dict):
        raise ValueSetError(f"{source}: not an object of value sets")
    known = set(FILES) | set(OPTIONAL_FILES)
    unknown = sorted(str(k)[:20] for k in obj if k not in known)
    if unknown:
        raise ValueSetError(f"{source}: unknown value set(s) {', '.join(unknown)}")
    missing = sorted(k for k in FILES if k not in obj)
    if missing:
        raise ValueSetError(f"{source}: missing value set(s) {', '.join(missing)}")
    sets: dict[str, list[str]] = {}
    for name, codes in obj.items():
        if not isinstance(codes, list) or not codes or len(codes) > MAX_CODES_PER_FILE:
            raise ValueSetError(
                f"{source}: value set {name} must be a list of 1 to {MAX_CODES_PER_FILE} codes"
            )
        _check_codes(codes, f"{source}: value set {name}")
        sets[name] = codes
    return _build(sets, source, source)


@lru_cache(maxsize=1)
def packaged_valuesets() -> ValueSets:
    """The value sets shipped with qrverify (loaded once per process)."""
    return load_valuesets(None)
