"""Input hygiene done once in the engine before dispatch (CONTRACT section 1)."""

from __future__ import annotations

from array import array
from typing import Any
from urllib.parse import quote

import pytest
from engine_support import AT, ES, key_of, token, verifier_for

from verifier import Reason, Verifier

TOKEN = token()


@pytest.fixture
def verifier() -> Verifier:
    return verifier_for([key_of(ES)])


def test_the_plain_token_is_valid(verifier: Verifier) -> None:
    assert verifier.verify(TOKEN, at=AT).valid


@pytest.mark.parametrize(
    "dressed",
    [
        " " + TOKEN,
        TOKEN + " ",
        "\t" + TOKEN + "\r\n",
        "\n\n" + TOKEN + "\n",
        "\ufeff" + TOKEN,
        "\ufeff" + TOKEN + "\n",
        " \ufeff " + TOKEN,
        "hc1:" + TOKEN[4:],
        "Hc1:" + TOKEN[4:],
        " hC1:" + TOKEN[4:] + "\r\n",
        quote(TOKEN, safe=""),
        quote(TOKEN, safe="").lower()[:6] + quote(TOKEN, safe="")[6:],
        " " + quote(TOKEN, safe="") + "\n",
    ],
)
def test_dressed_tokens_verify_like_the_plain_one(verifier: Verifier, dressed: str) -> None:
    plain = verifier.verify(TOKEN, at=AT)
    assert verifier.verify(dressed, at=AT) == plain
    raw = dressed.encode("utf-8")
    for form in (raw, bytearray(raw), memoryview(raw)):
        assert verifier.verify(form, at=AT).to_dict() == plain.to_dict()


def test_bom_bytes_and_cache_sharing(verifier: Verifier) -> None:
    assert verifier.verify(b"\xef\xbb\xbf" + TOKEN.encode() + b"\r\n", at=AT).valid
    hits = verifier.cache_hits
    for dressed in (" " + TOKEN, "hc1:" + TOKEN[4:], quote(TOKEN, safe="")):
        assert verifier.verify(dressed, at=AT).valid
    assert verifier.verify(TOKEN, at=AT).valid
    assert verifier.cache_hits >= hits + 3  # the cleaned text is the cache key
    assert verifier.status()["cache"]["entries"] <= 2  # one str key, one bytes key


def test_inner_whitespace_is_not_removed(verifier: Verifier) -> None:
    broken = TOKEN[:40] + "\n" + TOKEN[40:]
    assert verifier.verify(broken, at=AT).reason is Reason.BAD_BASE45


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", Reason.BAD_PREFIX),
        ("   \r\n", Reason.BAD_PREFIX),
        ("\ufeff", Reason.BAD_PREFIX),
        ("HC2:" + TOKEN[4:], Reason.BAD_PREFIX),
        ("HC1%3", Reason.BAD_PREFIX),
        ("HC1%3A\u00e9" + TOKEN[4:], Reason.BAD_BASE45),
        ("HC1%3A%C3%28", Reason.BAD_BASE45),
        ("HC1%3A", Reason.BAD_COMPRESSION),
        ("hc1:", Reason.BAD_COMPRESSION),
    ],
)
def test_malformed_inputs(verifier: Verifier, text: str, reason: Reason) -> None:
    verdict = verifier.verify(text, at=AT)
    assert verdict.reason is reason and verdict.holder is None
    assert verifier.verify(text.encode("utf-8", "surrogatepass"), at=AT).reason is reason


def test_size_is_capped_before_any_work(verifier: Verifier) -> None:
    assert verifier.verify(" " * 20000 + TOKEN, at=AT).reason is Reason.TOO_LARGE
    assert verifier.verify("x" * 100_000, at=AT).reason is Reason.TOO_LARGE
    assert verifier.verify(b"HC1:" + b"0" * 50_000, at=AT).reason is Reason.TOO_LARGE
    assert verifier.verify(memoryview(b" " * 16385), at=AT).reason is Reason.TOO_LARGE
    # within the input cap, surrounding whitespace does not count against the token cap
    assert verifier.verify(" " * 4000 + TOKEN + "\n" * 4000, at=AT).valid


@pytest.mark.parametrize(
    "junk",
    [
        None,
        7,
        1.5,
        [TOKEN],
        {"token": TOKEN},
        object(),
        memoryview(array("I", [1, 2, 3])),
        "\ud800",
        "HC1:\ud800",
        "\ud800" + TOKEN,
    ],
)
def test_junk_gives_a_verdict(verifier: Verifier, junk: Any) -> None:
    verdict = verifier.verify(junk, at=AT)
    assert verdict.status == "invalid" and verdict.holder is None


@pytest.mark.parametrize(
    "link",
    [
        "https://www.gosuslugi.ru/covid-cert/verify/9160000012345678?lang=ru&ck=" + "a" * 32,
        "HTTPS://WWW.GOSUSLUGI.RU/covid-cert/status/0d3c2b1a-0000-4000-8000-000000000000",
        " http://gosuslugi.ru/vaccine/cert/verify/9160000012345678\n",
        b"https://www.gosuslugi.ru/covid-cert/verify/9160000012345678",
    ],
)
def test_links_take_the_link_path(verifier: Verifier, link: str | bytes) -> None:
    """http(s):// texts never reach the HC1 decoder (which would say bad_prefix for its
    own reasons); until register records are loaded no link is valid."""
    verdict = verifier.verify(link, at=AT)
    assert verdict.reason in (Reason.BAD_PREFIX, Reason.BAD_LINK, Reason.NOT_FOUND)
    assert verdict.holder is None
    assert verifier.status()["cache"]["entries"] == 0
