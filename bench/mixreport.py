"""The "register links and EU certificates" part of the load summary (bench/report.py).

Rows come from `python -m bench` with, per step, the requests sent by token kind (`kinds`),
the verdicts compared with the expected one (`checked`), the wrong ones (`wrong_by_kind`)
and, per group ("link" or "eu"), `<group>_rps` (checked verdicts per second) and
`<group>_share` (share of the step's requests).
"""

from __future__ import annotations

from typing import Any

from bench.tokens import LINK_KINDS, kind_group

__all__ = ["section"]

GROUP_NAMES = {"link": "register links", "eu": "EU certificates"}


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100.0 * x:.1f} %"


def _rate(x: float | None) -> str:
    return "-" if x is None else f"{x:,.0f}"


def _capacity_lines(service: list[dict[str, Any]]) -> list[str]:
    """One sentence per target: the closed-loop maximum, split into both kinds."""
    lines = []
    for target in dict.fromkeys(r["target"] for r in service):
        cap = [r for r in service if r["target"] == target and r["scenario"] == "capacity"]
        if not cap:
            continue
        top = max(cap, key=lambda r: r["rps"])
        links = "" if top.get("links", True) else " (served without register links)"
        lines.append(
            f"- {top['store']}, {top['workers']} worker(s){links}: {_rate(top['rps'])} "
            f"verdicts/s at {top['users']} closed-loop users = "
            f"{_rate(top.get('link_rps'))} register-link verdicts/s "
            f"({_pct(top.get('link_share'))} of the scans) + {_rate(top.get('eu_rps'))} "
            f"EU-certificate verdicts/s ({_pct(top.get('eu_share'))})."
        )
    return lines


def section(all_rows: list[dict[str, Any]], meta: dict[str, Any]) -> list[str]:
    """Markdown lines: shares, verdicts/s by kind, the capacity split, per-kind checks."""
    service = [r for r in all_rows if r["kind"] != "echo"]
    shares = meta.get("mix_shares", {})
    inproc = meta.get("inprocess", {})
    lines = [
        "",
        "## Register links and EU certificates",
        "",
        f"The mix is Moscow's: register links {_pct(shares.get('link'))} of the scans, "
        f"EU certificates (and unreadable codes) {_pct(shares.get('eu'))}. In process, "
        f"`Verifier.verify` answers {_rate(inproc.get('link_rate'))} register links/s "
        f"and {_rate(inproc.get('eu_rate'))} EU certificates/s, each kind alone on its "
        "part of the mix. Every verdict of both kinds is compared with the expected "
        "status and reason; a wrong one is a failure.",
    ]
    off = meta.get("links_off") or []
    if off:
        lines += [
            "",
            f"Ran without register links: {', '.join(off)} (this qrverify's "
            "`sync` cannot load register records into Redis); those targets scanned "
            "the EU-certificate part of the mix only.",
        ]
    if not service:
        return lines
    lines += ["", "Capacity, both kinds (closed loop, the best step of each service):", ""]
    lines += _capacity_lines(service)
    lines += [
        "",
        "| scenario | users | service | workers | link share | link verdicts/s | "
        "EU verdicts/s | link checked | EU checked | wrong |",
        "|---|--:|---|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for r in service:
        lines.append(
            f"| {r['scenario']} | {r['users']} | {r['store']} | {r['workers']} | "
            f"{_pct(r.get('link_share'))} | {_rate(r.get('link_rps'))} | "
            f"{_rate(r.get('eu_rps'))} | {r.get('link_checked', 0)} | "
            f"{r.get('eu_checked', 0)} | {r.get('wrong_verdicts', 0)} |"
        )
    weights = meta.get("mix", {})
    total_w = sum(w for w in weights.values() if w > 0) or 1.0
    kinds: dict[str, list[int]] = {}
    for r in service:
        for name, field in (("kinds", 0), ("checked", 1), ("wrong_by_kind", 2)):
            for k, n in r.get(name, {}).items():
                kinds.setdefault(k, [0, 0, 0])[field] += n
    order = [*LINK_KINDS, *sorted(k for k in kinds if k not in LINK_KINDS)]
    lines += [
        "",
        "Every kind, summed over the service steps:",
        "",
        "| kind | of | mix weight | requests | verdicts checked | wrong |",
        "|---|---|--:|--:|--:|--:|",
    ]
    for k in order:
        if k not in kinds:
            continue
        sent, checked, wrong = kinds[k]
        weight = weights.get(k)
        lines.append(
            f"| {k} | {GROUP_NAMES[kind_group(k)]} | "
            f"{'-' if weight is None else _pct(weight / total_w)} | {sent} | "
            f"{checked} | {wrong} |"
        )
    return lines
