"""The snapshot writer hands the kernel at most WRITE_STEP bytes per write() call (a
write() of several MiB into the page cache runs unpreempted on a kernel without
preemption, and a woken request thread waits it out), and the file is the same bytes."""

from __future__ import annotations

import os
import zlib
from typing import Any

from verifier.redis.snapshot import SYNC_EVERY, WRITE_STEP, _CrcWriter, map_snapshot, write_snapshot


class _Recording:
    """A real file that records the size of every write it is given."""

    def __init__(self, fh: Any) -> None:
        self.fh = fh
        self.sizes: list[int] = []

    def write(self, data: Any) -> int:
        self.sizes.append(len(data))
        return int(self.fh.write(data))

    def flush(self) -> None:
        self.fh.flush()

    def fileno(self) -> int:
        return int(self.fh.fileno())


def test_crc_writer_writes_in_steps_and_keeps_crc_and_bytes(tmp_path):
    data = os.urandom(3 * WRITE_STEP + 12345)
    small = b"header"
    path = tmp_path / "out.bin"
    with open(path, "wb") as fh:
        rec = _Recording(fh)
        writer = _CrcWriter(rec)
        assert writer.write(memoryview(data)) == len(data)
        assert writer.write(small) == len(small)
        assert writer.write(b"") == 0
    assert rec.sizes == [WRITE_STEP, WRITE_STEP, WRITE_STEP, 12345, len(small)]
    assert writer.length == len(data) + len(small)
    assert writer.crc == zlib.crc32(data + small)
    assert path.read_bytes() == data + small


def test_crc_writer_still_syncs_every_sync_every_bytes(tmp_path, monkeypatch):
    synced: list[int] = []
    monkeypatch.setattr(os, "fdatasync", lambda fd: synced.append(fd))
    with open(tmp_path / "big.bin", "wb") as fh:
        writer = _CrcWriter(fh)
        block = os.urandom(4 << 20)
        for _ in range(SYNC_EVERY // len(block) * 2):
            writer.write(block)
    assert len(synced) == 2


def test_snapshot_written_in_steps_maps_and_checks(tmp_path):
    from fastpath._hashset import HashSet

    revoked = HashSet(os.urandom(16 * 100_000))  # a table of several WRITE_STEPs
    path = tmp_path / "m.snap"
    write_snapshot(
        path,
        version="1-a",
        seq=1,
        trust_json=b'{"keys": []}',
        trust_id="t",
        revoked=revoked,
        registry=None,
    )
    snap = map_snapshot(str(path))  # the first map checks every section's CRC-32
    assert len(snap.replica.revoked) == 100_000
