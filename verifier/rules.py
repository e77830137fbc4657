"""Acceptance rules: who may enter once a token is technically valid.

`venue` is the Moscow venue-entry policy of November 2021 (the five vaccines it names,
full course, 365 days; recovery 180 days; PCR tests for 72 hours); `none` performs
technical checks only; a JSON file sets the same knobs as numbers and lists
(`accepted_vaccines`: a list of `mp` codes, or null for any product). This module holds
and loads the knobs; the compiled engine (fastpath/_engine.pyx, `Engine._rules`) applies
them. Times are epoch seconds; a date means 00:00:00Z of that day. Windows are inclusive
at both ends, and no clock-skew leeway applies to them: "365 days" ends exactly
365 * 86400 seconds after `dt`.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any

from keys._files import read_capped
from verifier.errors import QrverifyError

PCR = "LP6464-4"  # LOINC: nucleic acid amplification test
#: The vaccines the Moscow rules of November 2021 name (EU value set `mp` codes).
MOSCOW_VACCINES = frozenset(
    {"Sputnik-V", "Sputnik-Light", "CoviVac", "EpiVacCorona", "EpiVacCorona-N"}
)
TYPES = ("vaccination", "test", "recovery")
_MAX_RULES_FILE = 64 * 1024


class RulesError(QrverifyError, ValueError):
    """A rules profile that cannot be used."""


@dataclass(frozen=True)
class Rules:
    """The knobs of an acceptance profile. `technical_only` skips them all."""

    name: str = "venue"
    technical_only: bool = False
    vaccination_days: int = 365
    require_full_course: bool = True
    recovery_days: int = 180
    test_hours: int = 72
    accepted_test_types: frozenset[str] = field(default_factory=lambda: frozenset({PCR}))
    #: `mp` codes of the vaccines admitted; None admits any product.
    accepted_vaccines: frozenset[str] | None = MOSCOW_VACCINES
    registry_types: frozenset[str] = field(default_factory=lambda: frozenset({"recovery", "test"}))


VENUE = Rules()
NONE = Rules(name="none", technical_only=True, registry_types=frozenset(), accepted_vaccines=None)
BUILTIN = {"venue": VENUE, "none": NONE}

_INT_KNOBS = {
    "vaccination_days": (1, 36500),
    "recovery_days": (1, 36500),
    "test_hours": (1, 24 * 365),
}
_KNOBS = set(_INT_KNOBS) | {
    "name",
    "technical_only",
    "require_full_course",
    "accepted_test_types",
    "accepted_vaccines",
    "registry_types",
}


def from_dict(obj: Any, default_name: str = "custom") -> Rules:
    """Rules from a JSON object; unknown keys and wrong types are errors."""
    if not isinstance(obj, dict):
        raise RulesError("rules file must hold a JSON object")
    unknown = set(obj) - _KNOBS
    if unknown:
        raise RulesError(f"unknown rules setting(s): {', '.join(sorted(unknown))}")
    kw: dict[str, Any] = {"name": default_name}
    for key, (lo, hi) in _INT_KNOBS.items():
        if key in obj:
            value = obj[key]
            if type(value) is not int or not lo <= value <= hi:
                raise RulesError(f"{key} must be a whole number from {lo} to {hi}")
            kw[key] = value
    for key in ("technical_only", "require_full_course"):
        if key in obj:
            if type(obj[key]) is not bool:
                raise RulesError(f"{key} must be true or false")
            kw[key] = obj[key]
    if "name" in obj:
        if not isinstance(obj["name"], str) or not 0 < len(obj["name"]) <= 64:
            raise RulesError("name must be a short string")
        kw["name"] = obj["name"]
    if "accepted_test_types" in obj:
        kw["accepted_test_types"] = _str_set(obj, "accepted_test_types", None)
    if "accepted_vaccines" in obj:  # null: any product
        vaccines = obj["accepted_vaccines"]
        kw["accepted_vaccines"] = (
            None if vaccines is None else _str_set(obj, "accepted_vaccines", None)
        )
    if "registry_types" in obj:
        kw["registry_types"] = _str_set(obj, "registry_types", TYPES)
    return Rules(**kw)


def _str_set(obj: dict[str, Any], key: str, allowed: tuple[str, ...] | None) -> frozenset[str]:
    value = obj[key]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise RulesError(f"{key} must be a list of strings")
    if allowed is not None and not set(value) <= set(allowed):
        raise RulesError(f"{key} may only contain {', '.join(allowed)}")
    return frozenset(value)


def load(spec: str | os.PathLike[str] | Rules) -> Rules:
    """`venue`, `none`, a Rules object, or the path of a JSON rules file."""
    if isinstance(spec, Rules):
        return spec
    if isinstance(spec, str) and spec in BUILTIN:
        return BUILTIN[spec]
    path = os.fspath(spec)
    raw = read_capped(path, _MAX_RULES_FILE, "rules file", RulesError)
    if len(raw) > _MAX_RULES_FILE:
        raise RulesError(f"rules file {path} is larger than {_MAX_RULES_FILE} bytes")
    try:
        obj = json.loads(raw)
    except RecursionError:
        raise RulesError(f"rules file {path} is nested too deeply") from None
    except ValueError as exc:
        raise RulesError(f"rules file {path} is not valid JSON: {exc}") from None
    return from_dict(obj, default_name=os.path.basename(path))
