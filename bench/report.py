"""Results of `python -m bench`: CSV, PNG charts and a Markdown summary (ratios first).

Every service row is paired with the echo baseline of the same run: the echo target with the
same number of uvicorn workers, same scenario and same user count (or, when that target was
not run, the echo target that was, named in the `baseline` column).

    rps/echo     throughput of the service over the echo app's under the same load
    p99/echo     99th-percentile latency over the echo app's (1.0 = no cost added)
    rps/w/inproc throughput per worker over the in-process Verifier.verify rate
    of ideal     (closed-loop only) throughput over 1 / (1/echo_rps + 1/(workers x inproc)),
                 the rate if verification added its in-process cost to the echo app
"""

from __future__ import annotations

import csv
import json
import math
import os
from pathlib import Path
from typing import Any

from bench import mixreport

__all__ = ["with_baselines", "write"]

CSV_FIELDS = (
    "scenario",
    "target",
    "store",
    "workers",
    "users",
    "rps_vs_echo",
    "p50_vs_echo",
    "p95_vs_echo",
    "p99_vs_echo",
    "rps_per_worker_vs_inproc",
    "of_ideal",
    "rps",
    "p50_ms",
    "p95_ms",
    "p99_ms",
    "max_ms",
    "requests",
    "failures",
    "wrong_verdicts",
    "late_valid",
    "baseline",
    "echo_rps",
    "echo_p50_ms",
    "echo_p95_ms",
    "echo_p99_ms",
    "inproc_rate",
    "seconds",
    "pacing",
    "link_rps",
    "eu_rps",
    "link_share",
)


def _ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or not b or math.isnan(a) or math.isnan(b):
        return None
    return a / b


def with_baselines(rows: list[dict[str, Any]], inproc_rate: float) -> list[dict[str, Any]]:
    """Service rows (not echo) with their echo baseline and the ratios added."""
    echo = {(r["target"], r["scenario"], r["users"]): r for r in rows if r["kind"] == "echo"}
    out = []
    for r in rows:
        if r["kind"] == "echo":
            continue
        base = echo.get((f"echo{r['workers']}", r["scenario"], r["users"]))
        if base is None:
            base = next(
                (
                    e
                    for (t, s, u), e in sorted(echo.items())
                    if s == r["scenario"] and u == r["users"]
                ),
                None,
            )
        row = dict(r)
        row["baseline"] = base["target"] if base else None
        for key in ("rps", "p50_ms", "p95_ms", "p99_ms"):
            row[f"echo_{key}"] = base[key] if base else None
        row["rps_vs_echo"] = _ratio(r["rps"], row["echo_rps"])
        for q in ("p50", "p95", "p99"):
            row[f"{q}_vs_echo"] = _ratio(r[f"{q}_ms"], row[f"echo_{q}_ms"])
        row["inproc_rate"] = inproc_rate
        row["rps_per_worker_vs_inproc"] = _ratio(r["rps"], r["workers"] * inproc_rate)
        row["of_ideal"] = None
        if r.get("pacing", 0) == 0 and row["echo_rps"] and inproc_rate:
            ideal = 1.0 / (1.0 / row["echo_rps"] + 1.0 / (r["workers"] * inproc_rate))
            row["of_ideal"] = r["rps"] / ideal
        out.append(row)
    return out


def _fmt(value: Any, digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=CSV_FIELDS, extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow(
                {
                    k: (round(v, 4) if isinstance(v, float) else v)
                    for k, v in r.items()
                    if k in CSV_FIELDS
                }
            )


# One chart per question a reader has, one colour per service, plain numbers on the axes.
SERIES = (
    ("echo", "echo app (baseline)", "#7f7f7f", "--"),
    ("embedded", "qrverify, embedded store", "#1f77b4", "-"),
    ("redis", "qrverify, Redis store", "#d62728", "-"),
)
CHARTS = ("throughput.png", "latency_p99.png", "revocation_delay.png")


def _kind(row: dict[str, Any]) -> str:
    return str(row.get("kind") or row["target"].rstrip("0123456789"))


def _plain_axis(ax: Any, xs: list[float]) -> None:
    """User counts as written (1, 8, 32), no offsets or powers of ten on either axis."""
    from matplotlib.ticker import FixedLocator, NullLocator, ScalarFormatter

    ax.set_xscale("log", base=2)
    ax.xaxis.set_major_locator(FixedLocator(sorted(set(xs))))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.xaxis.set_major_formatter(ScalarFormatter())
    formatter = ScalarFormatter(useOffset=False)
    formatter.set_scientific(False)
    ax.yaxis.set_major_formatter(formatter)
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)


