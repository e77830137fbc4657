# cython: language_level=3
"""Signature verification through the system libcrypto (see ossl.h).

`NativeKey(spki_der, alg)` parses an issuer's SubjectPublicKeyInfo once; the engine calls
its C-level `check()` per scan with no Python objects made. `self_test()` compares this
backend with cryptography on known-good and known-bad signatures of every supported
algorithm (ES256, PS256, EdDSA) before the verifier uses it; any disagreement keeps the
verifier on cryptography. Callers hold the GIL (a key's OpenSSL context is not shared
between threads).
"""

cimport cython
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE

import base64 as _base64
import json as _json
from importlib import resources as _resources

cdef extern from "ossl.h":
    int QRV_KIND_ES256
    int QRV_KIND_PS256
    int QRV_KIND_EDDSA
    int qrv_ossl_load()
    const char* qrv_ossl_version()
    int qrv_key_init(qrv_key* k, const unsigned char* spki, long n, int kind)
    void qrv_key_free(qrv_key* k)
    int qrv_verify(qrv_key* k, const unsigned char* sig, size_t siglen,
                   const unsigned char* msg, size_t msglen)

ALG_ES256 = -7
ALG_EDDSA = -8
ALG_PS256 = -37
cdef dict _KINDS = {-7: QRV_KIND_ES256, -37: QRV_KIND_PS256, -8: QRV_KIND_EDDSA}
cdef bint _loaded = qrv_ossl_load() == 1


def available():
    """True when the system libcrypto 3 and every entry point used were found."""
    return _loaded


def version():
    """The loaded libcrypto's version text ('' when unavailable)."""
    return qrv_ossl_version().decode("ascii", "replace") if _loaded else ""


def supported(int alg):
    """True when `alg` (a COSE algorithm number) can be verified natively."""
    return alg in _KINDS


cdef class NativeKey:
    """One issuer public key parsed by libcrypto, for one COSE algorithm."""

    def __cinit__(self, spki, int alg):
        cdef bytes der = bytes(spki)
        self.alg = alg
        self.ready = False
        if not _loaded:
            raise ValueError("libcrypto is not available")
        kind = _KINDS.get(alg)
        if kind is None:
            raise ValueError(f"COSE algorithm {alg} has no native verifier")
        if qrv_key_init(&self.key, <const unsigned char*>PyBytes_AS_STRING(der),
                        PyBytes_GET_SIZE(der), kind) != 1:
            raise ValueError("libcrypto refused the public key")
        self.ready = True

    def __dealloc__(self):
        if self.ready:
            qrv_key_free(&self.key)

    cdef bint check(self, int alg, bytes signature, bytes data):
        if alg != self.alg:
            return False
        return qrv_verify(&self.key, <const unsigned char*>PyBytes_AS_STRING(signature),
                          <size_t>PyBytes_GET_SIZE(signature),
                          <const unsigned char*>PyBytes_AS_STRING(data),
                          <size_t>PyBytes_GET_SIZE(data)) == 1

    def verify(self, int alg, signature, data):
        """True if the raw COSE `signature` over `data` is valid. Never raises for bad input."""
        return self.check(alg, bytes(signature), bytes(data))


def native_key(issuer_key):
    """A NativeKey for a keys.registry.IssuerKey, or None when its algorithm or key is not
    handled natively (the caller then uses the key's own cryptography verify)."""
    if not _loaded or issuer_key.alg not in _KINDS:
        return None
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    spki = issuer_key.public_key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    try:
        return NativeKey(spki, issuer_key.alg)
    except ValueError:
        return None


@cython.wraparound(True)
def _cases():
    """(alg, spki, signature, data, expected) for the self-test, from the vectors shipped
    with the package (made by scripts/make-selftest-vectors) plus derived bad forms."""
    raw = _resources.files("fastpath").joinpath("selftest.json").read_bytes()
    out = []
    for v in _json.loads(raw)["vectors"]:
        alg = int(v["alg"])
        spki = _base64.b64decode(v["spki"])
        data = _base64.b64decode(v["data"])
        sig = _base64.b64decode(v["signature"])
        flipped = sig[:-1] + bytes([sig[-1] ^ 1])
        out.append((alg, spki, sig, data, True))
        out.append((alg, spki, flipped, data, False))
        out.append((alg, spki, sig, data + b"\x00", False))
        out.append((alg, spki, sig[:-1], data, False))
        out.append((alg, spki, b"", data, False))
        if v.get("high_s"):
            out.append((alg, spki, _base64.b64decode(v["high_s"]), data, True))
    return out


def self_test():
    """None when libcrypto and cryptography agree on every case, else what differed."""
    if not _loaded:
        return "libcrypto 3 not found"
    from cryptography.hazmat.primitives.serialization import load_der_public_key

    from keys.registry import IssuerKey

    for alg, spki, sig, data, expected in _cases():
        reference = IssuerKey(load_der_public_key(spki), b"selftest")
        try:
            native = NativeKey(spki, alg)
        except ValueError as exc:
            return f"alg {alg}: {exc}"
        got_native = native.verify(alg, sig, data)
        got_reference = reference.verify(alg, sig, data)
        if got_native != expected or got_reference != expected:
            return (f"alg {alg}: expected {expected}, libcrypto said {got_native}, "
                    f"cryptography said {got_reference}")
    return None


def speed(NativeKey key, list pairs, int rounds=1):
    """Seconds to verify every (signature, data) pair `rounds` times in a C loop: what
    `openssl speed` measures for one key, as a baseline for benchmarks. Returns the
    elapsed time and how many verified, so a broken setup cannot pass unseen."""
    from time import perf_counter

    cdef Py_ssize_t i, n = len(pairs), ok = 0
    cdef int r
    cdef tuple pair
    t0 = perf_counter()
    for r in range(rounds):
        for i in range(n):
            pair = <tuple>pairs[i]
            ok += key.check(key.alg, <bytes>pair[0], <bytes>pair[1])
    return perf_counter() - t0, ok


_checked = []


def checked():
    """self_test(), run once per process: None when libcrypto may be used, else why not."""
    if not _checked:
        _checked.append(self_test())
    return _checked[0]
