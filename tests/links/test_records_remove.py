"""Register records: removal as a list (`sync --records-remove FILE`), a duplicate id
named by its line, the records count on /readyz (issue 12)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from links.link_support import AT, CK, RECORDS, UNRZ, UUID, link, record, write_jsonl
from redis_support import redis_server, requires_redis  # noqa: F401  (fixture)
from starlette.testclient import TestClient

from fastpath._records import record_key
from keys.issuer import new_issuer
from keys.registry import TrustRegistry
from verifier import Reason, Verifier
from verifier.cli import main
from verifier.http import create_app
from verifier.records import RecordsFileError, load_removals, load_table
from verifier.redis.format import Layout, read_current, read_manifest
from verifier.redis.store import RedisStore

L = Layout()


# -- the removal file ---------------------------------------------------------------------


def test_removal_file_jsonl_and_csv(tmp_path: Path) -> None:
    jl = tmp_path / "gone.jsonl"
    jl.write_text(f'{{"id": "{UNRZ}"}}\n\n{{"id": "{UUID.upper()}", "status": "revoked"}}\n')
    assert load_removals(jl) == record_key(UNRZ) + record_key(UUID)
    csv = tmp_path / "gone.csv"
    csv.write_text(f"id,name\n{UNRZ},x\n{UUID}, \n")
    assert load_removals(csv) == record_key(UNRZ) + record_key(UUID)
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    assert load_removals(empty) == b""


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("a.jsonl", f'{{"id": "{UNRZ}"}}\n{{"id": "123"}}\n', "line 2: id is not"),
        ("b.jsonl", f'{{"id": "{UNRZ}"}}\n\n{{"ident": "{UNRZ}"}}\n', "line 3: unexpected field"),
        ("c.jsonl", '{"name": "x"}\n', "line 1: missing field(s): id"),
        ("d.jsonl", f'{{"id": "{UNRZ}"}}\n{{"id": 5}}\n', "line 2: id must be a string"),
        ("e.jsonl", f'{{"id": "{UNRZ}"}}\nnot json\n', "line 2: not valid JSON"),
        ("f.csv", "name\nx\n", "line 1: CSV header lacks column(s): id"),
        ("g.csv", f"id\n{UNRZ}\n{UNRZ},extra\n", "line 3: 2 columns"),
    ],
)
def test_malformed_removal_file_names_the_line(
    tmp_path: Path, name: str, content: str, message: str
) -> None:
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(RecordsFileError) as info:
        load_removals(path)
    assert message in str(info.value) and str(path) in str(info.value)
    assert UNRZ not in str(info.value)  # an id is personal data: never in a message


# -- duplicate ids --------------------------------------------------------------------------


def test_duplicate_id_names_its_line_jsonl(tmp_path: Path) -> None:
    rows = [*RECORDS[:3], record(name="Х***** Х***"), *RECORDS[3:]]  # UNRZ again on line 4
    path = write_jsonl(tmp_path / "dup.jsonl", rows)
    with pytest.raises(RecordsFileError, match=r"dup\.jsonl line 4: a record with this id"):
        load_table(path)


def test_duplicate_id_names_its_line_csv(tmp_path: Path) -> None:
    path = tmp_path / "dup.csv"
    head = "id,ck,type,status,valid_from,valid_until,name,name_latin,dob,document\n"
    row = "{},,test,valid,2021-07-01,2022-07-01,A,A,1980-01-01,1\n"
    path.write_text(head + row.format(UUID) + row.format(UNRZ) + "\n" + row.format(UUID.upper()))
    with pytest.raises(RecordsFileError, match=r"dup\.csv line 5: a record with this id"):
        load_table(path)


def test_duplicate_id_in_a_stream(tmp_path: Path) -> None:
    data = write_jsonl(tmp_path / "x.jsonl", [record(), record(id=UUID), record()]).read_bytes()
    with pytest.raises(RecordsFileError, match=r"line 3: a record with this id"):
        load_table(io.BytesIO(data))


# -- /readyz ---------------------------------------------------------------------------------


def test_readyz_shows_the_records_count(tmp_path: Path) -> None:
    records = write_jsonl(tmp_path / "register.jsonl", RECORDS)
    v = Verifier.from_files(None, None, records=records)
    with TestClient(create_app(v)) as c:
        body = c.get("/readyz").json()
    assert body["counts"]["records"] == len(RECORDS)
    issuer = new_issuer(tmp_path / "issuer", country="RU")
    trust = tmp_path / "trust.json"
    trust.write_bytes(TrustRegistry.from_dict({"keys": [issuer.trust_entry()]}).to_json())
    with TestClient(create_app(Verifier.from_files(trust))) as c:
        assert "records" not in c.get("/readyz").json()["counts"]  # no register loaded


# -- through Redis ---------------------------------------------------------------------------


def sync(url: str, *args: str | Path) -> int:
    return main(["sync", "--redis", url, *(str(a) for a in args)])


@pytest.fixture
def loaded(redis_server, tmp_path, monkeypatch):  # noqa: F811
    monkeypatch.setenv("QRVERIFY_SNAPSHOT_DIR", str(tmp_path / "snapshots"))
    issuer = new_issuer(tmp_path / "issuer", country="RU")
    trust = tmp_path / "trust.json"
    trust.write_bytes(TrustRegistry.from_dict({"keys": [issuer.trust_entry()]}).to_json())
    rev = tmp_path / "rev.json"
    rev.write_text('{"revoked": []}')
    records = write_jsonl(tmp_path / "register.jsonl", RECORDS)
    args = ("--trust", trust, "--revocations", rev, "--records", records)
    assert sync(redis_server.url, *args) == 0
    return redis_server


def _verifier(url: str) -> tuple[Verifier, RedisStore]:
    store = RedisStore.connect(url, follow=False)
    return Verifier(store), store


@pytest.mark.redis
@requires_redis
def test_records_remove_through_redis(loaded, tmp_path, capsys):
    url = loaded.url
    gone = tmp_path / "gone.jsonl"
    gone.write_text(f'{{"id": "{UNRZ}"}}\n{{"id": "9160000000000099"}}\n')  # 2nd: not held
    capsys.readouterr()
    assert sync(url, "--records-remove", gone) == 0
    assert f"records {len(RECORDS) - 1} (" in capsys.readouterr().out
    v, store = _verifier(url)
    try:
        assert v.verify(link(UNRZ, CK), AT).reason is Reason.NOT_FOUND
        assert v.verify(link("9160000000000005"), AT).valid  # the others are kept
        assert store.status()["counts"]["records"] == len(RECORDS) - 1
    finally:
        store.close()
    # idempotent
    capsys.readouterr()
    assert sync(url, "--records-remove", gone) == 0
    assert "already up to date" in capsys.readouterr().out
    # added and removed in one run: the removal wins, the addition of another id stays
    back = write_jsonl(tmp_path / "back.jsonl", [record(), record(id="9160000000000077")])
    keep_out = tmp_path / "out.csv"
    keep_out.write_text(f"id\n{UNRZ}\n")
    assert sync(url, "--records", back, "--records-remove", keep_out) == 0
    v, store = _verifier(url)
    try:
        assert v.verify(link(UNRZ, CK), AT).reason is Reason.NOT_FOUND
        assert v.verify(link("9160000000000077", CK), AT).valid
    finally:
        store.close()


@pytest.mark.redis
@requires_redis
def test_malformed_removal_writes_nothing(loaded, tmp_path, capsys):
    client = loaded.client()
    keys, version = sorted(client.keys("*")), read_current(client, L)
    bad = tmp_path / "bad.jsonl"
    bad.write_text(f'{{"id": "{UNRZ}"}}\n{{"id": "nope"}}\n')
    capsys.readouterr()
    assert sync(loaded.url, "--records-remove", bad) == 2
    err = capsys.readouterr().err
    assert "bad.jsonl line 2" in err and "nothing written" in err
    assert len(err.strip().splitlines()) == 1
    assert sorted(client.keys("*")) == keys and read_current(client, L) == version
    assert sync(loaded.url, "--records-remove", bad, "--replace") == 2
    assert "needs --records FILE" in capsys.readouterr().err
    manifest = read_manifest(client, L, read_current(client, L))
    assert manifest.records is not None and manifest.records.count == len(RECORDS)


@pytest.mark.redis
@requires_redis
def test_duplicate_id_in_sync_names_the_line(loaded, tmp_path, capsys):
    dup = write_jsonl(tmp_path / "dup.jsonl", [record(), record(id=UUID), record(name="X")])
    capsys.readouterr()
    assert sync(loaded.url, "--records", dup) == 2
    err = capsys.readouterr().err
    assert "dup.jsonl line 3: a record with this id" in err and "nothing written" in err