def _lines(ax: Any, rows: list[dict[str, Any]], field: str) -> list[float]:
    xs: list[float] = []
    for kind, label, colour, style in SERIES:
        pts = sorted(
            (r for r in rows if _kind(r) == kind and r.get(field) is not None),
            key=lambda r: r["users"],
        )
        if not pts:
            continue
        ax.plot(
            [r["users"] for r in pts],
            [r[field] for r in pts],
            style,
            color=colour,
            marker="o",
            linewidth=2,
            label=label,
        )
        xs += [r["users"] for r in pts]
    return xs


def _panels(
    plt: Any,
    out: Path,
    name: str,
    title: str,
    groups: list[tuple[str, list[Any], str]],
    field: str,
    ylabel: str,
    same_scale: bool = False,
) -> str | None:
    """One panel per group (title, rows, x label), the three services in each."""
    groups = [(t, g, x) for t, g, x in groups if g]
    if not groups:
        return None
    fig, axes = plt.subplots(1, len(groups), figsize=(5.2 * len(groups), 4.2), squeeze=False)
    for ax, (sub, group, xlabel) in zip(axes[0], groups, strict=True):
        xs = _lines(ax, group, field)
        _plain_axis(ax, xs)
        ax.set(title=sub, xlabel=xlabel)
    if same_scale:  # panels side by side compare at a glance only on one scale
        top = max(ax.get_ylim()[1] for ax in axes[0])
        for ax in axes[0]:
            ax.set_ylim(0, top)
    axes[0][0].set_ylabel(ylabel)
    axes[0][0].legend(fontsize=9, loc="best")
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    fig.savefig(out / name, dpi=90)
    plt.close(fig)
    return name


def _revocation_chart(plt: Any, out: Path, pushes: list[dict[str, Any]]) -> str | None:
    pushes = [p for p in pushes if p.get("sync_seconds") is not None]
    if not pushes:
        return None
    fig, ax = plt.subplots(figsize=(8.5, 1.8 + 0.9 * len(pushes)))
    limit_s = 1.0
    right = 0.0
    for i, p in enumerate(pushes):
        sync_s = float(p["sync_seconds"])
        ax.barh(
            i,
            sync_s,
            height=0.45,
            color="#9ecae1",
            label="`qrverify sync` running" if i == 0 else None,
        )
        ax.plot(
            [sync_s + limit_s] * 2,
            [i - 0.3, i + 0.3],
            color="#d62728",
            linewidth=2,
            label=f"limit: {limit_s:g} s after the sync" if i == 0 else None,
        )
        enforced = p.get("delay_after_sync_start_s")
        if enforced is not None:
            ax.plot(
                [float(enforced)],
                [i],
                "o",
                color="#2ca02c",
                markersize=10,
                label="every probe answers `revoked` from here" if i == 0 else None,
            )
            ax.annotate(
                f"revoked after {float(enforced):.2f} s",
                (float(enforced), i),
                xytext=(8, 8),
                textcoords="offset points",
                fontsize=9,
            )
        else:
            ax.annotate(
                "never enforced",
                (sync_s, i),
                xytext=(8, 8),
                textcoords="offset points",
                fontsize=9,
                color="#d62728",
            )
        right = max(right, sync_s + limit_s)
    ax.set_yticks(
        range(len(pushes)), [f"{p['target']} ({p.get('users', '?')} gates)" for p in pushes]
    )
    ax.set_ylim(len(pushes) - 0.4, -0.6)  # the first push on top
    ax.set_xlim(0, right * 1.1)
    ax.set_xlabel("seconds since the sync started")
    ax.set_title(
        "Revocation delay under load: from `sync` start to every scan refused", fontsize=11
    )
    ax.grid(alpha=0.3, axis="x")
    fig.legend(fontsize=8, loc="lower center", ncol=3, frameon=False)
    fig.tight_layout(rect=(0, 0.12, 1, 1))
    fig.savefig(out / "revocation_delay.png", dpi=90)
    plt.close(fig)
    return "revocation_delay.png"


