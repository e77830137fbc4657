"""Prometheus metrics of one service process, rendered in the text exposition format 0.0.4.

Everything here runs on the event-loop thread (plain dict updates, no locks). Label
values come from closed sets only (route templates, reason codes, API-key names), never
from request data, so a scan of random paths cannot blow up the series count; and no
metric ever carries a name, date of birth, certificate id or token.
"""

from __future__ import annotations

import math
import os
from bisect import bisect_left
from collections.abc import Mapping
from typing import Any

from verifier import __version__

DEFAULT_BUCKETS: tuple[float, ...] = (
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
)
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"})
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _fmt(value: float) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


def _labels(names: tuple[str, ...], values: tuple[Any, ...]) -> str:
    return ",".join(f'{n}="{_escape(str(v))}"' for n, v in zip(names, values, strict=True))


class Metrics:
    """Counters and a latency histogram; `render()` adds the store gauges at scrape time."""

    def __init__(
        self, buckets: tuple[float, ...] = DEFAULT_BUCKETS, version: str = __version__
    ) -> None:
        self.version = version
        self.buckets = tuple(sorted(buckets))
        self.requests: dict[tuple[str, str, int], int] = {}
        self._hist: dict[str, list[int]] = {}
        self._hist_sum: dict[str, float] = {}
        self.verdicts: dict[tuple[str, str], int] = {}
        self.client_verdicts: dict[tuple[str, str], int] = {}
        self.images: dict[str, int] = {}

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        method = method if method in _METHODS else "OTHER"
        key = (route, method, status)
        self.requests[key] = self.requests.get(key, 0) + 1
        counts = self._hist.get(route)
        if counts is None:
            counts = self._hist[route] = [0] * (len(self.buckets) + 1)
            self._hist_sum[route] = 0.0
        counts[bisect_left(self.buckets, seconds)] += 1
        self._hist_sum[route] += seconds

    def count_verdict(self, status: str, reason: str | None, client: str | None) -> None:
        key = (status, reason or "none")
        self.verdicts[key] = self.verdicts.get(key, 0) + 1
        if client is not None:
            ckey = (client, status)
            self.client_verdicts[ckey] = self.client_verdicts.get(ckey, 0) + 1

    def count_image(self, outcome: str) -> None:
        self.images[outcome] = self.images.get(outcome, 0) + 1

    def start(self) -> None:
        """Called when the app starts serving (`SharedMetrics` starts publishing here)."""

    def stop(self) -> None:
        """Called when the app stops."""

    def workers(self, store_status: Mapping[str, Any] | None) -> list[dict[str, Any]] | None:
        """The snapshot version each worker of this server serves (None: one process)."""
        return None

    def state(self) -> dict[str, Any]:
        """This process's counters as plain JSON-able data (what `SharedMetrics` publishes)."""
        return {
            "requests": [[r, m, s, n] for (r, m, s), n in self.requests.items()],
            "hist": {r: [*c, self._hist_sum[r]] for r, c in self._hist.items()},
            "verdicts": [[s, r, n] for (s, r), n in self.verdicts.items()],
            "client_verdicts": [[c, s, n] for (c, s), n in self.client_verdicts.items()],
            "images": dict(self.images),
        }

    def totals(self) -> Metrics:
        """The counters to show: this process's (`SharedMetrics`: every worker's, summed)."""
        return self

    def add_state(self, state: Mapping[str, Any]) -> None:
        """Add another process's published counters to these (malformed parts are skipped)."""
        try:
            for r, m, st, n in state.get("requests", ()):
                key = (str(r), str(m), int(st))
                self.requests[key] = self.requests.get(key, 0) + int(n)
            nb = len(self.buckets) + 1
            for r, values in dict(state.get("hist", {})).items():
                if len(values) != nb + 1:
                    continue
                counts = self._hist.setdefault(str(r), [0] * nb)
                for i in range(nb):
                    counts[i] += int(values[i])
                self._hist_sum[str(r)] = self._hist_sum.get(str(r), 0.0) + float(values[nb])
            for st, reason, n in state.get("verdicts", ()):
                vkey = (str(st), str(reason))
                self.verdicts[vkey] = self.verdicts.get(vkey, 0) + int(n)
            for client, st, n in state.get("client_verdicts", ()):
                ckey = (str(client), str(st))
                self.client_verdicts[ckey] = self.client_verdicts.get(ckey, 0) + int(n)
            for outcome, n in dict(state.get("images", {})).items():
                self.images[str(outcome)] = self.images.get(str(outcome), 0) + int(n)
        except (TypeError, ValueError):
            pass

    def render(self, store_status: Mapping[str, Any] | None = None) -> bytes:
        out: list[str] = []
        total = self.totals()

        def family(name: str, kind: str, help_: str) -> None:
            out.append(f"# HELP {name} {help_}")
            out.append(f"# TYPE {name} {kind}")

        family("qrverify_build_info", "gauge", "The running qrverify version (always 1).")
        out.append(f'qrverify_build_info{{version="{_escape(self.version)}"}} 1')

        family("qrverify_http_requests_total", "counter", "HTTP requests by route, method, status.")
        for (route, method, status), n in sorted(total.requests.items()):
            lbl = _labels(("route", "method", "status"), (route, method, status))
            out.append(f"qrverify_http_requests_total{{{lbl}}} {n}")

        name = "qrverify_http_request_duration_seconds"
        family(name, "histogram", "Time from request start to response end, by route.")
        for route in sorted(total._hist):
            counts = total._hist[route]
            cumulative = 0
            base = _labels(("route",), (route,))
            for bound, c in zip(total.buckets, counts, strict=False):
                cumulative += c
                out.append(f'{name}_bucket{{{base},le="{_fmt(bound)}"}} {cumulative}')
            cumulative += counts[-1]
            out.append(f'{name}_bucket{{{base},le="+Inf"}} {cumulative}')
            out.append(f"{name}_sum{{{base}}} {_fmt(total._hist_sum[route])}")
            out.append(f"{name}_count{{{base}}} {cumulative}")

        family(
            "qrverify_verdicts_total",
            "counter",
            'Verdicts by status and reason code (reason="none" when valid).',
        )
        for (vstatus, reason), n in sorted(total.verdicts.items()):
            lbl = _labels(("status", "reason"), (vstatus, reason))
            out.append(f"qrverify_verdicts_total{{{lbl}}} {n}")

        family(
            "qrverify_client_verdicts_total",
            "counter",
            "Verdicts by API-key name (the key file's name, never the secret) and status.",
        )
        for (client, cstatus), n in sorted(total.client_verdicts.items()):
            lbl = _labels(("client", "status"), (client, cstatus))
            out.append(f"qrverify_client_verdicts_total{{{lbl}}} {n}")

        family(
            "qrverify_image_decodes_total",
            "counter",
            "Uploaded images by outcome (qr_found, no_qr, bad_image, too_large).",
        )
        for outcome, n in sorted(total.images.items()):
            out.append(f'qrverify_image_decodes_total{{outcome="{_escape(outcome)}"}} {n}')

        if store_status is not None:
            _render_store(out, family, store_status)
        workers = self.workers(store_status)
        if workers is None and store_status is not None:
            workers = [
                {
                    "worker": os.getpid(),
                    "version": store_status.get("version"),
                    "source": store_status.get("source"),
                }
            ]
        if workers:
            family("qrverify_workers", "gauge", "Worker processes of this server.")
            out.append(f"qrverify_workers {len(workers)}")
            family(
                "qrverify_worker_snapshot_info",
                "gauge",
                "The store snapshot version each worker serves (always 1).",
            )
            for w in workers:
                lbl = _labels(
                    ("worker", "version", "source"),
                    (w.get("worker"), w.get("version") or "none", w.get("source") or "unknown"),
                )
                out.append(f"qrverify_worker_snapshot_info{{{lbl}}} 1")
        out.append("")
        return "\n".join(out).encode("utf-8")


