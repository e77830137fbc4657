"""Revoked and registry hashes changed by `qrverify sync` reach the machine's snapshot as
an overlay over the unchanged sets file (verifier.redis.build.sets_overlay), against a
real redis-server: the sets file stays (same name and inode), the snapshot file stays
small, verdicts and counts follow the change; a chain of versions layers over the
overlay; an overlay past the cap, `--replace`, an expired or tampered delta rewrite the
sets file (never a wrong answer); a worker restarted with Redis stopped maps the file
and its overlay and still refuses a revoked token."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from engine_support import AT, ES, key_of, token
from redis_support import RedisServer, free_port, requires_redis, sync_cli

from keys.registry import TrustRegistry
from verifier import Verifier
from verifier.cli import main
from verifier.reasons import Reason
from verifier.redis import build
from verifier.redis.format import Layout, fetch_set, read_current, read_manifest
from verifier.redis.snapshot import read_header
from verifier.redis.store import RedisStore
from verifier.store import StoreUnavailable

pytestmark = [pytest.mark.redis, requires_redis]
L = Layout()
BASE = 3000  # revoked hashes of the first version


def sets_files(directory: Path) -> dict[str, int]:
    """The sets files beside the snapshot: name -> inode."""
    return {p.name: p.stat().st_ino for p in directory.iterdir() if ".sets-" in p.name}


def sections(s: Any) -> dict[str, Any]:
    return dict(read_header(s._path)["sections"])


def token_hashes(tmp_path: Path, text: str, name: str) -> Path:
    """The revocation entries of a token (`qrverify hashes --only revoked`), as a file."""
    import contextlib
    import io

    raw = io.BytesIO()
    out = io.TextIOWrapper(raw, encoding="utf-8")
    with contextlib.redirect_stdout(out):
        assert main(["hashes", "--only", "revoked", text]) == 0
    out.flush()
    lines = raw.getvalue().decode()
    path = tmp_path / name
    path.write_text(lines)
    assert len(lines.splitlines()) == 3
    return path


def current_of(url: str) -> str | None:
    import redis

    client = redis.Redis.from_url(url)
    try:
        return read_current(client, L)
    finally:
        client.close()


def step(s: Any, url: str, *args: str | Path) -> None:
    """One sync, then one round of the store (build, map): the new version is served."""
    before = current_of(url)
    assert sync_cli(url, *args) == 0
    assert current_of(url) != before
    s.refresh()
    assert s.replica.version == current_of(url)


def truth(redis_server: Any) -> tuple[bytes, bytes | None]:
    """What Redis' current version holds: the packed revoked and registry sets."""
    client = redis_server.client()
    m = read_manifest(client, L, read_current(client, L))
    reg = None if m.registry is None else fetch_set(client, L, m.registry)
    return fetch_set(client, L, m.revoked), reg


def served(s: Any) -> tuple[bytes, bytes | None]:
    rep = s.replica
    return rep.revoked.to_packed(), None if rep.registry is None else rep.registry.to_packed()


@pytest.fixture
def hc1() -> str:
    return token("vaccination")


@pytest.fixture
def base(redis_server, tmp_path, write_revocations, hashes):
    """Redis holding the ES key, BASE revoked hashes and 40 registry hashes."""
    trust = tmp_path / "trust.json"
    trust.write_bytes(TrustRegistry([key_of(ES)]).to_json())
    revoked, registry = hashes(BASE), hashes(40)
    write_revocations(tmp_path / "r.json", revoked, registry)
    assert sync_cli(redis_server.url, "--trust", trust, "--revocations", tmp_path / "r.json") == 0
    return revoked, registry


def verdict(v: Verifier, text: str) -> Reason | None:
    return v.verify(text, AT).reason


