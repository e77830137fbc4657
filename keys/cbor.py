"""A small deterministic CBOR encoder (RFC 8949) for building malformed test vectors.

Issuing uses cbor2 (`issue_dumps`, called by keys/token.py and keys/cose.py; it also
takes this module's Tagged and RawCBOR), which gives the same bytes for every finite
payload (tests/keys/test_cbor2_issuing.py). This encoder stays for the test
vectors and the fuzz harness: `RawCBOR` splices arbitrary bytes in, and floats are always
float64, infinities and NaN included (cbor2 writes those as half-precision floats).
Only encoding lives here: decoding untrusted input is the verifier's job. Maps keep
insertion order, so the caller controls the exact bytes.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

import cbor2

__all__ = ["RawCBOR", "Tagged", "dumps", "issue_dumps"]

_MAX_UINT64 = (1 << 64) - 1


@dataclass(frozen=True, slots=True)
class Tagged:
    """A CBOR tag (major type 6) around a value, e.g. ``Tagged(18, cose_sign1)``."""

    tag: int
    value: Any


@dataclass(frozen=True, slots=True)
class RawCBOR:
    """Pre-encoded CBOR bytes spliced in verbatim (used to build malformed structures)."""

    data: bytes


def _head(major: int, value: int) -> bytes:
    """The initial byte plus argument, in the shortest form."""
    if value < 0 or value > _MAX_UINT64:
        raise ValueError(f"CBOR argument out of range: {value}")
    mt = major << 5
    if value < 24:
        return bytes((mt | value,))
    if value <= 0xFF:
        return bytes((mt | 24, value))
    if value <= 0xFFFF:
        return bytes((mt | 25,)) + value.to_bytes(2, "big")
    if value <= 0xFFFFFFFF:
        return bytes((mt | 26,)) + value.to_bytes(4, "big")
    return bytes((mt | 27,)) + value.to_bytes(8, "big")


def _encode(obj: Any, out: list[bytes], depth: int) -> None:
    if depth > 256:
        raise ValueError("CBOR structure nested too deeply")
    # bool before int: bool is a subclass of int.
    if obj is True:
        out.append(b"\xf5")
    elif obj is False:
        out.append(b"\xf4")
    elif obj is None:
        out.append(b"\xf6")
    elif isinstance(obj, int):
        if obj >= 0:
            out.append(_head(0, obj))
        else:
            out.append(_head(1, -1 - obj))
    elif isinstance(obj, (bytes, bytearray, memoryview)):
        data = bytes(obj)
        out.append(_head(2, len(data)))
        out.append(data)
    elif isinstance(obj, str):
        data = obj.encode("utf-8")
        out.append(_head(3, len(data)))
        out.append(data)
    elif isinstance(obj, (list, tuple)):
        out.append(_head(4, len(obj)))
        for item in obj:
            _encode(item, out, depth + 1)
    elif isinstance(obj, dict):
        out.append(_head(5, len(obj)))
        for key, value in obj.items():
            if not isinstance(key, (int, str)) or isinstance(key, bool):
                raise TypeError(f"CBOR map keys must be int or str, got {type(key).__name__}")
            _encode(key, out, depth + 1)
            _encode(value, out, depth + 1)
    elif isinstance(obj, float):
        out.append(b"\xfb" + struct.pack(">d", obj))
    elif isinstance(obj, Tagged):
        out.append(_head(6, obj.tag))
        _encode(obj.value, out, depth + 1)
    elif isinstance(obj, RawCBOR):
        out.append(bytes(obj.data))
    else:
        raise TypeError(f"cannot encode {type(obj).__name__} as CBOR")


def dumps(obj: Any) -> bytes:
    """Encode ``obj`` as CBOR: definite lengths, shortest integer forms, maps in insertion order."""
    out: list[bytes] = []
    _encode(obj, out, 0)
    return b"".join(out)


def _cbor2_default(encoder: Any, value: Any) -> None:
    """cbor2 hook: this module's Tagged and RawCBOR (test vectors pass them in payloads)."""
    if isinstance(value, Tagged):
        encoder.encode(cbor2.CBORTag(value.tag, value.value))
    elif isinstance(value, RawCBOR):
        encoder.write(bytes(value.data))
    else:
        raise TypeError(f"cannot encode {type(value).__name__} as CBOR")


def issue_dumps(obj: Any) -> bytes:
    """The issuing encoder: cbor2, plus Tagged / RawCBOR values (the same bytes as
    :func:`dumps` for everything but non-finite floats)."""
    return cbor2.dumps(obj, default=_cbor2_default)
