"""The libcrypto signature backend (fastpath._ossl) against cryptography.

Both must give the same answer for every signature: a mismatch would accept a forged
certificate or turn away a real one. The verifier-level comparison over every vector and
the fuzz corpus lives in test_backends.py; here the keys are checked one by one.
"""

from __future__ import annotations

import random

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from fastpath import _ossl
from keys.registry import IssuerKey

pytestmark = pytest.mark.skipif(not _ossl.available(), reason="no system libcrypto 3")

P256_N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
PSS = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)


def _spki(public_key: object) -> bytes:
    return public_key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)  # type: ignore[attr-defined]


def _raw_ecdsa(der: bytes) -> bytes:
    r, s = decode_dss_signature(der)
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def _mutations(rng: random.Random, sig: bytes, data: bytes) -> list[tuple[bytes, bytes]]:
    """Bad forms of a good (signature, data) pair, each of which must fail."""
    out = []
    for _ in range(6):
        i = rng.randrange(len(sig))
        out.append((sig[:i] + bytes([sig[i] ^ (1 << rng.randrange(8))]) + sig[i + 1 :], data))
    j = rng.randrange(len(data))
    out.append((sig, data[:j] + bytes([data[j] ^ 0x40]) + data[j + 1 :]))
    out.append((sig[:-1], data))
    out.append((sig + b"\x00", data))
    out.append((b"", data))
    out.append((bytes(len(sig)), data))
    return out


def test_self_test_passes_on_this_machine() -> None:
    assert _ossl.self_test() is None
    assert _ossl.version().startswith("OpenSSL 3")


def test_es256_agrees_with_cryptography_on_good_bad_and_high_s() -> None:
    rng = random.Random(2021)
    for _ in range(20):
        key = ec.generate_private_key(ec.SECP256R1())
        ref = IssuerKey(key.public_key(), b"k")
        native = _ossl.NativeKey(_spki(key.public_key()), -7)
        data = rng.randbytes(rng.randint(0, 600))
        sig = _raw_ecdsa(key.sign(data, ec.ECDSA(hashes.SHA256())))
        assert native.verify(-7, sig, data) is True
        assert ref.verify(-7, sig, data) is True
        s = int.from_bytes(sig[32:], "big")
        twin = sig[:32] + (P256_N - s).to_bytes(32, "big")  # the other S: valid for both
        assert native.verify(-7, twin, data) is True
        assert ref.verify(-7, twin, data) is True
        for bad_sig, bad_data in _mutations(rng, sig, data):
            assert native.verify(-7, bad_sig, bad_data) is False
            assert ref.verify(-7, bad_sig, bad_data) is False
        assert native.verify(-37, sig, data) is False  # wrong algorithm for the key


def test_ps256_and_eddsa_agree_with_cryptography() -> None:
    rng = random.Random(7)
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ed_key = ed25519.Ed25519PrivateKey.generate()
    cases = [
        (-37, rsa_key.public_key(), lambda d: rsa_key.sign(d, PSS, hashes.SHA256())),
        (-8, ed_key.public_key(), ed_key.sign),
    ]
    for alg, pub, sign in cases:
        ref = IssuerKey(pub, b"k")
        native = _ossl.NativeKey(_spki(pub), alg)
        for _ in range(5):
            data = rng.randbytes(rng.randint(1, 400))
            sig = sign(data)
            assert native.verify(alg, sig, data) is True
            assert ref.verify(alg, sig, data) is True
            for bad_sig, bad_data in _mutations(rng, sig, data):
                assert native.verify(alg, bad_sig, bad_data) is False
                assert ref.verify(alg, bad_sig, bad_data) is False


def test_pss_with_another_salt_length_is_refused_by_both() -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    data = b"sig structure"
    sig = key.sign(
        data, padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=20), hashes.SHA256()
    )
    assert _ossl.NativeKey(_spki(key.public_key()), -37).verify(-37, sig, data) is False
    assert IssuerKey(key.public_key(), b"k").verify(-37, sig, data) is False


def test_keys_that_do_not_fit_the_algorithm_are_refused() -> None:
    p384 = ec.generate_private_key(ec.SECP384R1()).public_key()
    ed = ed25519.Ed25519PrivateKey.generate().public_key()
    with pytest.raises(ValueError):
        _ossl.NativeKey(_spki(p384), -7)  # ES256 needs P-256
    with pytest.raises(ValueError):
        _ossl.NativeKey(_spki(ed), -7)
    with pytest.raises(ValueError):
        _ossl.NativeKey(b"\x30\x03\x02\x01\x00", -7)  # not a public key
    with pytest.raises(ValueError):
        _ossl.NativeKey(_spki(ed) + b"\x00", -8)  # trailing bytes
    with pytest.raises(ValueError):
        _ossl.NativeKey(_spki(ed), -35)  # ES384: left to cryptography
    assert _ossl.native_key(IssuerKey(p384, b"k")) is None
    assert _ossl.native_key(IssuerKey(ed, b"k")) is not None
