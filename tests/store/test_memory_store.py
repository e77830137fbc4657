"""MemoryStore, the embedded default, on HashSet."""

from __future__ import annotations

import os

import pytest

from fastpath._hashset import HashSet
from keys.registry import TrustFileError, TrustRegistry
from verifier.revocations import RevocationFileError
from verifier.store import MemoryStore

A, B, C, D = (os.urandom(16) for _ in range(4))


def test_from_files(trust_file, tmp_path, write_revocations):
    rev = write_revocations(tmp_path / "rev.json", [A, B], registry=[C])
    store = MemoryStore.from_files(trust_file, rev)
    assert store.is_revoked(A, D, D) and store.is_revoked(D, B, D)
    assert not store.is_revoked(C, D, D)
    assert store.in_registry(C) is True and store.in_registry(A) is False
    status = store.status()
    assert status["ready"] is True and status["reason"] is None
    assert status["counts"] == {"keys": 1, "revoked": 2, "registry": 1, "skipped_keys": 0}
    assert status["source"] == "files"


def test_no_registry_key_means_no_registry_check(trust_file, tmp_path, write_revocations):
    rev = write_revocations(tmp_path / "rev.json", [A])
    store = MemoryStore.from_files(trust_file, rev)
    assert store.in_registry(A) is None
    assert MemoryStore.from_files(trust_file).in_registry(A) is None


def test_no_keys_not_ready():
    store = MemoryStore(TrustRegistry.empty())
    assert store.status()["ready"] is False
    assert store.status()["reason"] == "no issuer keys loaded"


def test_accepts_hashset_packed_or_iterable():
    reg = TrustRegistry.empty()
    for revoked in (HashSet(A + B), A + B, [A, B]):
        store = MemoryStore(reg, revoked, registry=[C])
        assert store.is_revoked(D, D, B) and not store.is_revoked(C, C, C)
        assert store.in_registry(C) is True


def test_bad_files_raise_value_errors(trust_file, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"revoked": [{"type": "UCI", "hash": "x"}]}')
    with pytest.raises(RevocationFileError, match=r"revoked\[0\]"):
        MemoryStore.from_files(trust_file, bad)
    with pytest.raises(TrustFileError):
        MemoryStore.from_files(bad, None)


def test_wrong_hash_length_fails_closed():
    store = MemoryStore(TrustRegistry.empty(), [A])
    with pytest.raises(ValueError):
        store.is_revoked(b"short", A, A)
