"""bench/report.py redraws the charts of a finished run from its results.json."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.append(str(ROOT))  # the bench package; qrverify itself stays the installed one

from bench import report  # noqa: E402, I001

PNG = b"\x89PNG\r\n\x1a\n"


def test_charts_redrawn_from_the_committed_results(tmp_path: Path) -> None:
    shutil.copy(ROOT / "bench" / "results" / "results.json", tmp_path / "results.json")
    (tmp_path / "old_scenario.png").write_bytes(PNG)  # charts of an older layout go away
    assert report.main([str(tmp_path)]) == 0
    assert sorted(p.name for p in tmp_path.glob("*.png")) == sorted(report.CHARTS)
    for chart in report.CHARTS:
        assert (tmp_path / chart).read_bytes()[:8] == PNG
    summary = (tmp_path / "summary.md").read_text()
    assert all(f"]({c})" in summary for c in report.CHARTS)


def test_axes_show_plain_numbers() -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data = json.loads((ROOT / "bench" / "results" / "results.json").read_text())
    rows = [r for r in data["rows"] if r["scenario"] == "capacity" and r["workers"] == 1]
    fig, ax = plt.subplots()
    xs = report._lines(ax, rows, "rps")
    report._plain_axis(ax, xs)
    fig.canvas.draw()
    xlabels = [t.get_text() for t in ax.get_xticklabels()]
    ylabels = [t.get_text() for t in ax.get_yticklabels()]
    plt.close(fig)
    assert xlabels == ["1", "8", "32"]  # the user counts, not 2^0 .. 2^5
    assert ylabels and all(
        label.replace("\u2212", "-").lstrip("-").isdigit() for label in ylabels
    ), ylabels
    # one colour per service, three services
    assert len({c for _, _, c, _ in report.SERIES}) == 3
