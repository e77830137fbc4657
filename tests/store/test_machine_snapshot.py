"""One snapshot per machine: the file format, and worker processes that map it (a real
redis-server; worker processes started by the test)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from redis_support import RedisServer, requires_redis, wait_until

from fastpath._hashset import HashSet
from keys.registry import TrustRegistry
from verifier.redis.format import StoreDataError
from verifier.redis.snapshot import map_snapshot, write_snapshot
from verifier.redis.sync import sync_state
from verifier.revocations import Revocations, load_revocations

WORKER = Path(__file__).with_name("store_worker.py")


def _trust_json(trust_file: Path) -> bytes:
    return bytes(TrustRegistry.from_file(trust_file).to_json())


def test_snapshot_round_trip_maps_without_copying(tmp_path, trust_file):
    keys = os.urandom(16 * 20_000)
    revoked, registry = HashSet(keys), HashSet(keys[: 16 * 50])
    path = tmp_path / "m.snap"
    size = write_snapshot(
        path,
        version="7-abcdef01",
        seq=7,
        trust_json=_trust_json(trust_file),
        trust_id="t" * 32,
        revoked=revoked,
        registry=registry,
    )
    assert size == path.stat().st_size and size % 4096 == 0
    snap = map_snapshot(path)
    rep = snap.replica
    assert (rep.version, rep.seq, rep.trust_id) == ("7-abcdef01", 7, "t" * 32)
    assert rep.revoked.readonly and rep.registry is not None and rep.registry.readonly
    assert rep.revoked == revoked and rep.registry == registry
    assert rep.is_revoked(keys[16:32], bytes(16), bytes(16))
    assert rep.in_registry(keys[:16]) is True and rep.in_registry(keys[-16:]) is False
    assert len(rep.trust) == 1 and rep.records is None
    # the file can be replaced while mapped: the mapping keeps the old inode
    write_snapshot(
        path,
        version="8-abcdef02",
        seq=8,
        trust_json=_trust_json(trust_file),
        trust_id="t" * 32,
        revoked=HashSet(),
        registry=None,
    )
    assert rep.is_revoked(keys[16:32], bytes(16), bytes(16)) and len(rep.revoked) == 20_000
    again = map_snapshot(path).replica
    assert again.version == "8-abcdef02" and len(again.revoked) == 0 and again.registry is None


@pytest.mark.parametrize("damage", ["truncate", "flip_table", "flip_header", "magic"])
def test_damaged_snapshot_is_refused(tmp_path, trust_file, damage):
    path = tmp_path / "m.snap"
    write_snapshot(
        path,
        version="1-abcdef01",
        seq=1,
        trust_json=_trust_json(trust_file),
        trust_id="t" * 32,
        revoked=HashSet(os.urandom(16 * 5000)),
        registry=None,
    )
    data = bytearray(path.read_bytes())
    if damage == "truncate":
        data = data[: len(data) // 2]
    elif damage == "flip_table":
        data[-4096 - 100] ^= 0x40
    elif damage == "flip_header":
        data[20] ^= 0x01
    else:
        data[:8] = b"QRVSNAP1"
    path.write_bytes(bytes(data))
    with pytest.raises(StoreDataError):
        map_snapshot(path)


def test_mapping_adds_no_private_copy(tmp_path, trust_file):
    """The tables stay in the page cache: mapping 1 M hashes (19 MB of table) adds almost
    nothing to the process's anonymous (private) memory."""
    path = tmp_path / "big.snap"
    big = HashSet(os.urandom(16 * 1_000_000))
    write_snapshot(
        path,
        version="1-abcdef01",
        seq=1,
        trust_json=_trust_json(trust_file),
        trust_id="t" * 32,
        revoked=big,
        registry=None,
    )
    table = big.nbytes
    del big
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; sys.path.insert(0, sys.argv[2]);"
            "from store_worker import anon_kb; from verifier.redis.snapshot import map_snapshot;"
            "import keys.registry;"
            "b = anon_kb(); s = map_snapshot(sys.argv[1]);"
            "k = bytes(16); [s.replica.revoked.contains(k) for _ in range(10)];"
            "print(anon_kb() - b, len(s.replica.revoked))",
            str(path),
            str(WORKER.parent),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    grown_kb, count = (int(x) for x in out.stdout.split())
    assert count == 1_000_000
    assert grown_kb * 1024 < table // 10, (grown_kb, table)


# ---- worker processes against a real Redis ----------------------------------------------


class Worker:
    def __init__(self, url: str, path: Path, max_age: float = 60.0) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(WORKER), url, str(path), str(max_age)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.first = self._read()

    def _read(self) -> dict:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("worker exited")
        return json.loads(line)

    def ask(self, cmd: str) -> dict:
        assert self.proc.stdin is not None
        self.proc.stdin.write(cmd + "\n")
        self.proc.stdin.flush()
        return self._read()

    def status(self) -> dict:
        return self.ask("status")

    def revoked(self, key: bytes) -> bool:
        return bool(self.ask(f"revoked {key.hex()}")["revoked"])

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.close()  # type: ignore[union-attr]
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc.stdout.close()  # type: ignore[union-attr]


