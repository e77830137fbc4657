"""The EU revocation list (DRL, kid-scoped) through Redis (issue 9): `qrverify sync --drl`
publishes it as a versioned part of the manifest, the follower writes it into the
machine's snapshot, and a verifier that only reads Redis refuses a DRL-revoked token, only
for the kid and hash types the list declares, and only until the entry expires."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Any

import orjson
import pytest
from engine_support import AT, DAY, DE, ES, NOW, key_of, token
from redis_support import publish_manifest, requires_redis, sync_cli, wait_until

from keys.registry import TrustRegistry
from keys.samples import sample_dcc
from verifier import Reason, Verifier
from verifier.cli import main
from verifier.redis.format import Layout, Manifest, StoreDataError, read_current, read_manifest

pytestmark = [pytest.mark.redis, requires_redis]
L = Layout()


def h16(text: str) -> bytes:
    return hashlib.sha256(text.encode()).digest()[:16]


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def batch(kid: bytes, types: str, entries: list[bytes], expires: Any = NOW + DAY) -> dict[str, Any]:
    return {
        "kid": b64(kid),
        "hashType": types,
        "expires": expires,
        "entries": [b64(e) for e in entries],
    }


def write_drl(path: Path, *batches: dict[str, Any]) -> Path:
    path.write_text(json.dumps({"drl": list(batches)}))
    return path


@pytest.fixture(scope="module")
def tok() -> tuple[str, str]:
    """A token signed by ES (issued in RU) and its certificate id."""
    dcc = sample_dcc("vaccination", at=NOW)
    return token(dcc=dcc), dcc["v"][0]["ci"]


@pytest.fixture
def base(redis_server, tmp_path) -> dict[str, Path]:
    """Redis holding the ES and DE keys and an empty revocation list."""
    trust = tmp_path / "trust.json"
    trust.write_bytes(TrustRegistry([key_of(ES), key_of(DE)]).to_json())
    rev = tmp_path / "rev.json"
    rev.write_text('{"revoked": []}')
    assert sync_cli(redis_server.url, "--trust", trust, "--revocations", rev) == 0
    return {"trust": trust, "rev": rev}


def manifest(redis_server) -> Manifest:
    client = redis_server.client()
    return read_manifest(client, L, read_current(client, L))


@pytest.mark.parametrize("in_child", [True, False])
def test_drl_revoked_token_is_refused_from_redis(
    redis_server, base, tmp_path, tok, store, capsys, in_child
):
    t, ci = tok
    drl = write_drl(
        tmp_path / "drl.json",
        batch(ES.kid, "UCI", [h16(ci)]),
        batch(DE.kid, "UCI,COUNTRYCODEUCI,SIGNATURE", [h16("RU" + ci)]),  # another kid
    )
    capsys.readouterr()
    assert sync_cli(redis_server.url, "--drl", drl) == 0
    assert "drl 2 (2 kids)" in capsys.readouterr().out
    m = manifest(redis_server)
    assert m.drl is not None and m.drl.count == 2 and len(m.drl.kids) == 2
    assert orjson.loads(redis_server.client().get(L.manifest(m.version)))["format"] == 2
    s = store(follow=False, build_in_child=in_child)
    assert s.replica.drl is not None and set(s.replica.drl) == {ES.kid, DE.kid}
    v = Verifier(s, "none")
    verdict = v.verify(t, at=AT)
    assert verdict.reason is Reason.REVOKED
    # the entry expires at NOW + DAY: from then on it stops counting
    assert v.verify(t, at=NOW + DAY).reason is Reason.REVOKED
    assert v.verify(t, at=NOW + DAY + 1).valid
    # a second process maps the same file and agrees
    other = store(follow=False)
    assert Verifier(other, "none").verify(t, at=AT).reason is Reason.REVOKED


def test_kid_scope_and_declared_types_hold_through_redis(redis_server, base, tmp_path, tok, store):
    t, ci = tok
    drl = write_drl(
        tmp_path / "drl.json",
        batch(DE.kid, "UCI", [h16(ci)]),  # the hash, but under another kid
        batch(ES.kid, "SIGNATURE", [h16(ci), h16("RU" + ci)]),  # UCI types not declared
    )
    assert sync_cli(redis_server.url, "--drl", drl) == 0
    v = Verifier(store(follow=False), "none")
    assert v.verify(t, at=AT).valid


def test_cli_verify_against_redis_refuses(redis_server, base, tmp_path, tok, capsys):
    t, ci = tok
    drl = write_drl(tmp_path / "drl.json", batch(ES.kid, "COUNTRYCODEUCI", [h16("RU" + ci)]))
    assert sync_cli(redis_server.url, "--drl", drl) == 0
    capsys.readouterr()
    code = main(
        ["verify", "--redis", redis_server.url, "--rules", "none", "--at", AT.isoformat(), t]
    )
    out = capsys.readouterr().out
    assert code == 1
    assert json.loads(out.splitlines()[0])["reason"] == "revoked"


def test_follower_takes_drl_changes_and_keeps_them_across_set_versions(
    redis_server, base, tmp_path, tok, store, capsys
):
    t, ci = tok
    s = store()
    v = Verifier(s, "none")
    assert v.verify(t, at=AT).valid
    before = s.replica.version
    drl = write_drl(tmp_path / "drl.json", batch(ES.kid, "UCI", [h16(ci)]))
    assert sync_cli(redis_server.url, "--drl", drl) == 0
    assert wait_until(lambda: s.replica.version != before, timeout=20)
    assert v.verify(t, at=AT).reason is Reason.REVOKED
    # idempotent: the same file again publishes nothing
    capsys.readouterr()
    assert sync_cli(redis_server.url, "--drl", drl) == 0
    assert "already up to date" in capsys.readouterr().out
    # a revocations-only version (followed by delta) keeps the DRL
    before = s.replica.version
    rev = tmp_path / "more.json"
    rev.write_text(json.dumps({"revoked": [{"type": "UCI", "hash": b64(b"\x01" * 16)}]}))
    assert sync_cli(redis_server.url, "--revocations", rev) == 0
    assert wait_until(lambda: s.replica.version != before, timeout=20)
    assert s.full_loads == 0  # the sets followed the delta
    assert v.verify(t, at=AT).reason is Reason.REVOKED
    # the kid's list replaced by one without the hash: valid again
    before = s.replica.version
    other = write_drl(tmp_path / "drl2.json", batch(ES.kid, "UCI", [h16("x")]))
    assert sync_cli(redis_server.url, "--drl", other) == 0
    assert wait_until(lambda: s.replica.version != before, timeout=20)
    assert v.verify(t, at=AT).valid


def test_kids_merge_and_replace(redis_server, base, tmp_path, tok, store):
    t, ci = tok
    es = write_drl(tmp_path / "es.json", batch(ES.kid, "UCI", [h16(ci)]))
    de = write_drl(tmp_path / "de.json", batch(DE.kid, "UCI", [h16("y"), h16("z")]))
    assert sync_cli(redis_server.url, "--drl", es) == 0
    assert sync_cli(redis_server.url, "--drl", de) == 0  # another kid: added, ES kept
    m = manifest(redis_server)
    assert m.drl is not None and m.drl.count == 3
    first = store(follow=False)
    assert Verifier(first, "none").verify(t, at=AT).reason is Reason.REVOKED
    first.close()  # (the next store becomes the machine's builder)
    assert sync_cli(redis_server.url, "--drl", de, "--replace") == 0  # the whole list: ES gone
    m = manifest(redis_server)
    assert m.drl is not None and [k.kid for k in m.drl.kids] == [DE.kid]
    assert m.trust_keys == 2  # parts not given are kept
    assert Verifier(store(follow=False), "none").verify(t, at=AT).valid


def test_a_large_drl_drop_needs_confirmation(redis_server, base, tmp_path, tok, store, capsys):
    t, ci = tok
    many = [h16(ci), *(h16(f"other {i}") for i in range(9))]
    assert (
        sync_cli(
            redis_server.url, "--drl", write_drl(tmp_path / "a.json", batch(ES.kid, "UCI", many))
        )
        == 0
    )
    first = store(follow=False)
    assert Verifier(first, "none").verify(t, at=AT).reason is Reason.REVOKED
    first.close()  # the machine's file now holds the 10 hashes
    client = redis_server.client()
    good = manifest(redis_server)
    # ES's list replaced by one hash: 10 -> 1, more than half: refused, nothing published
    few = write_drl(tmp_path / "few.json", batch(ES.kid, "UCI", [h16("x")]))
    capsys.readouterr()
    assert sync_cli(redis_server.url, "--drl", few) == 1
    err = capsys.readouterr().err
    assert "EU revocation list would shrink from 10 to 1" in err and "--allow-drop" in err
    assert read_current(client, L) == good.version
    assert sync_cli(redis_server.url, "--drl", few, "--allow-drop") == 0
    dropped = manifest(redis_server)
    assert dropped.drop_confirmed and dropped.drl is not None and dropped.drl.count == 1
    # a writer that skips the check: verifiers refuse its version and keep the list
    sneaky = dataclasses.replace(
        dropped,
        version=f"{dropped.seq + 1}-0123456789abcdef",
        seq=dropped.seq + 1,
        drop_confirmed=False,
    )
    publish_manifest(client, sneaky)
    s = store()
    v = Verifier(s, "none")
    assert wait_until(
        lambda: (s.status()["refused"] or {}).get("version") == sneaky.version, timeout=20
    )
    assert "EU revocation list hashes from 10 to 1" in s.status()["refused"]["reason"]
    assert s.replica.version == good.version and s.status()["counts"]["drl"] == 10
    assert v.verify(t, at=AT).reason is Reason.REVOKED
    # the confirmed drop is taken
    publish_manifest(client, dropped)
    assert wait_until(lambda: s.replica.version == dropped.version, timeout=20)
    assert s.status()["counts"]["drl"] == 1 and s.status()["refused"] is None
    assert v.verify(t, at=AT).valid


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"drl": [{"kid": "", "hashType": "UCI", "expires": 1, "entries": []}]}', "drl[0]"),
        (
            '{"drl": [{"kid": "a2lk", "hashType": "UCI", "expires": 1, "entries": ["x"]}]}',
            "drl[0].entries[0]",
        ),
        ('{"drl": [{"kid": "a2lk", "hashType": "UVCI", "expires": 1, "entries": []}]}', "drl[0]"),
        ("not json", "invalid JSON"),
    ],
)
def test_malformed_drl_writes_nothing(redis_server, base, tmp_path, capsys, content, message):
    client = redis_server.client()
    keys = sorted(client.keys("*"))
    version = read_current(client, L)
    bad = tmp_path / "bad.json"
    bad.write_text(content)
    capsys.readouterr()
    assert sync_cli(redis_server.url, "--drl", bad) == 2
    err = capsys.readouterr().err
    assert message in err and "nothing written" in err and len(err.strip().splitlines()) == 1
    assert sorted(client.keys("*")) == keys and read_current(client, L) == version


def test_format_1_manifest_cannot_carry_a_drl() -> None:
    obj = {
        "format": 1,
        "version": "1-abcdef01",
        "seq": 1,
        "base": None,
        "created": 0,
        "trust": {"blob": "0" * 32, "keys": 1},
        "revoked": {"bits": 0, "count": 0, "chunks": []},
        "registry": None,
        "drl": {"count": 0, "kids": []},
    }
    with pytest.raises(StoreDataError, match="format 1"):
        Manifest.from_json(orjson.dumps(obj))
    obj["format"] = 2
    assert Manifest.from_json(orjson.dumps(obj)).drl is not None


def test_manifest_drl_checks() -> None:
    base = {
        "format": 2,
        "version": "1-abcdef01",
        "seq": 1,
        "base": None,
        "created": 0,
        "trust": {"blob": "0" * 32, "keys": 1},
        "revoked": {"bits": 0, "count": 0, "chunks": []},
        "registry": None,
    }
    kid = b64(b"kid")
    for drl in (
        {"count": 1, "kids": [[kid, 1, 5, 2, [["a" * 32, 1]]]]},  # count vs chunks
        {"count": 1, "kids": [[kid, 8, 5, 1, [["a" * 32, 1]]]]},  # type mask
        {"count": 2, "kids": [[kid, 1, 5, 1, [["a" * 32, 1]]], [kid, 1, 5, 1, [["b" * 32, 1]]]]},
        {"count": 0, "kids": [["", 1, 5, 0, []]]},
    ):
        with pytest.raises(StoreDataError):
            Manifest.from_json(orjson.dumps({**base, "drl": drl}))
