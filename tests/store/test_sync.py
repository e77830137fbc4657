"""`qrverify sync` against a real redis-server: CLI, atomicity, crash and rerun, GC."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys

import orjson
import pytest
from redis_support import free_port, requires_redis, sync_cli, wait_until

from keys.registry import TrustRegistry
from verifier.cli import main
from verifier.redis.format import Layout, read_current, read_manifest
from verifier.redis.store import RedisStore
from verifier.redis.sync import Guard, SyncError, sync_state
from verifier.revocations import Revocations, dump_revocations, load_revocations

pytestmark = [pytest.mark.redis, requires_redis]
L = Layout()


def cli(*args: str) -> int:
    return main(["sync", *args])


def test_cli_sync_prints_counts_only(
    redis_server, trust_file, tmp_path, hashes, write_revocations, capsys
):
    revoked = hashes(50)
    write_revocations(tmp_path / "r.json", revoked, hashes(4))
    assert (
        sync_cli(
            redis_server.url,
            "--trust",
            str(trust_file),
            "--revocations",
            str(tmp_path / "r.json"),
        )
        == 0
    )
    out = capsys.readouterr().out.strip()
    assert re.match(r"qrverify sync: published version [0-9]+-", out)
    assert "keys 1, revoked 50" in out and "registry 4" in out
    assert len(out.splitlines()) == 1
    # idempotent: the same input again publishes nothing
    client = redis_server.client()
    version = read_current(client, L)
    assert (
        sync_cli(
            redis_server.url,
            "--trust",
            str(trust_file),
            "--revocations",
            str(tmp_path / "r.json"),
        )
        == 0
    )
    assert "already up to date" in capsys.readouterr().out
    assert read_current(client, L) == version


@pytest.mark.parametrize(
    "content",
    [
        b'{"revoked": [{"type": "UCI", "hash": "AAAAAAAAAAAAAAAAAAAAAA=="}, {"type": "X"}]}',
        b"not json",
        b'{"registry": ["AAAA"]}',
    ],
)
def test_malformed_revocations_write_nothing(redis_server, trust_file, tmp_path, content, capsys):
    bad = tmp_path / "bad.json"
    bad.write_bytes(content)
    assert sync_cli(redis_server.url, "--trust", str(trust_file), "--revocations", str(bad)) == 2
    assert "nothing written" in capsys.readouterr().err
    assert redis_server.client().dbsize() == 0


def test_malformed_trust_writes_nothing(redis_server, tmp_path, capsys):
    bad = tmp_path / "trust.json"
    bad.write_text('{"keys": [{"certificate": "AAAA"}]}')
    assert sync_cli(redis_server.url, "--trust", str(bad)) == 2
    assert "nothing written" in capsys.readouterr().err
    assert redis_server.client().dbsize() == 0


def test_usage_errors(redis_server, capsys):
    assert sync_cli(redis_server.url) == 2
    assert "nothing to sync" in capsys.readouterr().err
    assert cli("--trust", "x.json") == 2  # --redis is required


def test_redis_unreachable_exits_2(trust_file, capsys):
    url = f"redis://:pw123@127.0.0.1:{free_port()}/0"
    assert sync_cli(url, "--trust", str(trust_file)) == 2  # one-line Redis error
    err = capsys.readouterr().err
    assert "cannot reach Redis" in err and "pw123" not in err


def test_failure_between_chunk_writes_then_rerun(
    redis_server, trust_file, tmp_path, hashes, write_revocations
):
    client = redis_server.client()
    old = hashes(1000)
    write_revocations(tmp_path / "r.json", old)
    sync_state(
        client,
        trust=TrustRegistry.from_file(trust_file),
        revocations=load_revocations(tmp_path / "r.json"),
    )
    before = read_current(client, L)
    store = RedisStore.connect(redis_server.url, poll_interval=0.05)
    try:
        big = Revocations(revoked=os.urandom(16 * 1_000_000))

        class Crash(Exception):
            pass

        def crash(written):
            raise Crash(written)

        with pytest.raises(Crash):
            sync_state(client, revocations=big, replace=True, after_write=crash)
        # nothing published: readers keep the old version, leftovers expire on their own
        assert read_current(client, L) == before
        pending = [k for k in client.scan_iter(match="{qrverify}:blob:*") if client.pttl(k) > 0]
        assert pending
        assert store.status()["counts"]["revoked"] == 1000
        assert store.is_revoked(old[0], old[0], old[0])
        # the rerun finishes the job
        result = sync_state(client, revocations=big, replace=True)
        assert result.changed and result.revoked == 1_000_000
        assert wait_until(lambda: store.status()["counts"]["revoked"] == 1_000_000, 10)
        assert not store.is_revoked(old[0], old[0], old[0])
        manifest = read_manifest(client, L, read_current(client, L))
        for bid in manifest.blob_ids():
            assert client.pttl(L.blob(bid)) == -1, "published blobs never expire"
    finally:
        store.close()


def test_sigkill_mid_sync_then_rerun(redis_server, trust_file, tmp_path, hashes, write_revocations):
    client = redis_server.client()
    old = hashes(100)
    write_revocations(tmp_path / "r.json", old)
    assert (
        sync_cli(
            redis_server.url,
            "--trust",
            str(trust_file),
            "--revocations",
            str(tmp_path / "r.json"),
        )
        == 0
    )
    before = read_current(client, L)
    big = tmp_path / "big.json"
    raw = os.urandom(16 * 1_000_000)
    big.write_bytes(dump_revocations(raw))
    # the same interpreter and import path as this test: the installed build under
    # scripts/test (never the source tree, whose fastpath/ has no compiled module)
    cmd = [
        sys.executable,
        "-m",
        "verifier",
        "sync",
        "--redis",
        redis_server.url,
        "--revocations",
        str(big),
        "--replace",
        "--no-progress",
    ]
    proc = subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        # kill it as soon as its first chunk lands (or whenever it is done, if faster)
        wait_until(
            lambda: (
                proc.poll() is not None
                or any(client.pttl(k) > 0 for k in client.scan_iter(match="{qrverify}:blob:*"))
            ),
            timeout=60,
            interval=0.002,
        )
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    current = read_current(client, L)
    manifest = read_manifest(client, L, current)
    # either the old or the new version, complete and consistent, never a mixture
    assert current == before or manifest.revoked.count == 1_000_000
    store = RedisStore.connect(redis_server.url, follow=False)
    try:
        assert store.status()["counts"]["revoked"] in (100, 1_000_000)
    finally:
        store.close()
    rerun = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert rerun.returncode == 0, rerun.stderr
    assert "revoked 1000000" in rerun.stdout
    final = read_manifest(client, L, read_current(client, L))
    assert final.revoked.count == 1_000_000


def test_old_versions_are_garbage_collected(
    redis_server, trust_file, tmp_path, hashes, write_revocations
):
    client = redis_server.client()
    sync_state(client, trust=TrustRegistry.from_file(trust_file), guard=Guard(bootstrap=True))
    for i in range(5):
        write_revocations(tmp_path / f"r{i}.json", hashes(2000))
        sync_state(client, revocations=load_revocations(tmp_path / f"r{i}.json"), replace=True)
    manifests = list(client.scan_iter(match="{qrverify}:manifest:*"))
    assert len(manifests) == 2
    referenced = set()
    for key in manifests:
        vid = key.decode().rsplit(":", 1)[1]
        referenced |= {L.blob(b).encode() for b in read_manifest(client, L, vid).blob_ids()}
    blobs = set(client.scan_iter(match="{qrverify}:blob:*"))
    assert blobs == referenced
    assert client.llen(L.versions) == 2


def test_add_mode_union_and_replace(redis_server, trust_file, tmp_path, hashes, write_revocations):
    client = redis_server.client()
    a, b = hashes(40_000), hashes(10)
    write_revocations(tmp_path / "a.json", a, registry=a[:5])
    write_revocations(tmp_path / "b.json", b)
    sync_state(
        client,
        trust=TrustRegistry.from_file(trust_file),
        revocations=load_revocations(tmp_path / "a.json"),
    )
    r = sync_state(client, revocations=load_revocations(tmp_path / "b.json"))
    assert (r.revoked, r.revoked_added, r.registry) == (40_010, 10, 5)
    with pytest.raises(SyncError, match="allow-drop"):
        sync_state(client, revocations=load_revocations(tmp_path / "b.json"), replace=True)
    r = sync_state(
        client,
        revocations=load_revocations(tmp_path / "b.json"),
        replace=True,
        guard=Guard(allow_drop=True),
    )
    assert (r.revoked, r.revoked_removed, r.registry) == (10, 40_000, None)
    assert read_manifest(client, L, r.version).drop_confirmed is True


def test_removals_as_a_list_and_json_lines(
    redis_server, trust_file, tmp_path, hashes, write_revocations, capsys
):
    import base64
    import gzip

    client = redis_server.client()
    keep, drop = hashes(40_000), hashes(3)
    write_revocations(tmp_path / "all.json", [*keep, *drop])
    assert (
        sync_cli(
            redis_server.url,
            "--trust",
            str(trust_file),
            "--revocations",
            str(tmp_path / "all.json"),
        )
        == 0
    )
    # --remove FILE (gzipped JSON Lines): the three leave, nothing else changes
    lines = b"".join(orjson.dumps({"removed": base64.b64encode(h).decode()}) + b"\n" for h in drop)
    (tmp_path / "gone.jsonl.gz").write_bytes(gzip.compress(lines))
    capsys.readouterr()
    assert sync_cli(redis_server.url, "--remove", str(tmp_path / "gone.jsonl.gz")) == 0
    assert "revoked 40000 (+0 -3)" in capsys.readouterr().out
    manifest = read_manifest(client, L, read_current(client, L))
    assert manifest.revoked.count == 40_000
    store = RedisStore.connect(redis_server.url, follow=False)
    try:
        assert not any(store.is_revoked(h, h, h) for h in drop)
        assert all(store.is_revoked(h, h, h) for h in keep[:100])
    finally:
        store.close()
    # a "removed" list and new entries in one JSON Lines file
    new = hashes(2)
    body = b"".join(
        orjson.dumps({"type": "UCI", "hash": base64.b64encode(h).decode()}) + b"\n" for h in new
    )
    body += orjson.dumps({"removed": base64.b64encode(keep[0]).decode()}) + b"\n"
    (tmp_path / "today.jsonl").write_bytes(body)
    assert sync_cli(redis_server.url, "--revocations", str(tmp_path / "today.jsonl")) == 0
    assert "revoked 40001 (+2 -1)" in capsys.readouterr().out
    # --remove with --replace but no new list is a usage error
    assert sync_cli(redis_server.url, "--remove", str(tmp_path / "gone.jsonl.gz"), "--replace") == 2


def test_registry_removals(redis_server, trust_file, tmp_path, hashes, write_revocations, capsys):
    client = redis_server.client()
    revoked, registry = hashes(5), hashes(6)
    write_revocations(tmp_path / "rev.json", revoked)
    assert (
        sync_cli(redis_server.url, "--trust", trust_file, "--revocations", tmp_path / "rev.json")
        == 0
    )
    before = read_current(client, L)
    # no registry set in the store: removing from it is refused, nothing is written
    write_revocations(tmp_path / "rm.json", [], registry[:2])
    capsys.readouterr()
    assert sync_cli(redis_server.url, "--remove", tmp_path / "rm.json") != 0
    assert "no registry set" in capsys.readouterr().err
    assert read_current(client, L) == before
    assert read_manifest(client, L, before).registry is None
    # with a registry: the listed hashes leave it, the revoked set is untouched
    write_revocations(tmp_path / "reg.json", [], registry)
    assert sync_cli(redis_server.url, "--revocations", tmp_path / "reg.json") == 0
    capsys.readouterr()
    assert sync_cli(redis_server.url, "--remove", tmp_path / "rm.json") == 0
    assert "registry 4 (+0 -2)" in capsys.readouterr().out
    manifest = read_manifest(client, L, read_current(client, L))
    assert (manifest.revoked.count, manifest.registry.count) == (5, 4)
    store = RedisStore.connect(redis_server.url, follow=False)
    try:
        assert [store.in_registry(h) for h in registry] == [False, False, True, True, True, True]
        assert all(store.is_revoked(h, h, h) for h in revoked)
    finally:
        store.close()
    # --replace with a new list that has no registry drops the set: the removals do not
    # leave an empty registry behind (which would refuse every registered certificate)
    write_revocations(tmp_path / "new.json", revoked)
    assert (
        sync_cli(
            redis_server.url,
            "--revocations",
            tmp_path / "new.json",
            "--remove",
            tmp_path / "rm.json",
            "--replace",
        )
        == 0
    )
    manifest = read_manifest(client, L, read_current(client, L))
    assert manifest.registry is None and manifest.revoked.count == 5
