"""Strict parser of the revocation / registry file (CONTRACT section 4).

    {"revoked": [{"type": "UCI" | "COUNTRYCODEUCI" | "SIGNATURE", "hash": "<base64>"}, ...],
     "registry": ["<base64>", ...],
     "removed": ["<base64>", ...]}

Every hash is standard base64 (with padding) of exactly 16 bytes: the first half of a
SHA-256 digest. All keys are optional; a file without "registry" means "no registry set"
(the registry check is then skipped), while "registry": [] means an empty register.
"removed" lists revoked hashes that `sync` takes out of the revoked set.

The same content as JSON Lines, one entry per line, for inputs of any size (read as a
stream: about 16 bytes of memory per entry, no limit on the file's size):

    {"type": "UCI", "hash": "<base64>"}
    {"registry": "<base64>"}
    {"removed": "<base64>"}

A file is JSON Lines when its first line is one such entry. Either form may be gzipped
(recognised by its first bytes). A JSON Lines file that holds no "registry" line means
"no registry set", as for the JSON form.

Parsing is all-or-nothing: the first problem raises `RevocationFileError` naming the list
and the entry index (never the hash value), and nothing is returned. The result holds the
hashes as packed buffers (16 bytes per entry, input order, duplicates kept) ready for
`fastpath.HashSet.add_packed`. A million entries parse in well under two seconds.
"""

from __future__ import annotations

import binascii
import gzip
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import IO, Any, cast

import orjson

from keys._files import read_capped
from verifier.errors import QrverifyError

__all__ = [
    "DRL_TYPE_BITS",
    "HASH_SIZE",
    "MAX_ENTRIES",
    "MAX_FILE_BYTES",
    "REVOCATION_TYPES",
    "RevocationFileError",
    "Revocations",
    "dump_revocations",
    "load_drl",
    "load_revocations",
    "parse_drl",
    "parse_revocations",
]

HASH_SIZE = 16
MAX_FILE_BYTES = 1024 * 1024 * 1024  # 1 GiB: about 20 million entries
MAX_ENTRIES = 50_000_000  # per list, in the JSON form (JSON Lines: MAX_STREAM_ENTRIES)
MAX_STREAM_ENTRIES = 1_000_000_000
MAX_LINE_BYTES = 4096
GZIP_MAGIC = b"\x1f\x8b"
REVOCATION_TYPES = ("UCI", "COUNTRYCODEUCI", "SIGNATURE")
_B64_LEN = 24  # base64 of 16 bytes: 22 characters and "=="


class RevocationFileError(QrverifyError, ValueError):
    """The revocation / registry input is invalid; the message says where and why."""


@dataclass(frozen=True, slots=True)
class Revocations:
    """Parsed revocation file.

    revoked: packed 16-byte hashes of all three types (one set serves all of them).
    type_counts: number of entries per type, for summaries.
    registry: packed registry hashes, or None when the file has no "registry" key.
    removed: packed hashes to take out of the revoked set (sync), or None.
    registry_removed: packed hashes to take out of the registry set (sync: the registry
    entries of its --remove file), or None.
    """

    revoked: bytes = b""
    type_counts: dict[str, int] = field(default_factory=dict)
    registry: bytes | None = None
    removed: bytes | None = None
    registry_removed: bytes | None = None

    @property
    def revoked_count(self) -> int:
        return len(self.revoked) // HASH_SIZE

    @property
    def registry_count(self) -> int | None:
        return None if self.registry is None else len(self.registry) // HASH_SIZE

    @property
    def removed_count(self) -> int:
        return 0 if self.removed is None else len(self.removed) // HASH_SIZE


def _decode_hash(value: object, where: str) -> bytes:
    if type(value) is not str or len(value) != _B64_LEN:
        raise RevocationFileError(f"{where}: hash must be base64 of exactly 16 bytes")
    try:
        raw = binascii.a2b_base64(value, strict_mode=True)
    except (binascii.Error, ValueError):
        raise RevocationFileError(f"{where}: hash is not valid base64") from None
    if len(raw) != HASH_SIZE:
        raise RevocationFileError(f"{where}: hash must be base64 of exactly 16 bytes")
    return raw


