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
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

import orjson

from fastpath._decode import ValueSets
from keys._files import read_capped

__all__ = [
    "FILES",
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
    for code in values:
        if not code or len(code) > MAX_CODE_CHARS or not code.isprintable():
            raise ValueSetError(
                f"value-set file {path}: a code that is empty, longer than "
                f"{MAX_CODE_CHARS} characters or not printable"
            )
    return list(values)


def load_valuesets(directory: str | os.PathLike[str] | None = None) -> ValueSets:
    """The value sets of `directory` (None: the packaged release) as a ValueSets."""
    base = PACKAGED_DIR if directory is None else Path(directory)
    if not base.is_dir():
        raise ValueSetError(f"value-set directory not found: {base}")
    sets: dict[str, list[str]] = {}
    for name, filename in FILES.items():
        sets[name] = _codes(base / filename)
    for name, filename in OPTIONAL_FILES.items():
        if (base / filename).exists():
            sets[name] = _codes(base / filename)
    try:
        return ValueSets(sets, source=str(base))
    except ValueError as exc:
        raise ValueSetError(f"value-set directory {base}: {exc}") from None


@lru_cache(maxsize=1)
def packaged_valuesets() -> ValueSets:
    """The value sets shipped with qrverify (loaded once per process)."""
    return load_valuesets(None)