def _render_store(out: list[str], family: Any, status: Mapping[str, Any]) -> None:
    source = _escape(str(status.get("source", "unknown")))
    family("qrverify_store_ready", "gauge", "1 when keys are loaded and the replica is fresh.")
    out.append(f'qrverify_store_ready{{source="{source}"}} {1 if status.get("ready") else 0}')
    age = status.get("age_seconds")
    if isinstance(age, int | float) and not isinstance(age, bool):
        family("qrverify_store_age_seconds", "gauge", "Age of this process's store replica.")
        out.append(f'qrverify_store_age_seconds{{source="{source}"}} {_fmt(float(age))}')
    counts = status.get("counts")
    if isinstance(counts, Mapping):
        family(
            "qrverify_store_entries",
            "gauge",
            "Entries in the replica: issuer keys, revoked hashes, registry hashes.",
        )
        for kind in ("keys", "revoked", "registry"):
            value = counts.get(kind)
            if isinstance(value, int) and not isinstance(value, bool):
                out.append(f'qrverify_store_entries{{source="{source}",set="{kind}"}} {value}')
        skipped = counts.get("skipped_keys")
        if isinstance(skipped, int) and not isinstance(skipped, bool):
            family(
                "qrverify_trust_skipped_keys",
                "gauge",
                "Unusable trust-file entries skipped at load (see the startup warnings).",
            )
            out.append(f'qrverify_trust_skipped_keys{{source="{source}"}} {skipped}')
