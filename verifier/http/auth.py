"""Scanner API keys: the key file, and constant-time lookup of a presented `X-API-Key`.

Key file (JSON, at most 16 MiB, at most 100,000 keys):

    {"keys": [{"name": "cafe-12", "key": "a-long-random-secret"},
              {"name": "stadium-gate-3", "sha256": "<hex SHA-256 of the secret>"}]}

`name` is what metrics and logs show (letters, digits, `.`, `_`, `-`; 1-64 characters,
unique); the secret itself never leaves this module. A secret is given either in clear
(`key`, at least 16 characters) or as the hex SHA-256 of its UTF-8 bytes (`sha256`), so a
key file need not hold the secrets themselves.

Lookup hashes the presented key with SHA-256 and finds the digest in a dict, then confirms
with `hmac.compare_digest`: the time taken depends only on a digest the caller cannot
steer, never on how many leading characters of a real key were guessed right.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
from collections.abc import Iterable, Mapping
from typing import Any

import orjson

from verifier.errors import QrverifyError

MAX_FILE_BYTES = 16 * 1024 * 1024
MAX_KEYS = 100_000
MIN_SECRET_CHARS = 16
MAX_SECRET_CHARS = 1024
_NAME_RE = re.compile(r"[A-Za-z0-9._-]{1,64}")
_HEX64_RE = re.compile(r"[0-9a-fA-F]{64}")


class ApiKeyFileError(QrverifyError, ValueError):
    """The API-key file is missing, unreadable or malformed (message says where)."""


class ApiKeys:
    """An immutable set of named scanner keys."""

    __slots__ = ("_by_digest", "_names")

    def __init__(self, entries: Iterable[tuple[str, bytes]]) -> None:
        """`entries`: (name, SHA-256 digest of the secret) pairs."""
        by_digest: dict[bytes, tuple[str, bytes]] = {}
        names: set[str] = set()
        for name, digest in entries:
            if not isinstance(name, str) or not _NAME_RE.fullmatch(name):
                raise ApiKeyFileError(f"bad key name {name!r}")
            if name in names:
                raise ApiKeyFileError(f"duplicate key name {name!r}")
            if not isinstance(digest, bytes) or len(digest) != 32:
                raise ApiKeyFileError(f"key {name!r}: digest must be 32 bytes")
            if digest in by_digest:
                raise ApiKeyFileError(f"key {name!r}: same secret as key {by_digest[digest][0]!r}")
            names.add(name)
            by_digest[digest] = (name, digest)
        if not by_digest:
            raise ApiKeyFileError("the key file holds no keys")
        self._by_digest = by_digest
        self._names = frozenset(names)

    @classmethod
    def from_dict(cls, obj: Any) -> ApiKeys:
        if not isinstance(obj, Mapping) or not isinstance(obj.get("keys"), list):
            raise ApiKeyFileError('expected a JSON object {"keys": [...]}')
        items = obj["keys"]
        if len(items) > MAX_KEYS:
            raise ApiKeyFileError(f"too many keys ({len(items)} > {MAX_KEYS})")
        entries: list[tuple[str, bytes]] = []
        for i, item in enumerate(items):
            entries.append(_parse_entry(i, item))
        return cls(entries)

    @classmethod
    def from_json(cls, data: bytes) -> ApiKeys:
        if len(data) > MAX_FILE_BYTES:
            raise ApiKeyFileError(f"key file larger than {MAX_FILE_BYTES} bytes")
        try:
            obj = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise ApiKeyFileError(f"key file is not valid JSON: {exc}") from None
        return cls.from_dict(obj)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> ApiKeys:
        try:
            with open(path, "rb") as fh:
                data = fh.read(MAX_FILE_BYTES + 1)
        except OSError as exc:
            raise ApiKeyFileError(
                f"cannot read API-key file {os.fspath(path)!r}: {exc.strerror or exc}"
            ) from None
        try:
            return cls.from_json(data)
        except ApiKeyFileError as exc:
            raise ApiKeyFileError(f"{os.fspath(path)}: {exc}") from None

    def lookup(self, presented: str | bytes | None) -> str | None:
        """The name of the key `presented`, or None when it is not a valid key."""
        if presented is None:
            return None
        raw = (
            presented.encode("utf-8", "surrogateescape")
            if isinstance(presented, str)
            else presented
        )
        if not raw or len(raw) > MAX_SECRET_CHARS * 4:
            return None
        digest = hashlib.sha256(raw).digest()
        entry = self._by_digest.get(digest)
        if entry is None:
            return None
        name, stored = entry
        return name if hmac.compare_digest(stored, digest) else None

    @property
    def names(self) -> frozenset[str]:
        return self._names

    def __len__(self) -> int:
        return len(self._by_digest)


def _parse_entry(i: int, item: Any) -> tuple[str, bytes]:
    where = f"keys[{i}]"
    if not isinstance(item, Mapping):
        raise ApiKeyFileError(f"{where}: expected an object")
    unknown = set(item) - {"name", "key", "sha256"}
    if unknown:
        raise ApiKeyFileError(f"{where}: unknown field(s) {sorted(unknown)}")
    name = item.get("name")
    if not isinstance(name, str) or not _NAME_RE.fullmatch(name):
        raise ApiKeyFileError(f"{where}: \"name\" must be 1-64 letters, digits, '.', '_' or '-'")
    has_key, has_hash = "key" in item, "sha256" in item
    if has_key == has_hash:
        raise ApiKeyFileError(f'{where} ({name}): give exactly one of "key" or "sha256"')
    if has_key:
        secret = item["key"]
        if not isinstance(secret, str) or not (MIN_SECRET_CHARS <= len(secret) <= MAX_SECRET_CHARS):
            raise ApiKeyFileError(
                f'{where} ({name}): "key" must be a string of {MIN_SECRET_CHARS}-'
                f"{MAX_SECRET_CHARS} characters"
            )
        if secret != secret.strip() or not secret.isprintable():
            raise ApiKeyFileError(f'{where} ({name}): "key" has spaces or control characters')
        return name, hashlib.sha256(secret.encode("utf-8")).digest()
    hexdigest = item["sha256"]
    if not isinstance(hexdigest, str) or not _HEX64_RE.fullmatch(hexdigest):
        raise ApiKeyFileError(f'{where} ({name}): "sha256" must be 64 hex digits')
    return name, bytes.fromhex(hexdigest)