def test_revoke_chain_unrevoke_keep_the_sets_file(
    redis_server, base, store, tmp_path, snapshot_dir, hc1, hashes, write_revocations
):
    url = redis_server.url
    s = store(follow=False, build_in_child=False)
    v = Verifier(s, "none")
    files = sets_files(snapshot_dir)
    assert len(files) == 1 and "revoked_overlay" not in sections(s)
    assert read_header(s._path)["format"] == 4 and verdict(v, hc1) is None
    # revoke the token: the sets file stays, the snapshot file is small
    step(s, url, "--revocations", token_hashes(tmp_path, hc1, "t.jsonl"))
    assert sets_files(snapshot_dir) == files
    over = sections(s)["revoked_overlay"]
    assert (over["added"], over["removed"], over["count"]) == (3, 0, BASE + 3)
    assert os.path.getsize(s._path) <= 16 * 4096
    assert verdict(v, hc1) is Reason.REVOKED
    assert s.status()["counts"]["revoked"] == BASE + 3 and s.replica.revoked.layered
    # two versions between two builds: one chain, the earlier overlay carried on
    more = hashes(5)
    write_revocations(tmp_path / "m.json", more)
    assert sync_cli(url, "--revocations", tmp_path / "m.json") == 0
    gone = base[0][:2]
    write_revocations(tmp_path / "g.json", gone)
    assert sync_cli(url, "--remove", tmp_path / "g.json") == 0
    s.refresh()
    assert s.replica.version == current_of(url) and sets_files(snapshot_dir) == files
    over = sections(s)["revoked_overlay"]
    assert (over["added"], over["removed"], over["count"]) == (8, 2, BASE + 6)
    assert verdict(v, hc1) is Reason.REVOKED
    assert s.is_revoked(more[4], more[4], more[4]) and not s.is_revoked(*gone, gone[0])
    assert s.is_revoked(base[0][7], base[0][7], base[0][7])
    assert served(s) == truth(redis_server)
    # un-revoked: the token is valid again, its hashes leave the overlay
    step(s, url, "--remove", token_hashes(tmp_path, hc1, "t.jsonl"))
    assert sets_files(snapshot_dir) == files and verdict(v, hc1) is None
    over = sections(s)["revoked_overlay"]
    assert (over["added"], over["removed"], over["count"]) == (5, 2, BASE + 3)
    # the earlier removals undone too: the file's own sets, no overlay at all
    write_revocations(tmp_path / "back.json", gone)
    step(s, url, "--revocations", tmp_path / "back.json")
    step(s, url, "--remove", tmp_path / "m.json")
    assert sets_files(snapshot_dir) == files and "revoked_overlay" not in sections(s)
    assert not s.replica.revoked.layered and len(s.replica.revoked) == BASE
    assert served(s) == truth(redis_server) and s.full_loads == 0


def test_registry_changes_ride_over_the_file(
    redis_server, base, store, tmp_path, snapshot_dir, hashes, write_revocations
):
    url = redis_server.url
    s = store(follow=False, build_in_child=False)
    files = sets_files(snapshot_dir)
    added = hashes(4)
    write_revocations(tmp_path / "g.json", [], added)
    step(s, url, "--revocations", tmp_path / "g.json")
    assert sets_files(snapshot_dir) == files
    secs = sections(s)
    assert "revoked_overlay" not in secs and secs["registry_overlay"]["count"] == 44
    assert all(s.in_registry(h) is True for h in added) and s.in_registry(base[0][0]) is False
    assert s.in_registry(base[1][3]) is True
    assert s.status()["counts"]["registry"] == 44 and s.replica.registry.layered
    assert served(s) == truth(redis_server)
    # --replace with a file that keeps the revoked set and drops a registry hash
    write_revocations(tmp_path / "all.json", base[0], base[1][1:] + added)
    step(s, url, "--revocations", tmp_path / "all.json", "--replace")
    assert sets_files(snapshot_dir) == files
    assert s.in_registry(base[1][0]) is False and s.status()["counts"]["registry"] == 43
    assert sections(s)["registry_overlay"]["removed"] == 1
    assert served(s) == truth(redis_server)
    # --remove FILE: its registry entries leave the registry set (its revoked ones the
    # revoked set), over the same sets file
    write_revocations(tmp_path / "rm.json", [base[0][0]], [added[0], base[1][2]])
    step(s, url, "--remove", tmp_path / "rm.json")
    assert sets_files(snapshot_dir) == files
    assert s.in_registry(added[0]) is False and s.in_registry(base[1][2]) is False
    assert s.in_registry(added[1]) is True and s.status()["counts"]["registry"] == 41
    assert not s.is_revoked(base[0][0], base[0][0], base[0][0])
    assert sections(s)["registry_overlay"]["removed"] == 2
    assert served(s) == truth(redis_server)


