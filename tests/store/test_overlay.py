"""Register records changed by `qrverify sync` reach the machine's snapshot as an overlay
over the unchanged records file (verifier.redis.build.records_overlay), against a real
redis-server: the file stays (same name and inode), verdicts and counts follow the
change; a chain of changes layers over the overlay; a large change, --replace, a delta
without `x`, an expired delta and a tampered one rewrite the file (never a wrong answer)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from links.link_support import AT, CK, RECORDS, UNRZ, link, record, write_jsonl
from redis_support import requires_redis, sync_cli

from fastpath._records import RecordTable, record_key
from verifier import Verifier
from verifier.reasons import Reason
from verifier.redis import build
from verifier.redis.format import Layout, read_current
from verifier.redis.snapshot import read_header

pytestmark = [pytest.mark.redis, requires_redis]
L = Layout()
OTHER = "9160000000000009"


def rec_files(directory: Path) -> dict[str, int]:
    """The records files beside the snapshot: name -> inode."""
    return {p.name: p.stat().st_ino for p in directory.iterdir() if ".rec-" in p.name}


def sections(s: Any) -> dict[str, Any]:
    return dict(read_header(s._path)["sections"])


def reason(v: Verifier, text: str) -> Reason | None:
    return v.verify(text, AT).reason


@pytest.fixture
def first(redis_server, trust_file, tmp_path, write_revocations):
    """Redis holding trust, no revocations and the test register (7 records)."""
    write_revocations(tmp_path / "r.json", [])
    records = write_jsonl(tmp_path / "register.jsonl", RECORDS)
    code = sync_cli(
        redis_server.url, "--trust", trust_file, "--revocations", tmp_path / "r.json",
        "--records", records,
    )  # fmt: skip
    assert code == 0
    return records


def step(s: Any, url: str, *args: str | Path) -> None:
    """One sync, then one round of the store (build, map): the new version is served."""
    before = read_current_of(url)
    assert sync_cli(url, *args) == 0
    assert read_current_of(url) != before
    s.refresh()
    assert s.replica.version == read_current_of(url)


def read_current_of(url: str) -> str | None:
    import redis

    client = redis.Redis.from_url(url)
    try:
        return read_current(client, L)
    finally:
        client.close()


def test_add_change_remove_keep_the_records_file(
    redis_server, first, store, tmp_path, snapshot_dir
):
    url = redis_server.url
    s = store(follow=False, build_in_child=False)
    v = Verifier(s)
    files = rec_files(snapshot_dir)
    assert len(files) == 1 and "overlay" not in sections(s)
    # change: one record revoked
    step(s, url, "--records", write_jsonl(tmp_path / "c.jsonl", [record(status="revoked")]))
    assert rec_files(snapshot_dir) == files  # same file, same inode: nothing rewritten
    assert sections(s)["overlay"]["count"] == 7 and read_header(s._path)["format"] == 4
    assert reason(v, link(UNRZ, CK)) is Reason.REVOKED
    assert reason(v, link("9160000000000005")) is None  # untouched
    assert s.status()["counts"]["records"] == 7
    # add
    step(s, url, "--records", write_jsonl(tmp_path / "a.jsonl", [record(id=OTHER, ck="44" * 16)]))
    assert rec_files(snapshot_dir) == files
    assert reason(v, link(OTHER, "44" * 16)) is None
    assert reason(v, link(OTHER, "45" * 16)) is Reason.NOT_FOUND
    assert reason(v, link(UNRZ, CK)) is Reason.REVOKED  # the earlier change stays
    assert s.status()["counts"]["records"] == 8
    # remove
    gone = write_jsonl(tmp_path / "d.jsonl", [{"id": "9160000000000002"}])
    step(s, url, "--records-remove", gone)
    assert rec_files(snapshot_dir) == files
    assert reason(v, link("9160000000000002", "00" * 16)) is Reason.NOT_FOUND
    assert s.status()["counts"]["records"] == 7
    table = s.replica.records
    assert table is not None and table.overlay is not None
    assert table.overlay.base_count == 3  # changed, added, tombstone
    # the served view is exactly what Redis holds
    from verifier.redis.format import fetch_records, read_manifest

    client = redis_server.client()
    truth = fetch_records(client, L, read_manifest(client, L, read_current(client, L)).records)
    assert dict(table.packed()) == dict(truth.packed())


@pytest.mark.slow
def test_in_the_builder_child_and_back_to_the_file(
    redis_server, first, store, tmp_path, snapshot_dir
):
    """The same through the builder's child process; a change undone gives back the
    file's own pieces: no overlay, still the same file."""
    url = redis_server.url
    s = store(follow=False)
    v = Verifier(s)
    files = rec_files(snapshot_dir)
    step(s, url, "--records", write_jsonl(tmp_path / "c.jsonl", [record(status="revoked")]))
    assert reason(v, link(UNRZ, CK)) is Reason.REVOKED and "overlay" in sections(s)
    step(s, url, "--records", write_jsonl(tmp_path / "b.jsonl", [record()]))
    assert reason(v, link(UNRZ, CK)) is None
    assert "overlay" not in sections(s) and read_header(s._path)["format"] == 4
    assert rec_files(snapshot_dir) == files and len(s.replica.records) == 7