def _parse_revoked(items: object) -> tuple[bytes, dict[str, int]]:
    if not isinstance(items, list):
        raise RevocationFileError('revocations file: "revoked" must be a list')
    if len(items) > MAX_ENTRIES:
        raise RevocationFileError(
            f'revocations file: "revoked" has {len(items)} entries (limit {MAX_ENTRIES})'
        )
    a2b = binascii.a2b_base64
    counts = dict.fromkeys(REVOCATION_TYPES, 0)
    out: list[bytes] = []
    append = out.append
    for index, entry in enumerate(items):
        # The happy path is inlined for speed; every failure goes to _entry_error.
        if type(entry) is not dict or len(entry) != 2:
            _entry_error(index, entry)
        kind = entry.get("type")
        value = entry.get("hash")
        if (
            type(kind) is not str
            or kind not in counts
            or type(value) is not str
            or len(value) != _B64_LEN
        ):
            _entry_error(index, entry)
        try:
            raw = a2b(value, strict_mode=True)
        except (binascii.Error, ValueError):
            raw = b""
        if len(raw) != HASH_SIZE:
            _entry_error(index, entry)
        counts[kind] += 1
        append(raw)
    return b"".join(out), counts


def _entry_error(index: int, entry: object) -> None:
    where = f"revocations file: revoked[{index}]"
    if not isinstance(entry, dict):
        raise RevocationFileError(f'{where}: must be an object {{"type": ..., "hash": ...}}')
    unknown = sorted(str(k)[:40] for k in entry if k not in ("type", "hash"))
    if unknown:
        raise RevocationFileError(f"{where}: unexpected field(s) {', '.join(unknown)}")
    for key in ("type", "hash"):
        if key not in entry:
            raise RevocationFileError(f'{where}: missing "{key}"')
    if entry["type"] not in REVOCATION_TYPES:
        raise RevocationFileError(f'{where}: "type" must be one of {", ".join(REVOCATION_TYPES)}')
    _decode_hash(entry["hash"], where)
    raise RevocationFileError(f"{where}: invalid entry")  # not reached


def _parse_registry(items: object, name: str = "registry") -> bytes:
    if not isinstance(items, list):
        raise RevocationFileError(f'revocations file: "{name}" must be a list')
    if len(items) > MAX_ENTRIES:
        raise RevocationFileError(
            f'revocations file: "{name}" has {len(items)} entries (limit {MAX_ENTRIES})'
        )
    a2b = binascii.a2b_base64
    out: list[bytes] = []
    append = out.append
    for index, value in enumerate(items):
        if type(value) is not str or len(value) != _B64_LEN:
            _decode_hash(value, f"revocations file: {name}[{index}]")
        try:
            raw = a2b(value, strict_mode=True)
        except (binascii.Error, ValueError):
            raw = b""
        if len(raw) != HASH_SIZE:
            _decode_hash(value, f"revocations file: {name}[{index}]")
        append(raw)
    return b"".join(out)