def test_past_the_cap_rebases_and_replace_rewrites(
    redis_server, base, store, tmp_path, snapshot_dir, hc1, hashes, write_revocations, monkeypatch
):
    url = redis_server.url
    s = store(follow=False, build_in_child=False)
    v = Verifier(s, "none")
    files = sets_files(snapshot_dir)
    monkeypatch.setattr(build, "SETS_OVERLAY_MAX", 10)
    step(s, url, "--revocations", token_hashes(tmp_path, hc1, "t.jsonl"))
    assert sets_files(snapshot_dir) == files and "revoked_overlay" in sections(s)
    # 3 (carried) + 8 new > 10: a rebase, the overlay folded into a new file
    write_revocations(tmp_path / "e.json", hashes(8))
    step(s, url, "--revocations", tmp_path / "e.json")
    now = sets_files(snapshot_dir)
    assert len(now) == 1 and now.keys() != files.keys() and "revoked_overlay" not in sections(s)
    assert verdict(v, hc1) is Reason.REVOKED and len(s.replica.revoked) == BASE + 11
    assert s.full_loads == 0 and served(s) == truth(redis_server)
    # --replace by a different list: past the cap, a new file with exactly that list
    fresh = hashes(50)
    write_revocations(tmp_path / "new.json", fresh)
    step(s, url, "--revocations", tmp_path / "new.json", "--replace", "--allow-drop")
    assert sets_files(snapshot_dir).keys() != now.keys() and len(sets_files(snapshot_dir)) == 1
    assert "revoked_overlay" not in sections(s) and s.replica.registry is None
    assert verdict(v, hc1) is None and len(s.replica.revoked) == 50
    assert s.is_revoked(fresh[9], fresh[9], fresh[9])
    assert served(s) == truth(redis_server)


@pytest.mark.parametrize("how", ["expired", "count", "garbage", "swapped"])
def test_unusable_delta_loads_in_full(redis_server, base, store, tmp_path, snapshot_dir, hc1, how):
    """A delta that is gone, does not add up to the manifest's count, is malformed, or
    names other hashes with the right count: the sets come from the chunks (a full load,
    a new sets file), and the verdicts are those of Redis' sets."""
    url = redis_server.url
    s = store(follow=False, build_in_child=False)
    v = Verifier(s, "none")
    files = sets_files(snapshot_dir)
    assert sync_cli(url, "--revocations", token_hashes(tmp_path, hc1, "t.jsonl")) == 0
    client = redis_server.client()
    key = L.delta(read_current(client, L))
    ra = client.hget(key, "ra")
    assert ra is not None and len(ra) == 48
    if how == "expired":
        client.delete(key)
    elif how == "count":  # one revocation left out: 3000 + 2 != 3003
        client.hset(key, "ra", ra[16:])
    elif how == "garbage":
        client.hset(key, "ra", ra[:20])
    else:  # the count of the fields is right, but one hash "added" is already held
        client.hset(key, "ra", ra[16:] + base[0][5])
    s.refresh()
    assert s.replica.version == read_current(client, L)
    assert s.full_loads == 1, how
    assert sets_files(snapshot_dir).keys() != files.keys() and "revoked_overlay" not in sections(s)
    assert verdict(v, hc1) is Reason.REVOKED and s.status()["counts"]["revoked"] == BASE + 3
    assert served(s) == truth(redis_server)


