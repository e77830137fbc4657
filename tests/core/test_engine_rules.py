"""The accepted_vaccines rules knob (CONTRACT section 3, issue 9)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from engine_support import AT, DAY, ES, NOW, key_of, token, verifier_for

from keys.samples import sample_dcc
from verifier import ConfigError, Reason
from verifier.rules import MOSCOW_VACCINES, NONE, VENUE, RulesError, from_dict


def _vaccination(mp: str, dn: int = 2, dt_days_ago: int = 30) -> str:
    dcc = sample_dcc("vaccination", at=NOW - (dt_days_ago - 30) * DAY)
    dcc["v"][0].update(mp=mp, dn=dn, sd=2)
    return token(dcc=dcc)


def test_profiles() -> None:
    assert (
        VENUE.accepted_vaccines
        == MOSCOW_VACCINES
        == frozenset({"Sputnik-V", "Sputnik-Light", "CoviVac", "EpiVacCorona", "EpiVacCorona-N"})
    )
    assert NONE.accepted_vaccines is None


@pytest.mark.parametrize("mp", sorted(MOSCOW_VACCINES))
def test_venue_accepts_the_moscow_vaccines(mp: str) -> None:
    assert verifier_for([key_of(ES)]).verify(_vaccination(mp), at=AT).valid


@pytest.mark.parametrize("mp", ["EU/1/20/1528", "EU/1/20/1507", "EU/1/21/1529", "EU/1/20/1525"])
def test_venue_refuses_other_products(mp: str) -> None:
    verdict = verifier_for([key_of(ES)]).verify(_vaccination(mp), at=AT)
    assert verdict.reason is Reason.VACCINE_NOT_ACCEPTED
    assert verdict.holder is not None  # signature verified: the holder is shown
    assert verifier_for([key_of(ES)], "none").verify(_vaccination(mp), at=AT).valid


def test_vaccine_checked_before_course_and_dates() -> None:
    v = verifier_for([key_of(ES)])
    assert v.verify(_vaccination("EU/1/20/1528", dn=1), at=AT).reason is Reason.VACCINE_NOT_ACCEPTED
    old = _vaccination("EU/1/20/1528", dt_days_ago=400)
    assert v.verify(old, at=AT).reason is Reason.VACCINE_NOT_ACCEPTED
    assert (
        v.verify(_vaccination("Sputnik-V", dt_days_ago=400), at=AT).reason
        is Reason.VACCINATION_EXPIRED
    )
    # tests and recoveries carry no product
    assert v.verify(token("test"), at=AT).valid and v.verify(token("recovery"), at=AT).valid


def test_rules_file_knob(tmp_path: Path) -> None:
    path = tmp_path / "rules.json"
    path.write_text(json.dumps({"accepted_vaccines": ["EU/1/20/1528"]}))
    v = verifier_for([key_of(ES)], str(path))
    assert v.rules.accepted_vaccines == frozenset({"EU/1/20/1528"})
    assert v.verify(_vaccination("EU/1/20/1528"), at=AT).valid
    assert v.verify(_vaccination("Sputnik-V"), at=AT).reason is Reason.VACCINE_NOT_ACCEPTED
    path.write_text(json.dumps({"accepted_vaccines": None}))
    anything = verifier_for([key_of(ES)], str(path))
    assert anything.verify(_vaccination("EU/1/20/1528"), at=AT).valid
    path.write_text(json.dumps({"vaccination_days": 270}))  # knob left out: venue's list
    assert verifier_for([key_of(ES)], str(path)).rules.accepted_vaccines == MOSCOW_VACCINES
    path.write_text(json.dumps({"accepted_vaccines": []}))  # nobody vaccinated may enter
    assert (
        verifier_for([key_of(ES)], str(path)).verify(_vaccination("Sputnik-V"), at=AT).reason
        is Reason.VACCINE_NOT_ACCEPTED
    )


@pytest.mark.parametrize("bad", ["Sputnik-V", [1], [None], {"mp": "x"}, True])
def test_rules_file_knob_is_validated(bad: object, tmp_path: Path) -> None:
    with pytest.raises(RulesError, match="accepted_vaccines"):
        from_dict({"accepted_vaccines": bad})
    path = tmp_path / "rules.json"
    path.write_text(json.dumps({"accepted_vaccines": bad}))
    with pytest.raises(ConfigError):
        verifier_for([key_of(ES)], str(path))
