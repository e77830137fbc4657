"""EU value sets through Redis (issue 9): `qrverify sync --valuesets DIR` publishes them,
verifiers following Redis check codes against them (a code added is accepted after the
sync, a code removed is refused), a malformed directory writes nothing."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import orjson
import pytest
from engine_support import AT, DE, ES, NOW, key_of, token
from redis_support import requires_redis, sync_cli, wait_until

from keys.registry import TrustRegistry
from keys.samples import sample_dcc
from verifier import Reason, Verifier
from verifier.cli import main
from verifier.redis.format import Layout, read_current, read_manifest
from verifier.valuesets import PACKAGED_DIR

pytestmark = [pytest.mark.redis, requires_redis]
L = Layout()
MP_FILE = "vaccine-medicinal-product.json"
NEW_MP = "EU/1/99/9999"


def vaccine_token(mp: str) -> str:
    dcc = sample_dcc("vaccination", at=NOW)
    dcc["v"][0]["mp"] = mp
    return token(dcc=dcc)


def valueset_dir(path: Path, *, add: tuple[str, ...] = (), remove: tuple[str, ...] = ()) -> Path:
    """A copy of the packaged value sets with product codes added or removed."""
    shutil.copytree(PACKAGED_DIR, path)
    doc = json.loads((path / MP_FILE).read_text())
    for code in add:
        doc["valueSetValues"][code] = {"display": "test", "lang": "en", "active": True}
    for code in remove:
        del doc["valueSetValues"][code]
    (path / MP_FILE).write_text(json.dumps(doc))
    return path


@pytest.fixture
def base(redis_server, tmp_path) -> None:
    trust = tmp_path / "trust.json"
    trust.write_bytes(TrustRegistry([key_of(ES), key_of(DE)]).to_json())
    rev = tmp_path / "rev.json"
    rev.write_text('{"revoked": []}')
    assert sync_cli(redis_server.url, "--trust", trust, "--revocations", rev) == 0


def test_added_code_accepted_removed_code_refused(redis_server, base, tmp_path, store, capsys):
    new, known = vaccine_token(NEW_MP), vaccine_token("Sputnik-V")
    s = store()
    v = Verifier(s, "none")
    # packaged value sets (Redis holds none): the new code is unknown
    assert s.replica.valuesets is None
    refused = v.verify(new, at=AT)
    assert refused.reason is Reason.BAD_PAYLOAD and "mp" in (refused.detail or "")
    assert v.verify(known, at=AT).valid  # and now cached
    before = s.replica.version
    capsys.readouterr()
    added = valueset_dir(tmp_path / "vs1", add=(NEW_MP,), remove=("Sputnik-V",))
    assert sync_cli(redis_server.url, "--valuesets", added) == 0
    assert ", value sets " in capsys.readouterr().out
    assert wait_until(lambda: s.replica.version != before, timeout=20)
    assert s.replica.valuesets is not None
    assert v.verify(new, at=AT).valid
    removed = v.verify(known, at=AT)  # the cached proof does not outlive its value sets
    assert removed.reason is Reason.BAD_PAYLOAD and "mp" in (removed.detail or "")
    # idempotent: the same directory (in another order, another place) publishes nothing
    again = valueset_dir(tmp_path / "vs2", add=(NEW_MP,), remove=("Sputnik-V",))
    capsys.readouterr()
    assert sync_cli(redis_server.url, "--valuesets", again) == 0
    assert "already up to date" in capsys.readouterr().out
    # a set-only version (delta) keeps the value sets, and the verifier its cache
    before = s.replica.version
    rev = tmp_path / "more.json"
    rev.write_text('{"revoked": [{"type": "UCI", "hash": "AQEBAQEBAQEBAQEBAQEBAQ=="}]}')
    assert sync_cli(redis_server.url, "--revocations", rev) == 0
    assert wait_until(lambda: s.replica.version != before, timeout=20)
    assert v.verify(new, at=AT).valid
    hits = v.hits
    assert v.verify(new, at=AT).valid and v.hits == hits + 1


def test_local_valuesets_win_over_redis(redis_server, base, tmp_path, store):
    added = valueset_dir(tmp_path / "vs", add=(NEW_MP,))
    assert sync_cli(redis_server.url, "--valuesets", added) == 0
    s = store(follow=False)
    assert Verifier(s, "none").verify(vaccine_token(NEW_MP), at=AT).valid
    pinned = Verifier(s, "none", valuesets=PACKAGED_DIR)
    assert pinned.verify(vaccine_token(NEW_MP), at=AT).reason is Reason.BAD_PAYLOAD


def test_cli_verify_follows_redis_valuesets(redis_server, base, tmp_path, capsys):
    added = valueset_dir(tmp_path / "vs", add=(NEW_MP,))
    assert sync_cli(redis_server.url, "--valuesets", added) == 0
    m = read_manifest(redis_server.client(), L, read_current(redis_server.client(), L))
    assert m.valuesets is not None
    assert orjson.loads(redis_server.client().get(L.manifest(m.version)))["format"] == 2
    capsys.readouterr()
    args = ["verify", "--redis", redis_server.url, "--rules", "none", "--at", AT.isoformat()]
    assert main([*args, vaccine_token(NEW_MP)]) == 0
    assert json.loads(capsys.readouterr().out)["status"] == "valid"


def _break_missing(d: Path) -> str:
    (d / "test-type.json").unlink()
    return "test-type.json"


def _break_json(d: Path) -> str:
    (d / MP_FILE).write_text("{not json")
    return MP_FILE


def _break_values(d: Path) -> str:
    (d / "test-result.json").write_text('{"valueSetValues": {}}')
    return "test-result.json"


def _break_code(d: Path) -> str:
    (d / "country-2-codes.json").write_text('{"valueSetValues": {"": {}}}')
    return "country-2-codes.json"


@pytest.mark.parametrize("breaker", [_break_missing, _break_json, _break_values, _break_code])
def test_malformed_directory_writes_nothing(redis_server, base, tmp_path, capsys, breaker):
    bad = valueset_dir(tmp_path / "bad")
    name = breaker(bad)
    client = redis_server.client()
    keys = sorted(client.keys("*"))
    version = read_current(client, L)
    capsys.readouterr()
    assert sync_cli(redis_server.url, "--valuesets", bad) == 2
    err = capsys.readouterr().err
    assert name in err and "nothing written" in err and len(err.strip().splitlines()) == 1
    assert sorted(client.keys("*")) == keys and read_current(client, L) == version


def test_missing_directory_is_a_usage_error(redis_server, base, tmp_path, capsys):
    assert sync_cli(redis_server.url, "--valuesets", tmp_path / "nowhere") == 2
    assert "value-set directory not found" in capsys.readouterr().err
