"""`python -m bench --smoke` end to end (real uvicorn, real redis-server, real locust load),
plus the pure parts of the runner that decide pass or fail."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.append(str(ROOT))  # the bench package; qrverify itself stays the installed one

from bench import __main__ as runner  # noqa: E402, I001
from bench import report  # noqa: E402
from bench import mixreport  # noqa: E402
from bench.tokens import (  # noqa: E402
    LINK_KINDS,
    MOSCOW_MIX,
    expected_for,
    group_shares,
    kind_group,
    only_group,
    parse_mix,
    without_links,
)


@pytest.mark.slow
def test_smoke_runs_every_scenario_without_failures(tmp_path: Path) -> None:
    out = tmp_path / "out"
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--smoke", "--out", str(out)],
        cwd=tmp_path,
        env=runner.child_env(),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    summary = (out / "summary.md").read_text()
    assert "## Failures" in summary
    data = json.loads((out / "results.json").read_text())
    rows = data["rows"]
    scenarios = {"capacity", "restaurant_evening", "stadium_rush", "sync_under_load"}
    assert {r["scenario"] for r in rows if r["kind"] == "embedded"} == scenarios - {
        "sync_under_load"
    }
    assert {r["scenario"] for r in rows if r["kind"] == "redis"} == scenarios
    assert {r["kind"] for r in rows} == {"echo", "embedded", "redis"}
    for r in rows:
        assert r["requests"] > 0, r
        assert r["failures"] == 0, r
        assert r["wrong_verdicts"] == 0, r
    service = [r for r in rows if r["kind"] != "echo"]
    # every kind of token of Moscow's mix was scanned against the real service, and its
    # verdict compared: register links on every service that has the records (embedded
    # always), EU certificates everywhere
    kinds = set().union(*(r["checked"] for r in service))
    assert kinds >= {"valid", "rescan", "expired", "revoked", "forged", "garbage", "revoke_later"}
    with_links = [r for r in service if r["links"]]
    assert {r["kind"] for r in with_links} >= {"embedded"}
    for kind in LINK_KINDS:
        assert sum(r["checked"].get(kind, 0) for r in with_links) > 0, kind
    for r in with_links:
        assert r["link_checked"] > 0 and r["eu_checked"] > 0, r
        assert r["link_checked"] + r["eu_checked"] == sum(r["checked"].values())
        assert 0.4 < r["link_share"] < 0.95, r  # ~71 % of the weights
    for r in service:
        assert not r["wrong_by_kind"], r
        if not r["links"]:
            assert r["link_checked"] == 0
    assert data["meta"]["mix_shares"]["link"] == pytest.approx(0.71)
    assert data["meta"]["inprocess"]["link_rate"] > 0
    assert data["meta"]["inprocess"]["eu_rate"] > 0
    assert "## Register links and EU certificates" in summary
    assert "register-link verdicts/s" in summary
    pushes = data["pushes"]
    assert len(pushes) == 1 and pushes[0]["ok"] is True, pushes
    assert pushes[0]["delay_after_sync_s"] is not None
    assert pushes[0]["late_valid_polls"] == 0
    for chart in report.CHARTS:  # one chart per question: throughput, p99, revocation delay
        assert (out / chart).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"]({chart})" in summary
    csv_lines = (out / "results.csv").read_text().splitlines()
    assert csv_lines[0].startswith("scenario,target,store,workers,users,rps_vs_echo")
    assert len(csv_lines) == 1 + len(rows)


def test_probe_summary_fails_on_a_late_valid_verdict() -> None:
    push = {"start": 100.0, "end": 100.2}
    good = [(100.1, "valid"), (100.3, "revoked"), (100.5, "revoked")]
    ok = runner.summarize_probe(push, good, 0)
    assert ok["ok"] is True and ok["delay_after_sync_s"] == pytest.approx(0.1)
    late = [(100.1, "valid"), (101.5, "valid"), (101.6, "revoked")]
    bad = runner.summarize_probe(push, late, 0)
    assert bad["ok"] is False and bad["late_valid_polls"] == 1
    never = runner.summarize_probe(
        push, [(100.3, "valid"), (100.4, "revoked"), (100.5, "valid")], 0
    )
    assert never["ok"] is False and never["delay_after_sync_s"] is None


def test_expected_verdict_of_a_token_revoked_by_the_push() -> None:
    valid = ("valid", None)
    revoked = ("invalid", "revoked")
    assert expected_for("revoke_later", *valid, {}, 50.0) == ({valid}, False)
    assert expected_for("revoke_later", *valid, {"start": 10.0}, 50.0) == ({valid, revoked}, False)
    assert expected_for("revoke_later", *valid, {"start": 10.0, "end": 10.5}, 11.4)[0] == {
        valid,
        revoked,
    }
    assert expected_for("revoke_later", *valid, {"start": 10.0, "end": 10.5}, 11.6) == (
        {revoked},
        True,
    )
    assert expected_for("expired", "invalid", "token_expired", {"start": 1.0, "end": 2.0}, 9.0) == (
        {("invalid", "token_expired")},
        False,
    )


@pytest.mark.parametrize("text", ["valid=", "bogus=3", "valid=-1", "valid=0", "valid=nan"])
def test_bad_mix_is_rejected(text: str) -> None:
    with pytest.raises(ValueError):
        parse_mix(text)


def test_moscow_mix_is_mostly_register_links() -> None:
    shares = group_shares(MOSCOW_MIX)
    assert shares["link"] == pytest.approx(0.71) and shares["eu"] == pytest.approx(0.29)
    assert set(LINK_KINDS) <= set(MOSCOW_MIX)  # valid, expired, revoked, unknown, malformed
    assert {"valid", "expired", "revoked", "forged", "garbage"} <= set(MOSCOW_MIX)
    assert [kind_group(k) for k in ("link_bad", "garbage", "valid")] == ["link", "eu", "eu"]
    assert set(only_group(MOSCOW_MIX, "link")) == set(LINK_KINDS)
    eu = without_links(MOSCOW_MIX)
    assert not set(eu) & set(LINK_KINDS) and eu["valid"] == MOSCOW_MIX["valid"]
    with pytest.raises(ValueError):
        without_links({"link_valid": 1.0})


def test_by_group_counts_checked_verdicts_of_each_kind() -> None:
    res = {
        "seconds": 2.0,
        "kinds": {"link_valid": 7, "link_bad": 1, "valid": 2},
        "checked": {"link_valid": 6, "link_bad": 1, "valid": 2},
    }
    got = runner.by_group(res)
    assert got["link_checked"] == 7 and got["eu_checked"] == 2
    assert got["link_rps"] == pytest.approx(3.5) and got["eu_rps"] == pytest.approx(1.0)
    assert got["link_share"] == pytest.approx(0.8) and got["eu_share"] == pytest.approx(0.2)


def test_summary_section_splits_capacity_by_kind() -> None:
    row = {
        "target": "embedded1",
        "store": "embedded",
        "kind": "embedded",
        "workers": 1,
        "scenario": "capacity",
        "users": 4,
        "rps": 1000.0,
        "links": True,
        "wrong_verdicts": 0,
        "kinds": {"link_valid": 700, "valid": 300},
        "checked": {"link_valid": 700, "valid": 299},
        "wrong_by_kind": {"valid": 1},
        "link_checked": 700,
        "eu_checked": 299,
        "link_rps": 700.0,
        "eu_rps": 299.0,
        "link_share": 0.7,
        "eu_share": 0.3,
    }
    meta = {
        "mix": {"link_valid": 70.0, "valid": 30.0},
        "mix_shares": {"link": 0.7, "eu": 0.3},
        "inprocess": {"link_rate": 5000.0, "eu_rate": 3000.0},
        "links_off": ["redis2"],
    }
    text = "\n".join(mixreport.section([row], meta))
    assert (
        "1,000 verdicts/s at 4 closed-loop users = 700 register-link verdicts/s "
        "(70.0 % of the scans) + 299 EU-certificate verdicts/s (30.0 %)" in text
    )
    assert "| link_valid | register links | 70.0 % | 700 | 700 | 0 |" in text
    assert "| valid | EU certificates | 30.0 % | 300 | 299 | 1 |" in text
    assert "Ran without register links: redis2" in text
