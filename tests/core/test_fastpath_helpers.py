"""The compiled helpers behind the hot path, checked against independent implementations."""

from __future__ import annotations

import hashlib
import random
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

import fastpath
from fastpath import _decode
from keys import base45


@pytest.fixture(params=["sha-ni", "portable"])
def sha_backend(request: pytest.FixtureRequest) -> Iterator[str]:
    before = _decode.sha256_backend()
    got = _decode.sha256_backend(request.param)
    if got != request.param:
        _decode.sha256_backend(before)
        pytest.skip(f"{request.param} not available on this CPU")
    yield got
    _decode.sha256_backend(before)


def test_sha256_16_matches_hashlib_at_every_block_boundary(sha_backend: str) -> None:
    rng = random.Random(7)
    for n in [*range(0, 200), 447, 448, 511, 512, 1000, 4096]:
        for _ in range(2):
            prefix = rng.randbytes(rng.randint(0, 70))
            data = rng.randbytes(n)
            assert fastpath.sha256_16(data, prefix) == hashlib.sha256(prefix + data).digest()[:16]


def test_revocation_hashes_use_the_selected_backend(sha_backend: str) -> None:
    from keys.issuer import Issuer
    from keys.samples import sample_dcc
    from keys.token import issue_token

    issuer = Issuer.generate(country="RU", alg="ES256")
    dcc = sample_dcc("test", at=1_700_000_000)
    d = fastpath.decode(issue_token(issuer, dcc, iat=1_700_000_000, exp=1_700_086_400))
    ci = dcc["t"][0]["ci"].encode()
    assert d.uci_hash == hashlib.sha256(ci).digest()[:16]
    assert d.cuci_hash == hashlib.sha256(b"RU" + ci).digest()[:16]
    assert d.sig_hash == hashlib.sha256(d.signature[:32]).digest()[:16]


@pytest.mark.parametrize("half", [32, 48, 66])
def test_ecdsa_der_matches_cryptography(half: int) -> None:
    rng = random.Random(half)
    for i in range(400):
        r = rng.randbytes(half)
        s = rng.randbytes(half)
        if i % 4 == 0:  # leading zero bytes must be stripped
            r = bytes(rng.randint(1, half - 1)) + r[: half - 1]
            r = r[:half]
        if i % 7 == 0:
            s = bytes(half)
        expected = encode_dss_signature(int.from_bytes(r, "big"), int.from_bytes(s, "big"))
        assert fastpath.ecdsa_der(r + s) == expected


@pytest.mark.parametrize("bad", [b"", b"\x01", bytes(63), bytes(134)])
def test_ecdsa_der_refuses_bad_lengths(bad: bytes) -> None:
    with pytest.raises(ValueError):
        fastpath.ecdsa_der(bad)


def test_iso_utc_matches_datetime() -> None:
    rng = random.Random(3)
    stamps = [0, 86399, 86400, 951782400, 951868800, 253402300799, -1, -86401]
    stamps += [rng.randint(-30610224000, 253402300799) for _ in range(5000)]  # years 1000+
    for ts in stamps:
        assert fastpath.iso_utc(ts) == datetime.fromtimestamp(ts, UTC).strftime(
            "%Y-%m-%dT%H:%M:%SZ"
        )
    with pytest.raises(ValueError):
        fastpath.iso_utc(253402300800)


@pytest.fixture(params=["libz", "python"])
def zlib_backend(request: pytest.FixtureRequest) -> Iterator[str]:
    before = fastpath.zlib_backend()
    got = fastpath.zlib_backend(request.param)
    if got != request.param:
        fastpath.zlib_backend(before)
        pytest.skip("libz could not be loaded")
    yield got
    fastpath.zlib_backend(before)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (zlib.compress(bytes(10_000_000), 9)[:5000], "too_large"),  # truncated bomb
        (zlib.compress(bytes(5_000_000), 9), "too_large"),
        (zlib.compress(b"\xa0" * (fastpath.MAX_INFLATED + 1)), "too_large"),
        (zlib.compress(b"\x40" * fastpath.MAX_INFLATED), "bad_cose"),  # exactly the cap
        (zlib.compress(bytes(range(100)))[:-3], "bad_compression"),  # truncated
        (zlib.compress(b"\x80") + b"xx", "bad_compression"),  # trailing bytes
        (zlib.compress(b"abc")[2:], "bad_compression"),  # raw deflate, no zlib header
        (b"", "bad_compression"),
    ],
)
def test_both_inflate_backends_agree(zlib_backend: str, raw: bytes, reason: str) -> None:
    with pytest.raises(fastpath.DecodeError) as info:
        fastpath.decode("HC1:" + base45.encode(raw))
    assert info.value.reason == reason


def test_decoded_carries_mp_and_both_countrycodeuci_hashes() -> None:
    from keys.issuer import Issuer
    from keys.samples import sample_dcc
    from keys.token import issue_token

    issuer = Issuer.generate(country="RU", alg="ES256")
    dcc = sample_dcc("vaccination", at=1_700_000_000)
    entry = dcc["v"][0]
    ci = entry["ci"].encode()
    entry["co"] = "RU"
    d = fastpath.decode(issue_token(issuer, dcc, iat=1_700_000_000, exp=1_700_086_400))
    assert d.mp == entry["mp"]
    assert d.cuci_hash == hashlib.sha256(b"RU" + ci).digest()[:16]
    assert d.cuci_co_hash is d.cuci_hash  # iss == co: one hash, nothing more to check
    entry["co"] = "DE"
    d = fastpath.decode(issue_token(issuer, dcc, iat=1_700_000_000, exp=1_700_086_400))
    assert d.cuci_hash == hashlib.sha256(b"RU" + ci).digest()[:16]  # iss + ci
    assert d.cuci_co_hash == hashlib.sha256(b"DE" + ci).digest()[:16]  # co + ci
    test_dcc = sample_dcc("test", at=1_700_000_000)
    d = fastpath.decode(issue_token(issuer, test_dcc, iat=1_700_000_000, exp=1_700_086_400))
    assert d.mp is None
