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
from bench.tokens import expected_for, parse_mix  # noqa: E402



def test_smoke_runs_every_scenario_without_failures(tmp_path: Path) -> None:
    out = tmp_path / "out"
    done = subprocess.run([sys.executable, "-m", "bench", "--smoke", "--out", str(out)],
                          cwd=tmp_path, env=runner.child_env(), capture_output=True, text=True,
                          timeout=600,
                          check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = (out / "summary.md").read_text()
    assert "## Failures" in summary
    data = json.loads((out / "results.json").read_text())
    rows = data["rows"]
    scenarios = {"capacity", "restaurant_evening", "stadium_rush", "sync_under_load"}
    assert {r["scenario"] for r in rows if r["kind"] == "embedded"} == scenarios - {
        "sync_under_load"}
    assert {r["scenario"] for r in rows if r["kind"] == "redis"} == scenarios
    assert {r["kind"] for r in rows} == {"echo", "embedded", "redis"}
    for r in rows:
        assert r["requests"] > 0, r
        assert r["failures"] == 0, r
        assert r["wrong_verdicts"] == 0, r
    service = [r for r in rows if r["kind"] != "echo"]
    # every kind of token of the default mix was scanned against the real service
    kinds = set().union(*(r["kinds"] for r in service))
    assert kinds >= {"valid", "rescan", "expired", "revoked", "forged", "garbage",
                     "revoke_later"}
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
    never = runner.summarize_probe(push, [(100.3, "valid"), (100.4, "revoked"),
                                          (100.5, "valid")], 0)
    assert never["ok"] is False and never["delay_after_sync_s"] is None


def test_expected_verdict_of_a_token_revoked_by_the_push() -> None:
    valid = ("valid", None)
    revoked = ("invalid", "revoked")
    assert expected_for("revoke_later", *valid, {}, 50.0) == ({valid}, False)
    assert expected_for("revoke_later", *valid, {"start": 10.0}, 50.0) == (
        {valid, revoked}, False)
    assert expected_for("revoke_later", *valid, {"start": 10.0, "end": 10.5}, 11.4)[0] == {
        valid, revoked}
    assert expected_for("revoke_later", *valid, {"start": 10.0, "end": 10.5}, 11.6) == (
        {revoked}, True)
    assert expected_for("expired", "invalid", "token_expired", {"start": 1.0, "end": 2.0},
                        9.0) == ({("invalid", "token_expired")}, False)


@pytest.mark.parametrize("text", ["valid=", "bogus=3", "valid=-1", "valid=0", "valid=nan"])
def test_bad_mix_is_rejected(text: str) -> None:
    with pytest.raises(ValueError):
        parse_mix(text)
