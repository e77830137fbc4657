"""The ES256 table path (fastpath/ec256.h) against the EVP path and cryptography.

ES256 keys verify through a per-key precomputed P-256 table (u1*G + u2*Q as two
fixed-base multiplications); libcrypto's EVP verify stays as the fallback and cryptography
as the reference. All three must agree on every signature: valid ones, bit flips, r and s
at and around the edges of [1, n), a different key, and digests chosen so that u1 = 0 or
the sum lands at infinity.
"""

from __future__ import annotations

import gc

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    Prehashed,
    decode_dss_signature,
    encode_dss_signature,
)
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from examples import examples
from hypothesis import given, settings
from hypothesis import strategies as st

from fastpath import _ossl
from keys.registry import IssuerKey

pytestmark = pytest.mark.skipif(
    not (_ossl.available() and _ossl.ec_available()), reason="no libcrypto 3 EC entry points"
)

P256_N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
P256_P = 0xFFFFFFFF00000001000000000000000000000000FFFFFFFFFFFFFFFFFFFFFFFF
TOP = (1 << 256) - 1
EDGES = (0, 1, P256_N - 1, P256_N, P256_N + 1, TOP)
SETTINGS = settings(max_examples=examples(40), deadline=None)
scalars = st.integers(min_value=1, max_value=P256_N - 1)


def _spki(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)


def _rs(r: int, s: int) -> bytes:
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


class Three:
    """One public key through the table path, the EVP path and cryptography."""

    def __init__(self, key: ec.EllipticCurvePrivateKey) -> None:
        spki = _spki(key)
        self.pub = key.public_key()
        self.fast = _ossl.NativeKey(spki, -7)
        self.evp = _ossl.NativeKey(spki, -7, False)
        self.ref = IssuerKey(self.pub, b"k")

    def verify(self, sig: bytes, data: bytes) -> tuple[bool, bool, bool]:
        return (
            self.fast.verify(-7, sig, data),
            self.evp.verify(-7, sig, data),
            self.ref.verify(-7, sig, data),
        )

    def verify_digest(self, digest: bytes, sig: bytes) -> tuple[bool, bool, bool]:
        r, s = int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big")
        try:
            self.pub.verify(
                encode_dss_signature(r, s), digest, ec.ECDSA(Prehashed(hashes.SHA256()))
            )
            ref = True
        except InvalidSignature:
            ref = False
        return (self.fast.verify_digest(digest, sig), self.evp.verify_digest(digest, sig), ref)


def _sign(key: ec.EllipticCurvePrivateKey, data: bytes) -> bytes:
    r, s = decode_dss_signature(key.sign(data, ec.ECDSA(hashes.SHA256())))
    return _rs(r, s)


def _x_of(k: int) -> int:
    """The affine x of k*G."""
    return ec.derive_private_key(k, ec.SECP256R1()).public_key().public_numbers().x


@pytest.fixture(autouse=True)
def in_the_caller():
    """Tables are built by the verifying call (the library's default) unless a test says
    otherwise; a server in this process may have switched to background builds."""
    previous = _ossl.set_background_tables(False)
    yield
    _ossl.set_background_tables(previous)


def test_table_is_built_on_first_use_and_counted() -> None:
    key = ec.derive_private_key(0x1234567, ec.SECP256R1())
    before = _ossl.ec_tables()
    k = _ossl.NativeKey(_spki(key), -7)
    assert k.table == 0
    assert _ossl.ec_tables() == before
    assert k.verify(-7, _sign(key, b"m"), b"m") is True
    assert k.table == 1
    assert _ossl.ec_tables() == before + 1
    assert _ossl.NativeKey(_spki(key), -7, False).table == -1
    del k
    gc.collect()
    assert _ossl.ec_tables() == before


@pytest.mark.parametrize("in_background", [False, True])
def test_keys_beyond_the_cap_use_evp_and_still_verify(in_background: bool) -> None:
    _ossl.set_background_tables(in_background)
    key = ec.derive_private_key(0x7654321 + in_background, ec.SECP256R1())
    previous = _ossl.set_ec_max_tables(_ossl.ec_tables())
    try:
        k = _ossl.NativeKey(_spki(key), -7)
        sig = _sign(key, b"m")
        assert k.verify(-7, sig, b"m") is True
        assert k.verify(-7, sig, b"n") is False
        assert k.table == 0  # not built: the cap was reached
    finally:
        _ossl.set_ec_max_tables(previous)
    assert k.verify(-7, sig, b"m") is True
    assert _ossl.wait_tables()
    assert k.table == 1  # built once there was room
    assert _ossl.EC_MAX_TABLES == previous == 256