def _charts(
    out: Path,
    rows: list[dict[str, Any]],
    meta: dict[str, Any],
    pushes: list[dict[str, Any]] | None = None,
) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = {s["name"]: s for s in meta.get("scenarios", [])}

    def pick(scenario: str, workers: int | None = None) -> list[dict[str, Any]]:
        return [
            r
            for r in rows
            if r["scenario"] == scenario and (workers is None or r["workers"] == workers)
        ]

    def label(scenario: str) -> str:
        return str(labels.get(scenario, {}).get("user_label", "users"))

    workers = sorted({int(r["workers"]) for r in rows})
    files = [
        _panels(
            plt,
            out,
            "throughput.png",
            "Throughput against the echo app (capacity: closed-loop scanners, no pause)",
            [
                (
                    f"{w} uvicorn worker{'s' if w > 1 else ''}",
                    pick("capacity", w),
                    label("capacity"),
                )
                for w in workers
            ],
            "rps",
            "verdicts / s",
            same_scale=True,
        ),
        _panels(
            plt,
            out,
            "latency_p99.png",
            f"99th-percentile latency as load rises ({workers[0] if workers else 1} "
            "uvicorn worker)",
            [
                (
                    str(labels.get(s, {}).get("title", s)).split(":")[0],
                    pick(s, workers[0] if workers else None),
                    label(s),
                )
                for s in ("capacity", "stadium_rush", "restaurant_evening")
            ],
            "p99_ms",
            "p99 latency, ms",
        ),
        _revocation_chart(plt, out, pushes or []),
    ]
    return [f for f in files if f]


