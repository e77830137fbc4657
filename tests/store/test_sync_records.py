"""`qrverify sync --records` against a real redis-server: register records travel through
Redis (versioned, content-addressed, one flip) into the follower's snapshot, so a Verifier
on RedisStore answers register links."""

from __future__ import annotations

import pytest
from links.link_support import AT, CK, RECORDS, UNRZ, link, record, write_jsonl
from redis_support import requires_redis, sync_cli, wait_until

from verifier import Verifier
from verifier.cli import main
from verifier.reasons import Reason
from verifier.redis.format import Layout, read_current, read_manifest

pytestmark = [pytest.mark.redis, requires_redis]
L = Layout()
OTHER = "9160000000000009"


@pytest.fixture
def first(redis_server, trust_file, tmp_path, write_revocations, capsys):
    """Redis started with trust, an empty revocation list and the test register."""
    write_revocations(tmp_path / "r.json", [])
    records = write_jsonl(tmp_path / "register.jsonl", RECORDS)
    assert (
        sync_cli(
            redis_server.url,
            "--trust",
            trust_file,
            "--revocations",
            tmp_path / "r.json",
            "--records",
            records,
        )
        == 0
    )
    assert "records 7 (" in capsys.readouterr().out
    return records


def status(verifier: Verifier, text: str) -> Reason | None:
    return verifier.verify(text, AT).reason


def test_records_reach_the_verifier(redis_server, first, store):
    manifest = read_manifest(redis_server.client(), L, read_current(redis_server.client(), L))
    assert manifest.records is not None and manifest.records.count == 7
    s = store(follow=False)
    assert s.replica.records is not None and len(s.replica.records) == 7
    v = Verifier(s)
    verdict = v.verify(link(UNRZ, CK), AT)
    assert verdict.valid and verdict.holder is not None
    assert verdict.to_dict()["holder"]["document"] == "45** ***123"
    assert status(v, link(OTHER, CK)) is Reason.NOT_FOUND
    assert status(v, link(UNRZ, "ff" * 16)) is Reason.NOT_FOUND
    assert status(v, link("9160000000000002", "00" * 16)) is Reason.REVOKED


def test_changed_record_is_seen_by_the_follower(redis_server, first, store, tmp_path):
    s = store()
    v = Verifier(s)
    assert status(v, link(UNRZ, CK)) is None
    before = s.replica.version
    change = write_jsonl(
        tmp_path / "change.jsonl", [record(status="revoked"), record(id=OTHER, ck="44" * 16)]
    )
    assert sync_cli(redis_server.url, "--records", change) == 0
    assert wait_until(lambda: s.replica.version != before, timeout=20)
    assert status(v, link(UNRZ, CK)) is Reason.REVOKED  # same id: replaced
    assert status(v, link(OTHER, "44" * 16)) is None  # added
    assert status(v, link("9160000000000005")) is None  # untouched: kept
    assert len(s.replica.records) == 8
    # a second change: the builder reuses nothing stale
    before = s.replica.version
    back = write_jsonl(tmp_path / "back.jsonl", [record()])
    assert sync_cli(redis_server.url, "--records", back) == 0
    assert wait_until(lambda: s.replica.version != before, timeout=20)
    assert status(v, link(UNRZ, CK)) is None


def test_replace_drops_records_not_in_the_file(redis_server, first, store, tmp_path):
    only = write_jsonl(tmp_path / "only.jsonl", [record(id=OTHER, ck="44" * 16)])
    assert sync_cli(redis_server.url, "--records", only, "--replace") == 0
    s = store(follow=False)
    v = Verifier(s)
    assert len(s.replica.records) == 1
    assert status(v, link(OTHER, "44" * 16)) is None
    assert status(v, link(UNRZ, CK)) is Reason.NOT_FOUND
    assert "9160000000000005" not in s.replica.records
    # the trust keys and revocations were not given: kept
    manifest = read_manifest(redis_server.client(), L, read_current(redis_server.client(), L))
    assert manifest.trust_keys == 1


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_malformed_row_writes_nothing(redis_server, first, tmp_path, capsys, fmt):
    client = redis_server.client()
    version = read_current(client, L)
    keys = sorted(client.keys("*"))
    capsys.readouterr()
    if fmt == "jsonl":
        bad = write_jsonl(
            tmp_path / "bad.jsonl",
            [
                record(id=OTHER, status="revoked"),
                record(status="valid"),
                record(id="9160000000000010", type="x"),
            ],
        )
    else:
        bad = tmp_path / "bad.csv"
        bad.write_text(
            "id,ck,type,status,valid_from,valid_until,name,name_latin,dob,document\n"
            f"{OTHER},,test,valid,2021-07-01,2022-07-01,A,A,1980-01-01,45\n"
            f"{UNRZ},{CK},vaccination,valid,2021-07-01,nope,A,A,1980-01-01,45\n",
            encoding="utf-8",
        )
    assert sync_cli(redis_server.url, "--records", bad) == 2
    err = capsys.readouterr().err
    assert "line 3" in err and "nothing written" in err
    assert UNRZ not in err and "45**" not in err  # no personal data
    assert read_current(client, L) == version
    assert sorted(client.keys("*")) == keys


def test_rerun_is_idempotent(redis_server, first, capsys):
    client = redis_server.client()
    version = read_current(client, L)
    keys = sorted(client.keys("*"))
    capsys.readouterr()
    assert sync_cli(redis_server.url, "--records", first) == 0
    assert "already up to date" in capsys.readouterr().out
    assert read_current(client, L) == version
    assert sorted(client.keys("*")) == keys


def test_records_with_redis_still_refused_for_verify(redis_server, first, capsys):
    assert (
        main(["verify", "--redis", redis_server.url, "--records", str(first), link(UNRZ, CK)]) == 2
    )
    assert "sync --records" in capsys.readouterr().err


def test_records_kept_when_only_the_sets_change(
    redis_server, first, store, tmp_path, hashes, write_revocations
):
    s = store(build_in_child=False)
    v = Verifier(s)
    for _ in range(2):  # the second round takes the records from the mapped snapshot
        before = s.replica.version
        write_revocations(tmp_path / "more.json", hashes(3))
        assert sync_cli(redis_server.url, "--revocations", tmp_path / "more.json") == 0
        assert wait_until(lambda: s.replica.version != before, timeout=20)  # noqa: B023
        assert len(s.replica.records) == 7
        assert status(v, link(UNRZ, CK)) is None
        assert status(v, link("9160000000000002", "00" * 16)) is Reason.REVOKED


def test_killed_records_sync_publishes_nothing_and_rerun_completes(redis_server, first, tmp_path):
    from verifier.records import load_table
    from verifier.redis.sync import sync_state

    client = redis_server.client()
    version = read_current(client, L)
    change = write_jsonl(tmp_path / "change.jsonl", [record(id=OTHER, ck="44" * 16)])

    def crash(_written: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        sync_state(client, records=load_table(change), after_write=crash)
    assert read_current(client, L) == version  # the blobs wait, unpublished
    result = sync_state(client, records=load_table(change))
    assert result.changed and result.records == 8
    manifest = read_manifest(client, L, read_current(client, L))
    assert manifest.records is not None and manifest.records.count == 8
