"""Verifying register links: every reason, holder and certificate fields, the same answer
and the same time for a missing record and a wrong ck, and links beside HC1 tokens."""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path
from typing import Any

import pytest
from links.link_support import AT, CK, LINK, UNRZ, UUID, assert_same_timing, link
from vector_support import TRUST_FILE, load_vectors

from verifier import Verifier
from verifier.reasons import Reason

G = "https://www.gosuslugi.ru"


def test_valid_link_has_holder_document_and_certificate(check: Any) -> None:
    verdict = check(LINK)
    assert verdict.valid and verdict.reason is None
    assert verdict.to_dict() == {
        "status": "valid",
        "reason": None,
        "detail": "The certificate is valid for entry.",
        "holder": {
            "name": "И***** И*** И*******",
            "name_latin": "I***** I*** I*******",
            "dob": "1980-01-01",
            "document": "45** ***123",
        },
        "certificate": {
            "type": "vaccination",
            "issuer": "RU",
            "valid_until": "2022-07-01T20:59:59Z",
        },
    }


def test_other_forms_of_the_same_link(check: Any) -> None:
    for text in (
        f"http://gosuslugi.ru/covid-cert/verify/{UNRZ}?ck={CK}&lang=ru",
        f"HTTPS://GOSUSLUGI.RU/covid-cert/verify/{UNRZ}?ck={CK.upper()}",
        f"https://reg.example.ru:8443/gu/covid-cert/verify/{UNRZ}?ck={CK}",
        LINK.encode(),
    ):
        assert check(text).valid, text
    uuid = check(f"{G}/covid-cert/status/{UUID}?lang=ru")
    assert uuid.valid and uuid.certificate["type"] == "test"
    assert uuid.holder["document"] == "46** ***001"
    assert check(f"{G}/vaccine/cert/verify/{UUID}").valid
    # a record without ck answers its link without ck (and ignores a given one)
    assert check(link("9160000000000005")).valid
    assert check(link("9160000000000005", "ab" * 16)).valid
    assert check(f"{G}/vaccine/cert/verify/9160000000000005").certificate["type"] == "recovery"


def test_not_found_same_answer_for_missing_and_wrong_ck(check: Any) -> None:
    missing = check(link("9160000099999999", CK))
    wrong = check(link(UNRZ, "ff" + CK[2:]))
    assert missing.reason is Reason.NOT_FOUND and wrong.reason is Reason.NOT_FOUND
    assert missing.to_dict() == wrong.to_dict()
    assert missing.holder is None and wrong.holder is None
    assert check(f"{G}/covid-cert/status/{UUID[:-1]}7").reason is Reason.NOT_FOUND


def test_missing_ck(check: Any) -> None:
    # the record has a ck: bad_link; so does an unrz with no record (same answer)
    assert check(link(UNRZ)).reason is Reason.BAD_LINK
    assert check(f"{G}/vaccine/cert/verify/{UNRZ}").reason is Reason.BAD_LINK
    assert check(link("9160000099999999")).reason is Reason.BAD_LINK
    assert check(link(UNRZ)).to_dict() == check(link("9160000099999999")).to_dict()


def test_revoked(check: Any) -> None:
    verdict = check(link("9160000000000002", "00" * 16))
    assert verdict.reason is Reason.REVOKED and verdict.status == "invalid"
    assert verdict.holder["document"] == "45** ***123"


def test_validity_window_in_moscow_days(check: Any) -> None:
    future = link("9160000000000003", "11" * 16)  # 2022-02-01 .. 2022-03-01 (dates)
    assert check(future).reason is Reason.TOKEN_NOT_YET_VALID
    msk = dt.timezone(dt.timedelta(hours=3))
    first = int(dt.datetime(2022, 2, 1, 0, 0, tzinfo=msk).timestamp())
    last = int(dt.datetime(2022, 3, 1, 23, 59, 59, tzinfo=msk).timestamp())
    assert check(future, first - 1).reason is Reason.TOKEN_NOT_YET_VALID
    assert check(future, first).valid
    assert check(future, last).valid
    assert check(future, last + 1).reason is Reason.TOKEN_EXPIRED
    past = check(link("9160000000000004", "22" * 16))
    assert past.reason is Reason.TOKEN_EXPIRED
    assert past.certificate["valid_until"] == "2021-12-31T20:59:59Z"
    # date-times with an offset are taken as given
    temp = link("9160000000000006", "33" * 16)
    assert check(temp).valid and check(temp).certificate["type"] == "temporary"
    assert check(temp, AT + 6 * 3600).reason is Reason.TOKEN_EXPIRED


def test_no_records_loaded_is_not_found(tmp_path: Path) -> None:
    v = Verifier.from_files(TRUST_FILE)
    assert v.verify(LINK).reason is Reason.NOT_FOUND


def test_links_beside_hc1_everywhere(records_file: Path) -> None:
    valid = next(
        x
        for x in load_vectors()
        if x.reason is None
        and x.rules == "venue"
        and x.trust == TRUST_FILE
        and x.revocations is None
    )
    v = Verifier.from_files(TRUST_FILE, records=records_file)
    hc1 = v.verify(valid.token, valid.at)
    assert hc1.valid
    out = v.verify_many([LINK, valid.token, link(UNRZ, "00" * 16), "junk"], valid.at)
    assert [o.reason for o in out[:3]] == [None, None, Reason.NOT_FOUND]
    assert out[3].reason is Reason.BAD_PREFIX
    assert out[0].holder["document"] == "45** ***123"
    assert "document" not in (hc1.holder or {})


def test_repr_and_verdict_hold_no_identifiers(check: Any) -> None:
    for text in (LINK, link(UNRZ, "00" * 16), link("9160000099999999", CK)):
        r = repr(check(text))
        assert UNRZ not in r and CK not in r and "9160000099999999" not in r


@pytest.mark.slow
def test_not_found_timing_is_the_same(tmp_path: Path) -> None:
    """A missing record and a wrong ck must take the same time: their timing
    distributions must not be told apart (KS statistic), while a path that does more
    work (a valid record, which builds the holder) is told apart: the check can fail."""
    from links.link_support import record, write_jsonl

    n = 4000
    recs = [record(id=f"{9170000000000000 + i * 7}", ck=f"{i:032x}") for i in range(n)]
    v = Verifier.from_files(None, records=write_jsonl(tmp_path / "r.jsonl", recs))
    rng = random.Random(1)
    idx = rng.sample(range(n), 200)
    groups = {
        "wrong_ck": [link(f"{9170000000000000 + i * 7}", f"{i + 1:032x}") for i in idx],
        "missing": [link(f"{9170000000000000 + i * 7 + 3}", f"{i:032x}") for i in idx],
        "valid": [link(f"{9170000000000000 + i * 7}", f"{i:032x}") for i in idx],
    }
    assert_same_timing(v, groups)