@pytest.fixture
def workers():
    started: list[Worker] = []

    def start(url, path, max_age=60.0):
        w = Worker(url, path, max_age)
        started.append(w)
        return w

    yield start
    for w in started:
        w.close()


def _sync(server, trust_file=None, rev_path=None, **kw):
    return sync_state(
        server.client(),
        trust=TrustRegistry.from_file(trust_file) if trust_file else None,
        revocations=load_revocations(rev_path) if rev_path else None,
        **kw,
    )


@pytest.mark.redis
@requires_redis
@pytest.mark.slow
def test_workers_share_one_file_agree_and_survive_redis_down(
    tmp_path, trust_file, hashes, write_revocations, workers
):
    path = tmp_path / "machine.snap"
    revoked = hashes(3000)
    write_revocations(tmp_path / "r.json", revoked)
    server = RedisServer().start()
    try:
        _sync(server, trust_file, tmp_path / "r.json")
        a, b = workers(server.url, path), workers(server.url, path)
        assert a.first.get("started") and b.first.get("started"), (a.first, b.first)
        roles = sorted(w.status()["role"] for w in (a, b))
        assert roles == ["builder", "reader"]
        # a new revocation reaches both workers; they agree on the version
        new = hashes(1)[0]
        write_revocations(tmp_path / "n.json", [new])
        result = _sync(server, rev_path=tmp_path / "n.json")
        for w in (a, b):
            assert wait_until(lambda w=w: w.revoked(new), timeout=10)
            assert w.status()["version"] == result.version
        # Redis goes away; the builder is SIGKILLed; a new worker starts from the file
        server.stop()
        builder = a if a.status()["role"] == "builder" else b
        other = b if builder is a else a
        builder.proc.send_signal(signal.SIGKILL)
        builder.proc.wait(timeout=10)
        c = workers(server.url, path)
        assert c.first.get("started"), c.first
        st = c.status()
        assert st["version"] == result.version and st["ready"] is True
        assert c.revoked(new) and c.revoked(revoked[5])
        # one of the survivors takes the builder's lock over
        assert wait_until(
            lambda: "builder" in {other.status()["role"], c.status()["role"]}, timeout=10
        )
        # Redis back, with its data lost: an incremental sync is refused (guard), a
        # complete one reaches every worker
        server.start()
        write_revocations(tmp_path / "today.json", [hashes(1)[0]])
        with pytest.raises(Exception, match="first version needs both"):
            _sync(server, rev_path=tmp_path / "today.json")
        write_revocations(tmp_path / "all.json", [*revoked, new, *hashes(2)])
        full = _sync(server, trust_file, tmp_path / "all.json")
        for w in (other, c):
            assert wait_until(lambda w=w: w.status()["version"] == full.version, timeout=10)
            assert w.status()["counts"]["revoked"] == 3003
    finally:
        server.close()


@pytest.mark.redis
@requires_redis
def test_reader_ready_with_young_snapshot_while_redis_down(
    tmp_path, trust_file, hashes, write_revocations, workers
):
    path = tmp_path / "machine.snap"
    write_revocations(tmp_path / "r.json", hashes(100))
    with RedisServer() as server:
        _sync(server, trust_file, tmp_path / "r.json")
        w = workers(server.url, path, 3600.0)
        assert w.status()["ready"] is True
        server.stop()
        # a second worker starts without Redis: maps the file, ready while it is young
        w2 = workers(server.url, path, 3600.0)
        st = w2.status()
        assert w2.first.get("started") and st["ready"] is True
        assert st["counts"]["revoked"] == 100 and st["version"] == w.status()["version"]
        # with a short max-age the same file is too old: not ready, and it says why
        os.utime(path, (1, 1))
        w3 = workers(server.url, path, 5.0)
        st3 = w3.status()
        assert st3["ready"] is False and "old" in st3["reason"]


@pytest.mark.redis
@requires_redis
def test_no_private_copy_in_workers(tmp_path, trust_file, workers):
    path = tmp_path / "machine.snap"
    with RedisServer() as server:
        sync_state(
            server.client(),
            trust=TrustRegistry.from_file(trust_file),
            revocations=Revocations(revoked=os.urandom(16 * 500_000)),
        )
        ws = [workers(server.url, path) for _ in range(2)]
        table = 500_000 * 19
        for w in ws:
            assert w.status()["counts"]["revoked"] == 500_000
            # the builder held the set while writing the file, then dropped it
            assert w.ask("anon")["anon_kb"] * 1024 < table, w.status()["role"]
