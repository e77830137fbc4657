"""Link forms and malformed variants (CONTRACT 1b): what is a register link, what is a
foreign site, what is a damaged link."""

from __future__ import annotations

from typing import Any

import pytest
from links.link_support import CK, UNRZ, UUID

from fastpath._links import FOREIGN_DETAIL, MAX_LINK, LinkChecker
from verifier.reasons import Reason
from verifier.verdict import Verdict

REASONS = {r.value: r for r in Reason}


@pytest.fixture(scope="module")
def checker() -> LinkChecker:
    return LinkChecker(
        ["https://reg.example.ru:8443/gu", "http://www.msk.example.org"],
        verdict=Verdict,
        reasons=REASONS,
    )


UNRZ_KEY = "00" * 8 + int(UNRZ).to_bytes(8, "big").hex()
UUID_KEY = UUID.replace("-", "")

OK = [
    (f"https://www.gosuslugi.ru/covid-cert/verify/{UNRZ}?lang=ru&ck={CK}", 1, UNRZ_KEY, CK),
    (f"https://gosuslugi.ru/covid-cert/verify/{UNRZ}?lang=ru&ck={CK}", 1, UNRZ_KEY, CK),
    (f"http://www.gosuslugi.ru/covid-cert/verify/{UNRZ}?lang=ru&ck={CK}", 1, UNRZ_KEY, CK),
    (f"http://gosuslugi.ru/covid-cert/verify/{UNRZ}?ck={CK}&lang=ru", 1, UNRZ_KEY, CK),
    (f"HTTPS://WWW.GOSUSLUGI.RU/covid-cert/verify/{UNRZ}?ck={CK.upper()}", 1, UNRZ_KEY, CK),
    (
        f"https://www.gosuslugi.ru/covid-cert/verify/{UNRZ}?utm_source=x&ck={CK}&lang=en",
        1,
        UNRZ_KEY,
        CK,
    ),
    (f"https://www.gosuslugi.ru/covid-cert/verify/{UNRZ}", 1, UNRZ_KEY, None),
    (f"https://www.gosuslugi.ru/covid-cert/verify/{UNRZ}?lang=ru&&", 1, UNRZ_KEY, None),
    (f"https://www.gosuslugi.ru/covid-cert/status/{UUID}?lang=ru", 2, UUID_KEY, None),
    (f"https://www.gosuslugi.ru/covid-cert/status/{UUID.upper()}", 2, UUID_KEY, None),
    (f"https://www.gosuslugi.ru/vaccine/cert/verify/{UUID}", 2, UUID_KEY, None),
    (f"https://gosuslugi.ru/vaccine/cert/verify/{UNRZ}", 1, UNRZ_KEY, None),
    (f"https://reg.example.ru:8443/gu/covid-cert/verify/{UNRZ}?ck={CK}", 1, UNRZ_KEY, CK),
    (f"https://www.reg.example.ru:8443/gu/covid-cert/status/{UUID}", 2, UUID_KEY, None),
    (f"https://msk.example.org/covid-cert/status/{UUID}", 2, UUID_KEY, None),
]


@pytest.mark.parametrize(("link", "kind", "key", "ck"), OK)
def test_recognised_forms(
    checker: LinkChecker, link: str, kind: int, key: str, ck: str | None
) -> None:
    assert checker.parse(link) == ("ok", kind, key, ck)
    assert checker.parse(link.encode()) == ("ok", kind, key, ck)


P = f"/covid-cert/verify/{UNRZ}?lang=ru&ck={CK}"
FOREIGN = [
    f"https://www.gosuslugi.ru.example.com{P}",
    f"https://gosuslugi.ru.example.com{P}",
    f"https://www.gosuslugi.ru@example.com{P}",
    f"https://user:pw@www.gosuslugi.ru{P}",
    f"https://example.com\\@www.gosuslugi.ru{P}",
    f"https://www.gosuslugi.ru\\@example.com{P}",
    f"https://www.gosuslugi.ru:443{P}",
    f"https://www.gosuslugi.ru:8080{P}",
    f"https://www.gosuslugi.ru.{P}",
    f"https://www.g\u043esuslugi.ru{P}",  # Cyrillic o
    f"https://www.gosuslug\u0456.ru{P}",  # Ukrainian i
    f"https://www.gosuslugi.\u0440\u0443{P}",  # Cyrillic ru
    f"https://www.xn--gsuslugi-4ig.ru{P}",  # punycode look-alike
    f"https://www.gosuslugi%2Eru{P}",
    f"https://%77ww.gosuslugi.ru{P}",
    f"https://www.gosuslugi.ru%2F.example.com{P}",
    f"https://wwww.gosuslugi.ru{P}",
    f"https://www.www.gosuslugi.ru{P}",
    f"https://gosuslugi.ru.evil{P}",
    f"https://evil.example/?u=https://www.gosuslugi.ru{P}",
    f"https://evil.example/redirect?https://www.gosuslugi.ru{P}",
    f"https://evil.example{P}",
    f"https:///covid-cert/verify/{UNRZ}",
    f"https://www.gosuslugi.ru {P}",
    f"https://reg.example.ru{P}",  # the configured origin names a port
    f"https://reg.example.ru:8444/gu{P}",
    f"https://msk.example.org:80/covid-cert/status/{UUID}",
    f"https://www.gosuslugi.ru\x00.evil{P}",
]


@pytest.mark.parametrize("link", FOREIGN)
def test_foreign_sites(checker: LinkChecker, link: str) -> None:
    assert checker.parse(link)[0] == "foreign"
    verdict = checker.verify(link, None, 0)
    assert verdict.reason is Reason.BAD_LINK
    assert verdict.detail == FOREIGN_DETAIL
    assert "foreign site" in verdict.to_dict()["detail"]