def test_the_self_test_covers_the_table_path() -> None:
    assert _ossl.self_test() is None
    cases = _ossl._cases()
    es = [c for c in cases if c[0] == -7]
    assert sum(1 for c in es if c[4]) == 2  # the signature and its high-S twin
    assert len(es) >= 18  # six bad forms, the other key, five edges each for r and s
    assert len({c[1] for c in es}) == 2  # the vector's key and the other key
    edges = {
        (int.from_bytes(c[2][:32], "big"), int.from_bytes(c[2][32:], "big"))
        for c in es
        if len(c[2]) == 64
    }
    assert {r for r, _ in edges} >= {0, P256_N, P256_N + 1, P256_N - 1, TOP}
    assert {s for _, s in edges} >= {0, P256_N, P256_N + 1, P256_N - 1, TOP}
    digests = _ossl._digest_cases()
    assert [c[3] for c in digests] == [True, True, False, False]
    assert digests[0][1] == bytes(32)
    assert digests[1][1] == P256_N.to_bytes(32, "big")


@SETTINGS
@given(
    d=scalars,
    data=st.binary(max_size=300),
    flips=st.lists(st.integers(0, 511), min_size=1, max_size=3),
)
def test_valid_and_flipped_signatures_agree(d: int, data: bytes, flips: list[int]) -> None:
    key = ec.derive_private_key(d, ec.SECP256R1())
    three = Three(key)
    sig = _sign(key, data)
    assert three.verify(sig, data) == (True, True, True)
    r, s = int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big")
    assert three.verify(_rs(r, P256_N - s), data) == (True, True, True)  # high S
    bad = bytearray(sig)
    for bit in flips:
        bad[bit // 8] ^= 1 << (bit % 8)
    got = three.verify(bytes(bad), data)
    assert got[0] == got[1] == got[2]
    if bytes(bad) != sig and bytes(bad) != _rs(r, P256_N - s):
        assert got == (False, False, False)
    assert three.verify(sig, data + b"x") == (False, False, False)


@SETTINGS
@given(d=scalars, other=scalars, data=st.binary(max_size=100))
def test_signature_under_another_key_fails_everywhere(d: int, other: int, data: bytes) -> None:
    if d == other:
        return
    sig = _sign(ec.derive_private_key(other, ec.SECP256R1()), data)
    assert Three(ec.derive_private_key(d, ec.SECP256R1())).verify(sig, data) == (
        False,
        False,
        False,
    )


@SETTINGS
@given(
    d=scalars,
    data=st.binary(max_size=100),
    edge=st.sampled_from(EDGES),
    which=st.sampled_from("rs"),
)
def test_r_and_s_edge_values_fail_everywhere(d: int, data: bytes, edge: int, which: str) -> None:
    key = ec.derive_private_key(d, ec.SECP256R1())
    sig = _sign(key, data)
    r, s = int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big")
    bad = _rs(edge, s) if which == "r" else _rs(r, edge)
    got = Three(key).verify(bad, data)
    # 1 and n - 1 are in range: a random chance of being valid is nil, so all refuse
    assert got == (False, False, False)
    if r + P256_N <= TOP:
        assert Three(key).verify(_rs(r + P256_N, s), data) == (False, False, False)


@SETTINGS
@given(d=scalars, k=scalars)
def test_u1_zero_digests_agree(d: int, k: int) -> None:
    """e = 0 and e = n make u1 = 0: X = u2*Q alone must give x == r."""
    key = ec.derive_private_key(d, ec.SECP256R1())
    r = _x_of(k) % P256_N
    s = pow(k, -1, P256_N) * r * d % P256_N
    if r == 0 or s == 0:
        return
    three = Three(key)
    sig = _rs(r, s)
    assert three.verify_digest(bytes(32), sig) == (True, True, True)
    assert three.verify_digest(P256_N.to_bytes(32, "big"), sig) == (True, True, True)
    assert three.verify_digest((1).to_bytes(32, "big"), sig) == (False, False, False)
    assert three.verify_digest(bytes(32), _rs(r, P256_N - s)) == (True, True, True)


@SETTINGS
@given(d=scalars, r=scalars, s=scalars)
def test_sum_at_infinity_is_refused(d: int, r: int, s: int) -> None:
    """e = -r*d: u1*G = -u2*Q, so X is the point at infinity, never valid."""
    e = -r * d % P256_N
    if e == 0:
        return
    three = Three(ec.derive_private_key(d, ec.SECP256R1()))
    assert three.verify_digest(e.to_bytes(32, "big"), _rs(r, s)) == (False, False, False)


@SETTINGS
@given(d=scalars, digest=st.binary(min_size=32, max_size=32), k=scalars)
def test_random_digests_agree(d: int, digest: bytes, k: int) -> None:
    """A signature made by hand over an arbitrary digest (e may be >= n) is valid on all
    three; with s changed by one it is refused on all three."""
    e = int.from_bytes(digest, "big")
    r = _x_of(k) % P256_N
    s = pow(k, -1, P256_N) * (e + r * d) % P256_N
    if r == 0 or s == 0:
        return
    three = Three(ec.derive_private_key(d, ec.SECP256R1()))
    assert three.verify_digest(digest, _rs(r, s)) == (True, True, True)
    assert three.verify_digest(digest, _rs(r, s % (P256_N - 1) + 1)) == (False, False, False)


def test_public_key_equal_to_the_generator() -> None:
    """Q = G (private scalar 1): the second table is G's own."""
    key = ec.derive_private_key(1, ec.SECP256R1())
    three = Three(key)
    sig = _sign(key, b"one")
    assert three.verify(sig, b"one") == (True, True, True)
    assert three.verify(sig, b"two") == (False, False, False)
    # u1*G + u2*Q with Q = G: P1 = -P2 when e = -r (mod n)
    r, s = 5, 7
    assert three.verify_digest((P256_N - r).to_bytes(32, "big"), _rs(r, s)) == (False, False, False)


def test_wrong_lengths_and_algorithms_are_refused() -> None:
    key = ec.derive_private_key(99, ec.SECP256R1())
    k = _ossl.NativeKey(_spki(key), -7)
    sig = _sign(key, b"m")
    assert k.verify(-7, sig, b"m") is True
    assert k.verify(-7, sig[:-1], b"m") is False
    assert k.verify(-7, sig + b"\x00", b"m") is False
    assert k.verify(-8, sig, b"m") is False
    assert k.verify_digest(bytes(31), sig) is False
    assert k.verify_digest(bytes(32), sig[:63]) is False


def test_native_keys_are_shared_across_trust_generations(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two IssuerKey objects of one public key (a reloaded trust file) share one NativeKey,
    so its table is built once per process; the cache drops its least recently used."""
    from keys.registry import IssuerKey

    keys = [ec.derive_private_key(0x1000 + i, ec.SECP256R1()) for i in range(3)]
    first = _ossl.native_key(IssuerKey(keys[0].public_key(), b"kid0"))
    again = _ossl.native_key(IssuerKey(keys[0].public_key(), b"other-kid"))
    assert first is not None and again is first
    assert first.verify(-7, _sign(keys[0], b"m"), b"m") is True
    assert again.table == 1  # built once, seen through the second trust generation
    monkeypatch.setattr(_ossl, "NATIVE_CACHE_MAX", 2)
    second = _ossl.native_key(IssuerKey(keys[1].public_key(), b"kid1"))
    assert _ossl.native_key(IssuerKey(keys[0].public_key(), b"kid0")) is first  # used last
    _ossl.native_key(IssuerKey(keys[2].public_key(), b"kid2"))  # evicts keys[1]
    assert _ossl.native_key(IssuerKey(keys[0].public_key(), b"kid0")) is first
    assert _ossl.native_key(IssuerKey(keys[1].public_key(), b"kid1")) is not second


@pytest.fixture
def background():
    """Tables built on the background thread (as `qrverify serve` does), for one test."""
    previous = _ossl.set_background_tables(True)
    yield
    _ossl.set_background_tables(previous)
    assert _ossl.wait_tables()


def test_background_build_uses_evp_meanwhile_then_the_table(background) -> None:
    keys = [ec.derive_private_key(0x2468ACE + i, ec.SECP256R1()) for i in range(4)]
    before = _ossl.ec_tables()
    natives = [_ossl.NativeKey(_spki(key), -7) for key in keys]
    for key, k in zip(keys, natives, strict=True):
        sig = _sign(key, b"m")
        assert k.verify(-7, sig, b"m") is True  # EVP (state 2) or already the table (1)
        assert k.verify(-7, sig, b"n") is False
        assert k.verify(-7, sig[:-1] + bytes([sig[-1] ^ 1]), b"m") is False
    states = [k.table for k in natives]
    # each build takes tens of ms on the other thread: these calls did not wait for them
    assert set(states) <= {1, 2} and 2 in states
    assert _ossl.wait_tables()
    assert [k.table for k in natives] == [1, 1, 1, 1]
    assert _ossl.ec_tables() == before + 4
    for key, k in zip(keys, natives, strict=True):
        sig = _sign(key, b"again")
        assert k.verify(-7, sig, b"again") is True
        assert k.verify(-7, sig, b"other") is False
    del natives, k
    gc.collect()
    assert _ossl.ec_tables() == before


def test_a_forked_child_builds_what_its_parent_had_queued(background) -> None:
    import os

    key = ec.derive_private_key(0xFEDCBA9, ec.SECP256R1())
    k = _ossl.NativeKey(_spki(key), -7)
    sig = _sign(key, b"m")
    assert k.verify(-7, sig, b"m") is True
    pid = os.fork()  # the builder thread stays behind in the parent
    if pid == 0:
        code = 1
        try:
            state = k.table  # 2 in the parent meant queued there: back to 0 here
            ok = k.verify(-7, sig, b"m") and not k.verify(-7, sig, b"n")
            code = 0 if state in (0, 1) and ok and _ossl.wait_tables() and k.table == 1 else 3
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert _ossl.wait_tables() and k.table == 1


def test_self_test_builds_its_tables_itself_even_in_background_mode(background) -> None:
    assert _ossl.self_test() is None