def test_chain_then_large_change_rebases(
    redis_server, first, store, tmp_path, snapshot_dir, monkeypatch
):
    url = redis_server.url
    s = store(follow=False, build_in_child=False)
    v = Verifier(s)
    files = rec_files(snapshot_dir)
    # several versions between two builds: one chain, layered over the file at once
    for i in range(3):
        assert sync_cli(url, "--records", write_jsonl(
            tmp_path / f"n{i}.jsonl", [record(id=f"91600000000001{i:02d}", ck=f"{i:032x}")]
        )) == 0  # fmt: skip
    s.refresh()
    assert rec_files(snapshot_dir) == files and sections(s)["overlay"]["count"] == 10
    # overlay over overlay: the next version carries the earlier overlay on
    step(s, url, "--records", write_jsonl(tmp_path / "c.jsonl", [record(status="revoked")]))
    assert rec_files(snapshot_dir) == files
    assert s.replica.records.overlay.base_count == 4  # type: ignore[union-attr]
    for i in range(3):
        assert reason(v, link(f"91600000000001{i:02d}", f"{i:032x}")) is None
    assert reason(v, link(UNRZ, CK)) is Reason.REVOKED
    # past the cap: a rebase (a new file, no overlay)
    monkeypatch.setattr(build, "OVERLAY_MAX_ENTRIES", 4)
    step(s, url, "--records", write_jsonl(tmp_path / "big.jsonl", [record(id=OTHER)]))
    now = rec_files(snapshot_dir)
    assert len(now) == 1 and now != files and "overlay" not in sections(s)
    assert reason(v, link(OTHER, CK)) is None and reason(v, link(UNRZ, CK)) is Reason.REVOKED
    assert len(s.replica.records) == 11
    # --replace: not described by the delta, rewritten
    monkeypatch.setattr(build, "OVERLAY_MAX_ENTRIES", 262_144)
    only = write_jsonl(tmp_path / "only.jsonl", [record(id=OTHER, ck="44" * 16)])
    step(s, url, "--records", only, "--replace")
    assert rec_files(snapshot_dir).keys() != now.keys() and "overlay" not in sections(s)
    assert len(s.replica.records) == 1
    assert reason(v, link(OTHER, "44" * 16)) is None
    assert reason(v, link(UNRZ, CK)) is Reason.NOT_FOUND


def _delta_of_current(redis_server) -> str:
    client = redis_server.client()
    return L.delta(read_current(client, L))


@pytest.mark.parametrize("how", ["no_x", "expired", "count", "garbage"])
def test_unusable_delta_rewrites_the_file(redis_server, first, store, tmp_path, snapshot_dir, how):
    url = redis_server.url
    s = store(follow=False, build_in_child=False)
    v = Verifier(s)
    files = rec_files(snapshot_dir)
    assert sync_cli(url, "--records", write_jsonl(tmp_path / "a.jsonl", [record(id=OTHER)])) == 0
    client = redis_server.client()
    key = _delta_of_current(redis_server)
    assert client.hget(key, "x") == b"1" and client.hget(key, "xa")
    if how == "no_x":  # as a sync that predates record deltas writes it
        client.hdel(key, "x", "xa", "xd")
    elif how == "expired":
        client.delete(key)
    elif how == "count":  # the added record taken out of xa: 7 + 0 != 8
        client.hset(key, "xa", RecordTable.from_records([]).to_bytes())
    else:
        client.hset(key, "xa", b"not a table")
    s.refresh()
    assert s.replica.version == read_current(client, L)
    assert rec_files(snapshot_dir) != files and "overlay" not in sections(s)
    assert len(s.replica.records) == 8 and s.status()["counts"]["records"] == 8
    assert reason(v, link(OTHER, CK)) is None and reason(v, link(UNRZ, CK)) is None