def main(argv: list[str] | None = None) -> int:
    """Redraw the charts of a finished run from its results.json: `python -m bench.report DIR`."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m bench.report", description=main.__doc__)
    parser.add_argument("dir", type=Path, help="a results folder (holds results.json)")
    args = parser.parse_args(argv)
    data = json.loads((args.dir / "results.json").read_text())
    for old in args.dir.glob("*.png"):
        old.unlink()
    files = _charts(args.dir, data["rows"], data["meta"], data.get("pushes", []))
    paired = with_baselines(data["rows"], data["meta"]["inprocess"]["rate"])
    summary = args.dir / "summary.md"
    summary.write_text(_summary(paired, data["rows"], data.get("pushes", []), data["meta"], files))
    print("\n".join(str(args.dir / f) for f in files))
    return 0


def _summary(
    rows: list[dict[str, Any]],
    all_rows: list[dict[str, Any]],
    pushes: list[dict[str, Any]],
    meta: dict[str, Any],
    charts: list[str],
) -> str:
    inproc = meta["inprocess"]["rate"]
    lines = [
        f"# qrverify load benchmark ({meta['mode']})",
        "",
        f"Command: `{meta['command']}` (from the repository root). "
        f"Total time {meta['elapsed_s']:.0f} s; {meta['duration_per_step_s']:g} s per step "
        f"after {meta['warmup_s']:g} s warm-up (sync steps: twice as long).",
        "",
        f"In-process `Verifier.verify` on the same token mix: **{inproc:,.0f} verdicts/s** "
        "(one process, re-scan cache on as in the service).",
        "",
        "Ratios first: `rps/echo` = service throughput over the minimal Starlette echo app's "
        "under the same load, same uvicorn settings and workers; `p99/echo` the same for "
        "latency; `rps/w/inproc` = throughput per worker over the in-process rate; "
        "`of ideal` (closed loop) = throughput over 1/(1/echo + 1/(workers x in-process)).",
        "",
        "| scenario | users | service | workers | rps/echo | p50/echo | p99/echo | "
        "rps/w/inproc | of ideal | rps | p50 ms | p95 ms | p99 ms | echo rps | echo p99 ms | "
        "requests | failed |",
        "|---|--:|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['scenario']} | {r['users']} | {r['store']} | {r['workers']} | "
            f"{_fmt(r['rps_vs_echo'])} | {_fmt(r['p50_vs_echo'])} | {_fmt(r['p99_vs_echo'])} | "
            f"{_fmt(r['rps_per_worker_vs_inproc'], 3)} | {_fmt(r['of_ideal'])} | "
            f"{_fmt(r['rps'], 0)} | {_fmt(r['p50_ms'])} | {_fmt(r['p95_ms'])} | "
            f"{_fmt(r['p99_ms'])} | {_fmt(r['echo_rps'], 0)} | {_fmt(r['echo_p99_ms'])} | "
            f"{r['requests']} | {r['failures']} |"
        )
    if pushes:
        lines += [
            "",
            "## Revocations pushed under load (`qrverify sync --redis`)",
            "",
            "Delay = from the end of the sync run (new version published) to the moment "
            "after which every probe (a new connection every 10 ms) answered `revoked`. "
            "Limit: 1 s; a `valid` verdict later than that is a failure, in the probe "
            "and in the load.",
            "",
            "| service | gates | sync run s | delay after sync s | delay after sync "
            "start s | probes | late valid | ok |",
            "|---|--:|--:|--:|--:|--:|--:|---|",
        ]
        late_load = {
            r["target"]: r.get("late_valid", 0)
            for r in all_rows
            if r["scenario"] == "sync_under_load"
        }
        for p in pushes:
            lines.append(
                f"| {p['target']} | {p.get('users', '-')} | {_fmt(p.get('sync_seconds'))} | "
                f"{_fmt(p.get('delay_after_sync_s'), 3)} | "
                f"{_fmt(p.get('delay_after_sync_start_s'), 3)} | {p.get('polls', '-')} | "
                f"{p.get('late_valid_polls', '-')} + {late_load.get(p['target'], 0)} in load | "
                f"{'yes' if p.get('ok') else 'NO ' + p.get('error', '')} |"
            )
    lines += mixreport.section(all_rows, meta)
    failures = [
        (r["target"], r["scenario"], r["users"], r["messages"]) for r in all_rows if r["failures"]
    ]
    lines += ["", "## Failures", ""]
    if failures:
        for t, s, u, m in failures:
            lines.append(f"- {t} {s} {u} users: {json.dumps(m)}")
    else:
        lines.append(
            f"None: {sum(r['requests'] for r in all_rows):,} requests, every HTTP "
            "status and every verdict as expected."
        )
    lines += ["", "## Scenarios", ""]
    for s in meta.get("scenarios", []):
        lines.append(
            f"- `{s['name']}`: {s['title']} (pacing {s['pacing_s']:.3f} s per user, "
            f"time factor {s['factor']:g})."
        )
    mix = ", ".join(f"{k} {v:g}" for k, v in meta["mix"].items())
    lines += [
        "",
        f"Token mix (weights; link_* are register links): {mix}; sync scenario "
        "adds revoke_later 5. "
        f"{meta['valid_tokens']:,} distinct valid tokens (vaccination 70 %, test 20 %, "
        "recovery 10 %), walked in order so that fresh guests miss the re-scan cache.",
        "",
        "## Machine",
        "",
    ]
    for k, v in meta["machine"].items():
        lines.append(f"- {k}: {v}")
    if charts:
        lines += ["", "## Charts", ""]
        lines += [f"![{c}]({c})" for c in charts]
    return "\n".join(lines) + "\n"


def write(
    out: Path,
    rows: list[dict[str, Any]],
    pushes: list[dict[str, Any]],
    meta: dict[str, Any],
    charts: bool = True,
) -> Path:
    """Write results.csv, results.json, machine.json, <scenario>.png, summary.md into `out`."""
    out.mkdir(parents=True, exist_ok=True)
    paired = with_baselines(rows, meta["inprocess"]["rate"])
    _write_csv(out / "results.csv", paired)
    with open(out / "results.csv", "a", newline="") as fh:  # echo rows too, for the record
        w = csv.DictWriter(fh, fieldnames=CSV_FIELDS, extrasaction="ignore")
        for r in rows:
            if r["kind"] == "echo":
                w.writerow(
                    {
                        k: (round(v, 4) if isinstance(v, float) else v)
                        for k, v in r.items()
                        if k in CSV_FIELDS
                    }
                )
    (out / "results.json").write_text(
        json.dumps({"meta": meta, "rows": rows, "pushes": pushes}, indent=1, default=str)
    )
    (out / "machine.json").write_text(json.dumps(meta["machine"], indent=1))
    files = _charts(out, rows, meta, pushes) if charts and rows else []
    summary = out / "summary.md"
    tmp = summary.with_suffix(".tmp")
    tmp.write_text(_summary(paired, rows, pushes, meta, files))
    os.replace(tmp, summary)
    return summary


if __name__ == "__main__":
    raise SystemExit(main())
