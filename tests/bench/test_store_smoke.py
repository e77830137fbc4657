"""bench/bench_store.py end to end at a small size (real redis-server, real worker
processes): every measurement line comes out, the revocation keeps the sets file, and
the reload p99 is pooled over the runs it names."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.append(str(ROOT))  # the bench package; qrverify itself stays the installed one

from bench._procs import child_env  # noqa: E402, I001


@pytest.mark.slow
@pytest.mark.redis
def test_store_bench_small_run(tmp_path: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "bench_store.py"),
            "--entries",
            "20000",
            "--workers",
            "2",
            "--records",
            "0",
            "--reloads",
            "2",
            "--revocations",
            "2",
            "--quiet-seconds",
            "0.3",
            "--probes",
            "1000",
        ],
        cwd=tmp_path,
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    assert "bench_store: 20,000 hashes, 0 records, 2 workers" in out
    assert "sets file kept (not rewritten) 2/2" in out
    assert re.search(r"one revocation, end of sync -> live on every worker: median \d+ ms", out)
    assert len(re.findall(r"^full reload \d of 20,000 fresh hashes", out, re.M)) == 2
    assert "p99 over the 2 reloads and the quiet windows before them" in out
    pooled = re.findall(r"^  p99 (builder|reader) .* ratio (\d+\.\d\d)$", out, re.M)
    assert sorted(role for role, _ in pooled) == ["builder", "reader"]
    assert all(float(ratio) > 0 for _, ratio in pooled)