def test_restart_with_redis_stopped_maps_file_and_overlay(tmp_path, hc1, hashes, write_revocations):
    snap = tmp_path / "machine.snap"
    trust = tmp_path / "trust.json"
    trust.write_bytes(TrustRegistry([key_of(ES)]).to_json())
    write_revocations(tmp_path / "r.json", hashes(500), hashes(5))
    server = RedisServer(port=free_port()).start()
    try:
        assert sync_cli(server.url, "--trust", trust, "--revocations", tmp_path / "r.json") == 0
        first = RedisStore.connect(
            server.url, snapshot_path=snap, follow=False, build_in_child=False
        )
        assert sync_cli(server.url, "--revocations", token_hashes(tmp_path, hc1, "t.jsonl")) == 0
        first.refresh()
        assert "revoked_overlay" in read_header(snap)["sections"]
        first.close()
        server.stop()
        again = RedisStore.connect(server.url, snapshot_path=snap, follow=False, max_age=3600)
        try:
            assert again.status()["connected"] is False and again.status()["ready"] is True
            assert again.replica.revoked.layered
            assert again.status()["counts"]["revoked"] == 503
            assert verdict(Verifier(again, "none"), hc1) is Reason.REVOKED
        finally:
            again.close()
        # an overlay section damaged on disk: the file is refused, not half-read
        data = bytearray(snap.read_bytes())
        data[read_header(snap)["sections"]["revoked_overlay"]["offset"]] ^= 1
        bad = tmp_path / "bad.snap"
        bad.write_bytes(bytes(data))  # (it names machine.snap's sets file, beside it)
        with pytest.raises(StoreUnavailable, match="no usable snapshot"):
            RedisStore.connect(server.url, snapshot_path=bad, follow=False)
    finally:
        server.close()


@pytest.mark.slow
def test_in_the_builder_child(redis_server, base, store, tmp_path, snapshot_dir, hc1):
    """The same through the builder's child process (the child keeps the sets file
    mapped between jobs): revoked, then un-revoked, the sets file never rewritten."""
    url = redis_server.url
    s = store(follow=False)
    v = Verifier(s, "none")
    files = sets_files(snapshot_dir)
    step(s, url, "--revocations", token_hashes(tmp_path, hc1, "t.jsonl"))
    assert verdict(v, hc1) is Reason.REVOKED and "revoked_overlay" in sections(s)
    assert sets_files(snapshot_dir) == files
    step(s, url, "--remove", token_hashes(tmp_path, hc1, "t.jsonl"))
    assert verdict(v, hc1) is None and "revoked_overlay" not in sections(s)
    assert sets_files(snapshot_dir) == files and s.full_loads == 0


def test_an_older_snapshot_with_the_tables_inside_moves_to_a_sets_file(
    redis_server, base, store, tmp_path, snapshot_dir, hc1, hashes, write_revocations
):
    """A machine whose snapshot holds the tables itself (format 2, before sets files)
    maps it at start; the next version writes a sets file, the one after rides over it."""
    from verifier.redis.snapshot import write_snapshot

    first = store(follow=False, build_in_child=False)
    rep, path, trust_json = first.replica, first._path, first._snap.trust_json
    first.close()
    write_snapshot(
        path,
        version=rep.version,
        seq=rep.seq,
        trust_json=trust_json,
        trust_id=rep.trust_id,
        revoked=rep.revoked.copy(),
        registry=rep.registry.copy(),
    )
    for name in sets_files(snapshot_dir):
        os.unlink(snapshot_dir / name)
    s = store(follow=False, build_in_child=False)
    assert read_header(path)["format"] == 2 and len(s.replica.revoked) == BASE
    v = Verifier(s, "none")
    step(s, redis_server.url, "--revocations", token_hashes(tmp_path, hc1, "t.jsonl"))
    files = sets_files(snapshot_dir)
    assert len(files) == 1 and read_header(path)["format"] == 4 and s.full_loads == 0
    assert verdict(v, hc1) is Reason.REVOKED and "revoked_overlay" not in sections(s)
    write_revocations(tmp_path / "m.json", hashes(2))
    step(s, redis_server.url, "--revocations", tmp_path / "m.json")
    assert sets_files(snapshot_dir) == files and sections(s)["revoked_overlay"]["added"] == 2
    assert verdict(v, hc1) is Reason.REVOKED and served(s) == truth(redis_server)
