"""The snapshot file's sets file and hash-set overlays (verifier.redis.snapshot), without
Redis: written, mapped (the tables from the sets file, the overlays layered over them),
and refused when an overlay does not add up, is damaged, or the header's format does not
announce a sets file."""

from __future__ import annotations

import os
from pathlib import Path

import orjson
import pytest

from fastpath._hashset import HashSet
from keys.registry import TrustRegistry
from verifier.redis.format import StoreDataError
from verifier.redis.snapshot import (
    MAGIC,
    map_snapshot,
    read_header,
    sets_file_name,
    sets_file_stem,
    write_sets_file,
    write_snapshot,
)


class _Info:
    def __init__(self, n: int) -> None:
        self.n = n

    def to_obj(self) -> dict[str, int]:
        return {"count": self.n}


@pytest.fixture
def trust(issuers) -> bytes:
    return TrustRegistry.from_dict({"keys": [issuers[0].trust_entry()]}).to_json()


def write(path: Path, trust: bytes, ref, overlay=None) -> None:
    write_snapshot(
        path,
        version="2-x",
        seq=2,
        trust_json=trust,
        trust_id="t",
        revoked=None,
        registry=None,
        sets_ref=ref,
        sets_overlay=overlay,
    )


def test_sets_file_and_overlays_map_as_the_merged_sets(tmp_path, trust):
    path = tmp_path / "m.snap"
    revoked = sorted(os.urandom(16) for _ in range(1000))
    registry = [os.urandom(16) for _ in range(10)]
    stem = sets_file_name(str(path), _Info(1000), _Info(10))
    ref = write_sets_file(str(path), stem, HashSet(b"".join(revoked)), HashSet(b"".join(registry)))
    assert sets_file_stem(ref["file"]) == stem and (tmp_path / ref["file"]).exists()
    new, gone = os.urandom(16), revoked[:2]
    write(path, trust, ref, {"revoked": (new, b"".join(gone), 999), "registry": (b"", b"", 10)})
    header = read_header(path)
    assert header["format"] == 4 and "registry_overlay" not in header["sections"]
    assert os.path.getsize(path) <= 4 * 4096  # the tables are not in it
    rep = map_snapshot(path).replica
    assert len(rep.revoked) == 999 and rep.revoked.layered and not rep.registry.layered
    assert new in rep.revoked and gone[0] not in rep.revoked and revoked[5] in rep.revoked
    assert rep.counts()["revoked"] == 999 and rep.counts()["registry"] == 10
    assert rep.revoked.to_packed() == b"".join(sorted([*revoked[2:], new]))
    # a snapshot that keeps the sets file reuses the mapped tables (one cache entry)
    cache: dict = {}
    a = map_snapshot(path, sets_cache=cache).replica
    b = map_snapshot(path, sets_cache=cache).replica
    assert a.revoked.layers()[0] is b.revoked.layers()[0] and len(cache) == 1


def test_bad_overlays_and_headers_are_refused(tmp_path, trust):
    path = tmp_path / "m.snap"
    revoked = [os.urandom(16) for _ in range(100)]
    ref = write_sets_file(
        str(path), sets_file_name(str(path), _Info(100), None), HashSet(b"".join(revoked)), None
    )
    new = os.urandom(16)
    # a merged count that does not add up (an added hash the file already holds)
    write(path, trust, ref, {"revoked": (revoked[3], b"", 101)})
    with pytest.raises(StoreDataError, match="merged count"):
        map_snapshot(path)
    # a damaged overlay section
    write(path, trust, ref, {"revoked": (new, b"", 101)})
    data = bytearray(path.read_bytes())
    data[read_header(path)["sections"]["revoked_overlay"]["offset"]] ^= 1
    path.write_bytes(bytes(data))
    with pytest.raises(StoreDataError, match="checksum"):
        map_snapshot(path)
    # an overlay of a registry that the sets file does not hold
    write(path, trust, ref, {"revoked": (new, b"", 101)})
    assert map_snapshot(path).replica.registry is None
    header = read_header(path)
    sections = header["sections"]

    def rewrite(**changes) -> None:
        head = dict(header, **changes)
        blob = orjson.dumps(head)
        raw = bytearray(path.read_bytes())
        raw[: len(MAGIC) + 4 + len(blob)] = MAGIC + len(blob).to_bytes(4, "big") + blob
        path.write_bytes(bytes(raw))

    rewrite(format=3)  # a sets file in a header that does not announce it
    with pytest.raises(StoreDataError, match="format 4"):
        map_snapshot(path)
    rewrite(format=4, sections=dict(sections, registry_overlay=sections["revoked_overlay"]))
    with pytest.raises(StoreDataError, match="registry overlay but no registry"):
        map_snapshot(path)
    bad = dict(sections["revoked_overlay"], added=2)
    rewrite(format=4, sections=dict(sections, revoked_overlay=bad))
    with pytest.raises(StoreDataError, match="sizes do not match"):
        map_snapshot(path)
    evil = dict(sections["revoked"], file="../" + sections["revoked"]["file"])
    rewrite(format=4, sections=dict(sections, revoked=evil))
    with pytest.raises(StoreDataError, match="file name invalid"):
        map_snapshot(path)
    (tmp_path / ref["file"]).unlink()  # the sets file gone: refused, not half-read
    rewrite(format=4, sections=sections)
    with pytest.raises(StoreDataError, match="sets file unusable"):
        map_snapshot(path)