G = "https://www.gosuslugi.ru"
BAD = [
    f"{G}/covid-cert/verify/{UNRZ[:-1]}?ck={CK}",
    f"{G}/covid-cert/verify/{UNRZ}0?ck={CK}",
    f"{G}/covid-cert/verify/{UNRZ[:-1]}x?ck={CK}",
    f"{G}/covid-cert/verify/{UUID}?ck={CK}",  # status form only for UUIDs
    f"{G}/covid-cert/status/{UNRZ}",
    f"{G}/covid-cert/status/{UUID[:-1]}",
    f"{G}/covid-cert/status/{UUID.replace('-', '')}",
    f"{G}/covid-cert/status/{UUID[:8]}_{UUID[9:]}",
    f"{G}/covid-cert/status/00000000-0000-0000-1111-222222222222",  # unrz key space
    f"{G}/covid-cert/verify/{UNRZ}/?ck={CK}",
    f"{G}/covid-cert/verify/{UNRZ}#ck={CK}",
    f"{G}/covid-cert/verify/{UNRZ}?ck={CK}#x",
    f"{G}/covid-cert/verify/{UNRZ}?ck={CK[:-1]}",
    f"{G}/covid-cert/verify/{UNRZ}?ck={CK}0",
    f"{G}/covid-cert/verify/{UNRZ}?ck={CK[:-1]}g",
    f"{G}/covid-cert/verify/{UNRZ}?ck={CK}&ck={CK}",
    f"{G}/covid-cert/verify/{UNRZ}?ck=",
    f"{G}/covid-cert/verify/{UNRZ}?lang=ru&next=https://evil.example",
    f"{G}/covid-cert/verify/{UNRZ}?lang=ru&next=%2F%2Fevil",
    f"{G}/covid-cert/verify/{UNRZ}?lang=r u",
    f"{G}/covid-cert/verify/{UNRZ}?=ru",
    f"{G}/covid-cert/verify/{UNRZ}?lang=ru=ru",
    f"{G}/covid-cert/verify/{UNRZ}?" + "&".join(f"p{i}=1" for i in range(17)),
    f"{G}/covid-cert/verify/{UNRZ}?p={'x' * 65}",
    f"{G}/covid-cert/verify/%39160000012345678?ck={CK}",
    f"{G}/covid-cert/verify//{UNRZ}?ck={CK}",
    f"{G}/Covid-Cert/verify/{UNRZ}?ck={CK}",
    f"{G}/covid-cert/verify/{UNRZ}\u0661?ck={CK}",
    f"{G}/covid-cert/verify/\u0669160000012345678?ck={CK}",
    f"{G}/vaccine/cert/verify/{UNRZ}1",
    f"{G}/vaccine/cert/verify/",
    f"{G}/covid-cert/verify/",
    f"{G}/",
    f"{G}",
    f"{G}/redirect?url=https://www.gosuslugi.ru/covid-cert/verify/{UNRZ}",
    f"{G}/../covid-cert/verify/{UNRZ}?ck={CK}",
    f"{G}/covid-cert/verify/{UNRZ}?ck={CK}\\",
    f"https://reg.example.ru:8443/covid-cert/verify/{UNRZ}?ck={CK}",  # prefix missing
]


@pytest.mark.parametrize("link", BAD)
def test_malformed_on_a_register_origin(checker: LinkChecker, link: str) -> None:
    assert checker.parse(link)[0] == "bad"
    verdict = checker.verify(link, None, 0)
    assert verdict.reason is Reason.BAD_LINK
    assert "foreign" not in verdict.detail


def test_length_cap(checker: LinkChecker) -> None:
    link = f"{G}/covid-cert/verify/{UNRZ}?ck={CK}&p=" + "x" * MAX_LINK
    assert checker.verify(link, None, 0).reason is Reason.TOO_LARGE
    assert checker.verify("https://" + "a" * 300, None, 0).reason is Reason.BAD_LINK


def test_lone_surrogate_is_bad_link(checker: LinkChecker) -> None:
    assert checker.verify(f"{G}/covid-cert/verify/\ud800", None, 0).reason is Reason.BAD_LINK


@pytest.mark.parametrize(
    "origin",
    [
        "ftp://x.ru",
        "https://",
        "https://a b.ru",
        "https://x.ru:",
        "https://x.ru:8a",
        "https://x..ru",
        "https://x.ru/a b",
        "https://ex\u0430mple.ru",
        "https://a@b.ru",
    ],
)
def test_bad_configured_origins(origin: str) -> None:
    with pytest.raises(ValueError, match="origin"):
        LinkChecker([origin], verdict=Verdict, reasons=REASONS)


def test_verifier_rejects_bad_origin_as_config_error() -> None:
    from keys.registry import TrustRegistry
    from verifier.core import ConfigError, Verifier
    from verifier.store import MemoryStore

    with pytest.raises(ConfigError, match="origin"):
        Verifier(MemoryStore(TrustRegistry.empty()), link_origins=["gosuslugi"])


def test_dispatch_only_http_prefixes(check: Any) -> None:
    # Not a link: the HC1 decoder answers (bad_prefix / base45), never bad_link.
    for text in (
        "ftp://www.gosuslugi.ru/",
        "www.gosuslugi.ru/covid-cert/verify/1",
        "HTTP:/x",
        "httpx://www.gosuslugi.ru/",
    ):
        assert check(text).reason not in (Reason.BAD_LINK, Reason.NOT_FOUND)