def test_tombstone_tampered_into_xd_is_refused_by_the_count(
    redis_server, first, store, tmp_path, snapshot_dir
):
    """An extra removal in xd (a record Redis' pieces still hold) does not add up: the
    file is rewritten and the record stays answerable."""
    url = redis_server.url
    s = store(follow=False, build_in_child=False)
    v = Verifier(s)
    assert sync_cli(url, "--records", write_jsonl(tmp_path / "a.jsonl", [record(id=OTHER)])) == 0
    client = redis_server.client()
    client.hset(_delta_of_current(redis_server), "xd", record_key(UNRZ))
    s.refresh()
    assert "overlay" not in sections(s)
    assert reason(v, link(UNRZ, CK)) is None and reason(v, link(OTHER, CK)) is None


def test_sync_writes_record_deltas(redis_server, first, tmp_path, write_revocations):
    """x / xa / xd as sync writes them: changed records only (an unchanged one in the
    file is left out), removals of records the base held, x alone when records did not
    change, no x for --replace."""
    url = redis_server.url
    client = redis_server.client()
    same_and_new = [record(), record(id=OTHER, ck="44" * 16)]
    assert sync_cli(url, "--records", write_jsonl(tmp_path / "a.jsonl", same_and_new)) == 0
    delta = client.hgetall(_delta_of_current(redis_server))
    assert delta[b"x"] == b"1" and delta[b"xd"] == b""
    xa = RecordTable(delta[b"xa"])
    assert len(xa) == 1 and OTHER in xa and UNRZ not in xa
    gone = write_jsonl(tmp_path / "d.jsonl", [{"id": UNRZ}, {"id": "9160000000000099"}])
    assert sync_cli(url, "--records-remove", gone) == 0
    delta = client.hgetall(_delta_of_current(redis_server))
    assert delta[b"x"] == b"1" and delta[b"xa"] == b"" and delta[b"xd"] == record_key(UNRZ)
    rev = write_revocations(tmp_path / "r2.json", [os.urandom(16)])
    assert sync_cli(url, "--revocations", rev) == 0  # records unchanged: x, nothing else
    delta = client.hgetall(_delta_of_current(redis_server))
    assert len(delta[b"ra"]) == 16
    assert delta[b"x"] == b"1" and delta[b"xa"] == b"" and delta[b"xd"] == b""
    only = write_jsonl(tmp_path / "o.jsonl", [record(id=OTHER)])
    assert sync_cli(url, "--records", only, "--replace") == 0
    assert b"x" not in client.hgetall(_delta_of_current(redis_server))


def test_files_of_an_older_snapshot_stay_readable(redis_server, first, store, snapshot_dir):
    """A snapshot without an overlay section (as written before overlays) maps as
    before; the first change then layers over its file."""
    s = store(follow=False, build_in_child=False)
    assert "overlay" not in sections(s) and read_header(s._path)["format"] == 4
    assert s.replica.records is not None and s.replica.records.overlay is None
    assert os.path.exists(s._path)


def test_change_past_the_sync_cap_writes_no_x_and_rewrites(
    redis_server, first, store, tmp_path, snapshot_dir, monkeypatch
):
    """A change of more records than the delta holds (DELTA_MAX_RECORDS, lowered here)
    writes no `x`: the builder rewrites the records file, with the right answers."""
    from verifier.redis import recspool

    monkeypatch.setattr(recspool, "DELTA_MAX_RECORDS", 2)
    url = redis_server.url
    s = store(follow=False, build_in_child=False)
    v = Verifier(s)
    files = rec_files(snapshot_dir)
    three = [record(id=f"91600000000002{i:02d}", ck=f"{i:032x}") for i in range(3)]
    step(s, url, "--records", write_jsonl(tmp_path / "three.jsonl", three))
    assert b"x" not in redis_server.client().hgetall(_delta_of_current(redis_server))
    assert rec_files(snapshot_dir) != files and "overlay" not in sections(s)
    assert len(s.replica.records) == 10
    for i in range(3):
        assert reason(v, link(f"91600000000002{i:02d}", f"{i:032x}")) is None
    # two records fit: x again, and the new file is layered over
    files = rec_files(snapshot_dir)
    two = [record(id=f"91600000000003{i:02d}", ck=f"{i:032x}") for i in range(2)]
    step(s, url, "--records", write_jsonl(tmp_path / "two.jsonl", two))
    assert rec_files(snapshot_dir) == files and sections(s)["overlay"]["count"] == 12
