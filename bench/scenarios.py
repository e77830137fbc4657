"""Named load scenarios: who scans, how often, how many, and for how long.

Real rates are compressed in time (scaled up by `factor`) so that a step of seconds carries
the load of minutes; each step is one user count, measured after a short warm-up.

    capacity           closed loop (no think time): the most a service setup answers.
    restaurant_evening venues scan a guest every 20 s at peak (3 a minute) on a keep-alive
                       connection; factor 40, so one locust user is the load of 40 venues.
    stadium_rush       40,000 spectators through 80 gates in 45 minutes = one scan every
                       5.4 s per gate (14.8 scans/s in all); factor 15 (the 45 minutes
                       compressed to 3), so 80 gates send 222 scans/s. Each step measures a
                       window of that rush; fewer gates are shown for the curve.
    sync_under_load    the stadium rush at 80 gates while `qrverify sync --redis` pushes new
                       revocations; scanned tokens revoked by the push must be refused from
                       one second after the push ends. Redis store only.

Every scenario scans Moscow's venue mix (`bench.tokens.MOSCOW_MIX`): register links and EU
certificates, valid and not.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from bench.tokens import MOSCOW_MIX, Mix

__all__ = ["SCENARIOS", "Scenario", "STADIUM"]


@dataclass(frozen=True)
class Stadium:
    spectators: int = 40_000
    gates: int = 80
    minutes: float = 45.0
    factor: float = 15.0

    @property
    def real_rate(self) -> float:
        """Scans per second over the whole stadium at real speed."""
        return self.spectators / (self.minutes * 60.0)

    @property
    def gate_pacing(self) -> float:
        """Seconds between scans at one gate, compressed."""
        return self.gates / self.real_rate / self.factor


STADIUM = Stadium()
RESTAURANT_SCAN_EVERY = 20.0  # seconds between guests at one venue at the evening peak
RESTAURANT_FACTOR = 40.0


@dataclass(frozen=True)
class Scenario:
    name: str
    title: str
    users: tuple[int, ...]  # steps of the full run
    smoke_users: tuple[int, ...]
    pacing: float  # seconds between one user's scans (0 = closed loop)
    factor: float = 1.0  # time compression: one user = `factor` real scanners
    mix: Mix = field(default_factory=lambda: dict(MOSCOW_MIX))
    redis_only: bool = False
    sync_push: bool = False
    duration: float | None = None  # overrides the run's step duration

    def user_label(self) -> str:
        return {
            "restaurant_evening": "venues (x40 compressed)",
            "stadium_rush": "gates",
            "sync_under_load": "gates",
        }.get(self.name, "closed-loop users")


SCENARIOS: tuple[Scenario, ...] = (
    Scenario(
        "capacity",
        "Capacity: closed-loop scanners, no think time",
        users=(1, 8, 32),
        smoke_users=(4,),
        pacing=0.0,
    ),
    Scenario(
        "restaurant_evening",
        "Restaurant evening: one scan per venue every 20 s, x40 compressed, keep-alive",
        users=(50, 100, 200),
        smoke_users=(20,),
        pacing=RESTAURANT_SCAN_EVERY / RESTAURANT_FACTOR,
        factor=RESTAURANT_FACTOR,
    ),
    Scenario(
        "stadium_rush",
        "Stadium gate rush: 40,000 spectators, 80 gates, 45 min, x15 compressed",
        users=(20, 40, 80),
        smoke_users=(20,),
        pacing=STADIUM.gate_pacing,
        factor=STADIUM.factor,
    ),
    Scenario(
        "sync_under_load",
        "Sync under load: revocations pushed with `qrverify sync` during the rush",
        users=(80,),
        smoke_users=(20,),
        pacing=STADIUM.gate_pacing,
        factor=STADIUM.factor,
        mix={**MOSCOW_MIX, "revoke_later": 5.0},
        redis_only=True,
        sync_push=True,
    ),
)


def by_name(names: list[str] | None) -> tuple[Scenario, ...]:
    if not names:
        return SCENARIOS
    known = {s.name: s for s in SCENARIOS}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValueError(f"unknown scenario(s) {', '.join(unknown)}; known: {', '.join(known)}")
    return tuple(known[n] for n in names)
