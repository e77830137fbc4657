"""Fixtures for the store tests: an issuer, its trust file, revocation files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from redis_support import redis_server  # noqa: F401  (fixture)

from keys.issuer import new_issuer
from keys.registry import TrustRegistry
from verifier.revocations import dump_revocations


@pytest.fixture(autouse=True)
def snapshot_dir(tmp_path, monkeypatch):
    """Each test gets its own machine-snapshot directory (RedisStore's default path)."""
    path = tmp_path / "snapshots"
    monkeypatch.setenv("QRVERIFY_SNAPSHOT_DIR", str(path))
    return path


@pytest.fixture(scope="session")
def issuers(tmp_path_factory):
    base = tmp_path_factory.mktemp("issuers")
    return [new_issuer(base / "a", country="RU"), new_issuer(base / "b", country="DE")]


@pytest.fixture
def trust_file(tmp_path, issuers) -> Path:
    path = tmp_path / "trust.json"
    path.write_bytes(TrustRegistry.from_dict({"keys": [issuers[0].trust_entry()]}).to_json())
    return path


@pytest.fixture
def trust_file_b(tmp_path, issuers) -> Path:
    path = tmp_path / "trust_b.json"
    path.write_bytes(TrustRegistry.from_dict({"keys": [issuers[1].trust_entry()]}).to_json())
    return path


def _write_revocations(path: Path, revoked=(), registry=None, kind: str = "UCI") -> Path:
    path.write_bytes(
        dump_revocations(b"".join(revoked), None if registry is None else b"".join(registry), kind)
    )
    return path


@pytest.fixture
def write_revocations():
    """write_revocations(path, revoked=[16-byte hashes], registry=None | [...]) -> path"""
    return _write_revocations


@pytest.fixture
def hashes():
    """hashes(n) -> n random 16-byte hashes"""
    return lambda n: [os.urandom(16) for _ in range(n)]


@pytest.fixture
def store(redis_server):  # noqa: F811  (the fixture imported above)
    """Factory: store(**kw) -> a RedisStore following the test's redis-server (polling every
    0.1 s unless told otherwise); every store made is closed afterwards."""
    from verifier.redis.store import RedisStore

    stores: list[RedisStore] = []

    def make(**kw):
        kw.setdefault("poll_interval", 0.1)
        s = RedisStore.connect(redis_server.url, **kw)
        stores.append(s)
        return s

    yield make
    for s in stores:
        s.close()