def parse_revocations(data: bytes | bytearray | memoryview | str) -> Revocations:
    """Parse revocation-file JSON; raises RevocationFileError on any problem."""
    if len(data) > MAX_FILE_BYTES:
        raise RevocationFileError(f"revocations file: larger than {MAX_FILE_BYTES} bytes")
    try:
        obj = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise RevocationFileError(f"revocations file: invalid JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise RevocationFileError("revocations file: top level must be a JSON object")
    unknown = sorted(str(k)[:40] for k in obj if k not in ("revoked", "registry", "removed"))
    if unknown:
        raise RevocationFileError(
            f"revocations file: unexpected top-level field(s) {', '.join(unknown)}"
        )
    revoked, counts = _parse_revoked(obj.get("revoked", []))
    registry = _parse_registry(obj["registry"]) if "registry" in obj else None
    removed = _parse_registry(obj["removed"], "removed") if "removed" in obj else None
    return Revocations(revoked=revoked, type_counts=counts, registry=registry, removed=removed)


def _line_kind(obj: object) -> str | None:
    """Which JSON Lines entry `obj` is ("type" for a revoked entry), or None."""
    if not isinstance(obj, dict):
        return None
    if len(obj) == 2 and "type" in obj and "hash" in obj:
        return "type"
    if len(obj) == 1:
        key = next(iter(obj))
        if key in ("registry", "removed") and type(obj[key]) is str:
            return str(key)
    return None


def _lines(stream: IO[bytes]) -> Iterator[tuple[int, bytes]]:
    """(line number, line) of non-blank lines, each at most MAX_LINE_BYTES."""
    number = 0
    while True:
        line = stream.readline(MAX_LINE_BYTES + 1)
        if not line:
            return
        number += 1
        if len(line) > MAX_LINE_BYTES and not line.endswith(b"\n"):
            raise RevocationFileError(
                f"revocations file: line {number} is longer than {MAX_LINE_BYTES} bytes"
            )
        line = line.strip()
        if line:
            yield number, line


def parse_revocation_lines(
    stream: IO[bytes], progress: Callable[[int], None] | None = None
) -> Revocations:
    """Parse JSON Lines from a binary stream (see the module docstring); memory is the
    packed result. `progress(n)` is called every 100,000 entries."""
    revoked, registry, removed = bytearray(), bytearray(), bytearray()
    counts, seen_registry, seen_removed = _parse_lines_into(
        stream, revoked, registry, removed, progress
    )
    return Revocations(
        revoked=bytes(revoked),
        type_counts=counts,
        registry=bytes(registry) if seen_registry else None,
        removed=bytes(removed) if seen_removed else None,
    )


def _parse_lines_into(
    stream: IO[bytes],
    revoked: Any,
    registry: Any,
    removed: Any,
    progress: Callable[[int], None] | None = None,
) -> tuple[dict[str, int], bool, bool]:
    """The JSON Lines parser proper: each 16-byte hash is appended (`+=`) to the sink of
    its list (a bytearray, or a verifier.redis.spool.Spool for bounded memory). Returns
    the counts per type and whether registry / removed lines were seen."""
    a2b = binascii.a2b_base64
    counts = dict.fromkeys(REVOCATION_TYPES, 0)
    seen_registry = seen_removed = False
    n = 0
    for number, line in _lines(stream):
        where = f"revocations file: line {number}"
        try:
            obj = orjson.loads(line)
        except orjson.JSONDecodeError:
            raise RevocationFileError(f"{where}: not a JSON object") from None
        kind = _line_kind(obj)
        if kind is None:
            raise RevocationFileError(
                f'{where}: expected {{"type": ..., "hash": ...}}, {{"registry": ...}} or '
                '{"removed": ...}'
            )
        if kind == "type":
            entry_type, value = obj["type"], obj["hash"]
            if entry_type not in counts:
                raise RevocationFileError(
                    f'{where}: "type" must be one of {", ".join(REVOCATION_TYPES)}'
                )
            target = revoked
            counts[entry_type] += 1
        else:
            value = obj[kind]
            if kind == "registry":
                target, seen_registry = registry, True
            else:
                target, seen_removed = removed, True
        if type(value) is not str or len(value) != _B64_LEN:
            _decode_hash(value, where)
        try:
            raw = a2b(value, strict_mode=True)
        except (binascii.Error, ValueError):
            raw = b""
        if len(raw) != HASH_SIZE:
            _decode_hash(value, where)
        target += raw
        n += 1
        if n > MAX_STREAM_ENTRIES:
            raise RevocationFileError(f"revocations file: more than {MAX_STREAM_ENTRIES} entries")
        if progress is not None and n % 100_000 == 0:
            progress(n)
    return counts, seen_registry, seen_removed


class _Prefixed:
    """A binary stream that first returns `head` (bytes already read to tell the form
    apart), then the rest of `stream`: so a pipe (`/dev/stdin`, `<(...)`), which cannot
    seek back, reads like a file."""

    def __init__(self, head: bytes, stream: IO[bytes]) -> None:
        self._head = head
        self._stream = stream

    def read(self, size: int = -1) -> bytes:
        head, self._head = self._head, b""
        if size is None or size < 0:
            return head + self._stream.read()
        if len(head) >= size:
            self._head = head[size:]
            return head[:size]
        return head + self._stream.read(size - len(head))

    def readline(self, size: int = -1) -> bytes:
        if not self._head:
            # the head is spent: from now on the stream's own method, without this frame
            self.readline = self._stream.readline  # type: ignore[method-assign,assignment]
            return self._stream.readline(size)
        limit = size if size is not None and size >= 0 else None
        cut = self._head.find(b"\n")
        end = len(self._head) if cut < 0 else cut + 1
        if limit is not None:
            end = min(end, limit)
        line, self._head = self._head[:end], self._head[end:]
        if self._head or line.endswith(b"\n") or (limit is not None and len(line) >= limit):
            return line
        # the head ended inside this line: the rest comes from the stream
        return line + self._stream.readline(-1 if limit is None else limit - len(line))


@contextmanager
def _open_input(path: str | os.PathLike[str]) -> Iterator[tuple[bool, IO[bytes]]]:
    """(is JSON Lines, binary stream positioned at the start) of a revocations file,
    gunzipped when it is gzipped; the file may be a pipe (read once, front to back)."""
    name = os.fspath(path)
    try:
        raw = open(path, "rb")  # noqa: SIM115 - closed in finally
        raw.read(0)
    except FileNotFoundError:
        raise RevocationFileError(f"revocations file not found: {name}") from None
    except IsADirectoryError:
        raise RevocationFileError(f"revocations file is a directory: {name}") from None
    except OSError as exc:
        raise RevocationFileError(f"cannot read revocations file {name}: {exc.strerror}") from None
    try:
        try:
            magic = raw.read(2)
        except OSError as exc:
            raise RevocationFileError(
                f"cannot read revocations file {name}: {exc.strerror}"
            ) from None
        gzipped = magic == GZIP_MAGIC
        source = cast(IO[bytes], _Prefixed(magic, raw))
        stream = cast(IO[bytes], gzip.GzipFile(fileobj=source, mode="rb") if gzipped else source)
        try:
            seen: list[bytes] = []
            first = b""
            for _ in range(1000):  # the first non-blank line decides the form
                line = stream.readline(MAX_LINE_BYTES + 1)
                seen.append(line)
                first = line.strip()
                if first or not line:
                    break
            try:
                is_lines = _line_kind(orjson.loads(first)) is not None
            except orjson.JSONDecodeError:
                is_lines = False
            yield is_lines, cast(IO[bytes], _Prefixed(b"".join(seen), stream))
        except (OSError, EOFError, gzip.BadGzipFile) as exc:
            raise RevocationFileError(f"revocations file: cannot read it: {exc}") from None
    finally:
        raw.close()


def _read_json_form(stream: IO[bytes], name: str) -> Revocations:
    data = stream.read(MAX_FILE_BYTES + 1)
    if len(data) > MAX_FILE_BYTES:
        raise RevocationFileError(
            f"revocations file {name} is larger than {MAX_FILE_BYTES} bytes"
            " (uncompressed; use JSON Lines for larger inputs)"
        )
    return parse_revocations(data)


def load_revocations(
    path: str | os.PathLike[str], progress: Callable[[int], None] | None = None
) -> Revocations:
    """Read and parse a revocation file: JSON (at most MAX_FILE_BYTES) or JSON Lines (any
    size, streamed), either of them optionally gzipped. The file may be a pipe
    (`/dev/stdin`): it is read once, front to back."""
    with _open_input(path) as (is_lines, stream):
        if is_lines:
            return parse_revocation_lines(stream, progress)
        return _read_json_form(stream, os.fspath(path))


def load_revocations_into(
    path: str | os.PathLike[str],
    revoked: Any,
    registry: Any,
    removed: Any,
    progress: Callable[[int], None] | None = None,
) -> tuple[dict[str, int], bool, bool]:
    """load_revocations into sinks (verifier.redis.spool.Spool: `+=` one hash,
    `add_packed` many): JSON Lines stream straight into them, so memory does not grow
    with the file. Returns (counts per type, registry seen, removed seen)."""
    with _open_input(path) as (is_lines, stream):
        if is_lines:
            return _parse_lines_into(stream, revoked, registry, removed, progress)
        parsed = _read_json_form(stream, os.fspath(path))
    revoked.add_packed(parsed.revoked)
    if parsed.registry is not None:
        registry.add_packed(parsed.registry)
    if parsed.removed is not None:
        removed.add_packed(parsed.removed)
    return parsed.type_counts, parsed.registry is not None, parsed.removed is not None


def dump_revocations(
    revoked: bytes = b"", registry: bytes | None = None, kind: str = "UCI"
) -> bytes:
    """The JSON file for packed hashes (all revoked entries get `kind`). For tools and tests."""
    import base64

    if len(revoked) % HASH_SIZE or (registry is not None and len(registry) % HASH_SIZE):
        raise ValueError("packed hashes must be a multiple of 16 bytes")
    b64 = base64.b64encode
    obj: dict[str, object] = {
        "revoked": [
            {"type": kind, "hash": b64(revoked[i : i + HASH_SIZE]).decode("ascii")}
            for i in range(0, len(revoked), HASH_SIZE)
        ]
    }
    if registry is not None:
        obj["registry"] = [
            b64(registry[i : i + HASH_SIZE]).decode("ascii")
            for i in range(0, len(registry), HASH_SIZE)
        ]
    return orjson.dumps(obj)


# -- the EU revocation list (DRL) shape: kid-scoped batches --------------------------------

#: Bits of a DRL entry's declared hash types, as the engine reads them (snap.drl).
DRL_TYPE_BITS = {"UCI": 1, "COUNTRYCODEUCI": 2, "SIGNATURE": 4}
_DRL_FIELDS = frozenset({"kid", "hashType", "hashTypes", "expires", "entries", "country"})


def _drl_types(batch: dict[str, object], where: str) -> int:
    raw = batch.get("hashTypes", batch.get("hashType"))
    names = raw.split(",") if isinstance(raw, str) else raw
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise RevocationFileError(
            f"{where}: hashType(s) must name UCI, COUNTRYCODEUCI or SIGNATURE"
        )
    mask = 0
    for name in names:
        bit = DRL_TYPE_BITS.get(name.strip())
        if bit is None:
            raise RevocationFileError(f"{where}: unknown hash type {name.strip()[:40]!r}")
        mask |= bit
    return mask


def _drl_expires(value: object, where: str) -> int:
    from datetime import datetime  # noqa: PLC0415 - only for DRL input

    if type(value) is int and 0 <= value <= 253402300799:
        return value
    if isinstance(value, str) and len(value) <= 40:
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            moment = None
        if moment is not None and moment.tzinfo is not None:
            return int(moment.timestamp())
    raise RevocationFileError(
        f"{where}: expires must be an ISO 8601 time with an offset or epoch seconds"
    )


def parse_drl(data: bytes | bytearray | memoryview | str) -> dict[bytes, tuple[int, int, Any]]:
    """The EU DRL shape: {"drl": [{"kid": b64, "hashType": "UCI,SIGNATURE" (or
    "hashTypes": [...]), "expires": ISO 8601, "entries": [{"hash": b64} | b64, ...]}]}.

    Returns kid -> (type mask, expiry epoch, fastpath HashSet): the engine looks a token's
    hashes up in its kid's set, only for the declared types and only until expiry.
    Batches of one kid are merged (types joined, the latest expiry). All-or-nothing:
    RevocationFileError names the batch and entry.
    """
    from fastpath._hashset import HashSet  # noqa: PLC0415

    if len(data) > MAX_FILE_BYTES:
        raise RevocationFileError(f"DRL file: larger than {MAX_FILE_BYTES} bytes")
    try:
        obj = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise RevocationFileError(f"DRL file: invalid JSON: {exc}") from None
    batches = obj.get("drl") if isinstance(obj, dict) else obj
    if not isinstance(batches, list):
        raise RevocationFileError('DRL file: expected {"drl": [batch, ...]}')
    merged: dict[bytes, tuple[int, int, bytearray]] = {}
    total = 0
    for i, batch in enumerate(batches):
        where = f"drl[{i}]"
        if not isinstance(batch, dict):
            raise RevocationFileError(f"{where}: must be an object")
        extra = sorted(str(k)[:40] for k in batch if k not in _DRL_FIELDS)
        if extra:
            raise RevocationFileError(f"{where}: unexpected field(s) {', '.join(extra)}")
        kid_text = batch.get("kid")
        try:
            kid = (
                binascii.a2b_base64(kid_text, strict_mode=True)
                if isinstance(kid_text, str) and len(kid_text) <= 100
                else b""
            )
        except (binascii.Error, ValueError):
            kid = b""
        if not 0 < len(kid) <= 64:
            raise RevocationFileError(f"{where}: kid must be base64 of 1 to 64 bytes")
        mask = _drl_types(batch, where)
        expires = _drl_expires(batch.get("expires"), where)
        entries = batch.get("entries")
        if not isinstance(entries, list):
            raise RevocationFileError(f"{where}: entries must be a list")
        total += len(entries)
        if total > MAX_ENTRIES:
            raise RevocationFileError(f"DRL file: more than {MAX_ENTRIES} entries")
        old_mask, old_expires, packed = merged.get(kid, (0, expires, bytearray()))
        for j, entry in enumerate(entries):
            value = entry.get("hash") if isinstance(entry, dict) else entry
            packed += _decode_hash(value, f"{where}.entries[{j}]")
        merged[kid] = (old_mask | mask, max(old_expires, expires), packed)
    out: dict[bytes, tuple[int, int, Any]] = {}
    for kid, (mask, expires, packed) in merged.items():
        hashes = HashSet()
        hashes.add_packed(bytes(packed))
        out[kid] = (mask, expires, hashes)
    return out


def load_drl(path: str | os.PathLike[str]) -> dict[bytes, tuple[int, int, Any]]:
    """Read and parse a DRL file (at most MAX_FILE_BYTES)."""
    return parse_drl(read_capped(path, MAX_FILE_BYTES, "DRL file", RevocationFileError))
