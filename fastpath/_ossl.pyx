# cython: language_level=3
"""Signature verification through the system libcrypto (see ossl.h).

`NativeKey(spki_der, alg)` parses an issuer's SubjectPublicKeyInfo once; the engine calls
its C-level `check()` per scan with no Python objects made. `self_test()` compares this
backend with cryptography on known-good and known-bad signatures of every supported
algorithm (ES256, PS256, EdDSA) before the verifier uses it; any disagreement keeps the
verifier on cryptography. ES256 keys use a per-key precomputed table (ec256.h) and the EVP
path as the fallback; the self-test runs both. Callers hold the GIL (a key's OpenSSL
context and the table path's scratch values are not shared between threads).

A key's table takes about 26 ms to build. By default it is built on the key's first
verification, by the caller. With `set_background_tables(True)` (the HTTP server's
workers) it is built on one background thread without the GIL instead, and the key
verifies through EVP until it is ready: no request waits for a table.
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
    int QRV_EC_MAX_TABLES
    int qrv_ec_state
    int qrv_ec_tables
    int qrv_ec_max_tables
    int qrv_key_init(qrv_key* k, const unsigned char* spki, long n, int kind, int fast)
    void qrv_key_free(qrv_key* k)
    int qrv_key_ec_state(const qrv_key* k)
    int qrv_verify(qrv_key* k, const unsigned char* sig, size_t siglen,
                   const unsigned char* msg, size_t msglen)
    int qrv_es256_digest(qrv_key* k, const unsigned char* digest, const unsigned char* sig)
    int qrv_key_ec_mark(qrv_key* k)
    void* qrv_key_ec_make(const qrv_key* k) nogil
    int qrv_key_ec_install(qrv_key* k, void* gq)
    void qrv_key_ec_unmark(qrv_key* k)

ALG_ES256 = -7
ALG_EDDSA = -8
ALG_PS256 = -37
EC_MAX_TABLES = QRV_EC_MAX_TABLES
cdef dict _KINDS = {-7: QRV_KIND_ES256, -37: QRV_KIND_PS256, -8: QRV_KIND_EDDSA}
cdef bint _loaded = qrv_ossl_load() == 1


def available():
    """True when the system libcrypto 3 and every entry point used were found."""
    return _loaded


def version():
    """The loaded libcrypto's version text ('' when unavailable)."""
    return qrv_ossl_version().decode("ascii", "replace") if _loaded else ""


def ec_available():
    """True when the ES256 table path's entry points were found (else ES256 uses EVP)."""
    return _loaded and qrv_ec_state == 1


def ec_tables():
    """How many ES256 keys hold a precomputed table now (at most EC_MAX_TABLES)."""
    return qrv_ec_tables


def set_ec_max_tables(int limit):
    """Cap the number of ES256 keys holding a table (about 150 KB each); returns the
    previous cap. Keys beyond it verify through EVP. Tables already built stay."""
    global qrv_ec_max_tables
    previous = qrv_ec_max_tables
    qrv_ec_max_tables = max(0, limit)
    return previous


# ---- tables built on a background thread (set_background_tables) ---------------------------

cdef bint _background = False
cdef object _queue = None    # NativeKeys waiting for their table (queue.SimpleQueue)
cdef object _thread = None   # the thread building them
cdef set _marked = set()     # keys in state 2: queued or being built


def set_background_tables(bint on):
    """Build ES256 tables on a background thread (True) or in the verifying call (False,
    the default); returns the previous setting."""
    global _background
    previous = _background
    _background = on
    return previous


def wait_tables(double timeout=10.0):
    """Wait until no table is being built in the background (at most `timeout` seconds);
    True when none is. For benchmarks and tests."""
    from time import monotonic, sleep

    end = monotonic() + timeout
    while _marked:
        if monotonic() >= end:
            return False
        sleep(0.001)
    return True


def _build_tables(q):
    while True:
        _build_one(<NativeKey>q.get())


cdef void _build_one(NativeKey k) noexcept:
    cdef void* gq
    with nogil:
        gq = qrv_key_ec_make(&k.key)
    qrv_key_ec_install(&k.key, gq)  # with the GIL: the state the verifying threads read
    _marked.discard(k)


cdef void _schedule(NativeKey k) noexcept:
    """Queue `k` (marked: state 2) for the background thread, started on first use and
    again when it is gone. Should that fail, the key goes back to state 0 and the caller
    builds its table."""
    global _queue, _thread
    try:
        if _thread is None or not _thread.is_alive():
            import queue
            import threading

            _reset_builder()  # first use, or the thread is gone (a fork)
            _queue = queue.SimpleQueue()
            _thread = threading.Thread(
                target=_build_tables, args=(_queue,), name="qrverify-ec-tables", daemon=True
            )
            _thread.start()
        _marked.add(k)
        _queue.put(k)
    except Exception:
        _marked.discard(k)
        qrv_key_ec_unmark(&k.key)


def _reset_builder():
    """The builder thread does not survive a fork: keys it had queued go back to state 0
    (built again on their next verification), and the next one starts a new thread."""
    global _queue, _thread
    for old in _marked:
        qrv_key_ec_unmark(&(<NativeKey>old).key)
    _marked.clear()
    _queue = _thread = None


import os as _os

if hasattr(_os, "register_at_fork"):
    _os.register_at_fork(after_in_child=_reset_builder)


cdef inline void _maybe_schedule(NativeKey k) noexcept:
    if _background and qrv_key_ec_mark(&k.key):
        _schedule(k)


def supported(int alg):
    """True when `alg` (a COSE algorithm number) can be verified natively."""
    return alg in _KINDS


cdef class NativeKey:
    """One issuer public key parsed by libcrypto, for one COSE algorithm."""

    def __cinit__(self, spki, int alg, bint fast=True):
        cdef bytes der = bytes(spki)
        self.alg = alg
        self.ready = False
        if not _loaded:
            raise ValueError("libcrypto is not available")
        kind = _KINDS.get(alg)
        if kind is None:
            raise ValueError(f"COSE algorithm {alg} has no native verifier")
        if qrv_key_init(&self.key, <const unsigned char*>PyBytes_AS_STRING(der),
                        PyBytes_GET_SIZE(der), kind, fast) != 1:
            raise ValueError("libcrypto refused the public key")
        self.ready = True

    def __dealloc__(self):
        if self.ready:
            qrv_key_free(&self.key)

    cdef bint check(self, int alg, bytes signature, bytes data):
        if alg != self.alg:
            return False
        _maybe_schedule(self)
        return qrv_verify(&self.key, <const unsigned char*>PyBytes_AS_STRING(signature),
                          <size_t>PyBytes_GET_SIZE(signature),
                          <const unsigned char*>PyBytes_AS_STRING(data),
                          <size_t>PyBytes_GET_SIZE(data)) == 1

    def verify(self, int alg, signature, data):
        """True if the raw COSE `signature` over `data` is valid. Never raises for bad input."""
        return self.check(alg, bytes(signature), bytes(data))

    def verify_digest(self, digest, signature):
        """ES256 only: True if the raw r || s `signature` is valid for the 32-byte SHA-256
        `digest` (for tests and the self-test: digests no message can be made for)."""
        cdef bytes dg = bytes(digest), sig = bytes(signature)
        if self.alg != ALG_ES256 or len(dg) != 32 or len(sig) != 64:
            return False
        _maybe_schedule(self)
        return qrv_es256_digest(&self.key, <const unsigned char*>PyBytes_AS_STRING(dg),
                                <const unsigned char*>PyBytes_AS_STRING(sig)) == 1

    @property
    def table(self):
        """ES256 table path: 1 table ready, 0 not built yet (built on the first
        verification), 2 being built in the background, -1 this key uses the EVP path."""
        return qrv_key_ec_state(&self.key)


# NativeKeys by (SubjectPublicKeyInfo, alg), shared by every verifier of the process and
# kept across trust generations: a key's ES256 table (26 ms to build) is built once per
# process, not again after every trust change or for every Verifier. Least recently used
# first out; as many as there may be tables, so stale keys cannot hold every table.
cdef dict _native_cache = {}
NATIVE_CACHE_MAX = QRV_EC_MAX_TABLES


def native_key(issuer_key):
    """A NativeKey for a keys.registry.IssuerKey, or None when its algorithm or key is not
    handled natively (the caller then uses the key's own cryptography verify). The same
    public key and algorithm give the same NativeKey object (see _native_cache)."""
    if not _loaded or issuer_key.alg not in _KINDS:
        return None
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    spki = issuer_key.public_key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    cache_key = (spki, issuer_key.alg)
    nk = _native_cache.pop(cache_key, None)
    if nk is None:
        try:
            nk = NativeKey(spki, issuer_key.alg)
        except ValueError:
            return None
        while len(_native_cache) >= max(1, NATIVE_CACHE_MAX):
            del _native_cache[next(iter(_native_cache))]
    _native_cache[cache_key] = nk  # (re)inserted last: the most recently used
    return nk


P256_N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


def _rs(r, s):
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


@cython.wraparound(True)
def _cases():
    """(alg, spki, signature, data, expected) for the self-test, from the vectors shipped
    with the package (made by scripts/make-selftest-vectors) plus derived bad forms."""
    out = []
    for v in _vectors():
        alg = int(v["alg"])
        spki = _base64.b64decode(v["spki"])
        data = _base64.b64decode(v["data"])
        sig = _base64.b64decode(v["signature"])
        flipped = sig[:-1] + bytes([sig[-1] ^ 1])
        out.append((alg, spki, sig, data, True))
        out.append((alg, spki, flipped, data, False))
        out.append((alg, spki, sig[:1] + bytes([sig[1] ^ 0x10]) + sig[2:], data, False))
        out.append((alg, spki, sig, data + b"\x00", False))
        out.append((alg, spki, sig[:-1], data, False))
        out.append((alg, spki, b"", data, False))
        if v.get("high_s"):
            out.append((alg, spki, _base64.b64decode(v["high_s"]), data, True))
        if v.get("other_spki"):  # a valid signature under a different key
            out.append((alg, _base64.b64decode(v["other_spki"]), sig, data, False))
        if alg == ALG_ES256:  # r and s out of range, each with the other half intact
            r = int.from_bytes(sig[:32], "big")
            s = int.from_bytes(sig[32:], "big")
            top = (1 << 256) - 1
            for bad in (0, P256_N, P256_N + 1, P256_N - 1, top):
                out.append((alg, spki, _rs(bad, s), data, False))
                out.append((alg, spki, _rs(r, bad), data, False))
            if r + P256_N <= top:
                out.append((alg, spki, _rs(r + P256_N, s), data, False))
            if s + P256_N <= top:
                out.append((alg, spki, _rs(r, s + P256_N), data, False))
    return out


def _vectors():
    raw = _resources.files("fastpath").joinpath("selftest.json").read_bytes()
    return _json.loads(raw)["vectors"]


def _digest_cases():
    """(spki, digest, signature, expected) for ES256 over digests no message can be made
    for: e = 0 and e = n (so u1 = 0), and e = -r*d (u1*G = -u2*Q, the sum at infinity)."""
    out = []
    for v in _vectors():
        for c in v.get("digests", ()):
            out.append((_base64.b64decode(v["spki"]), bytes.fromhex(c["digest"]),
                        _base64.b64decode(c["signature"]), bool(c["valid"])))
    return out


def _reference_digest(spki, digest, signature):
    """cryptography's verdict on an ES256 signature over a prehashed digest."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.asymmetric.utils import (
        Prehashed,
        encode_dss_signature,
    )
    from cryptography.hazmat.primitives.serialization import load_der_public_key

    der = encode_dss_signature(int.from_bytes(signature[:32], "big"),
                               int.from_bytes(signature[32:], "big"))
    try:
        load_der_public_key(spki).verify(der, digest, ec.ECDSA(Prehashed(hashes.SHA256())))
    except InvalidSignature:
        return False
    return True


def self_test():
    """None when libcrypto and cryptography agree on every case, else what differed.
    ES256 runs through both libcrypto paths: the per-key table and EVP."""
    if not _loaded:
        return "libcrypto 3 not found"
    global _background
    saved, _background = _background, False  # the table path is built here and tested
    try:
        return _self_test()
    finally:
        _background = saved


def _self_test():
    from cryptography.hazmat.primitives.serialization import load_der_public_key

    from keys.registry import IssuerKey

    keys = {}

    def native(spki, alg, fast):
        k = keys.get((spki, alg, fast))
        if k is None:
            k = keys[(spki, alg, fast)] = NativeKey(spki, alg, fast)
        return k

    for alg, spki, sig, data, expected in _cases():
        reference = IssuerKey(load_der_public_key(spki), b"selftest")
        try:
            paths = [native(spki, alg, True)]
            if alg == ALG_ES256:
                paths.append(native(spki, alg, False))
        except ValueError as exc:
            return f"alg {alg}: {exc}"
        got_reference = reference.verify(alg, sig, data)
        got = [k.verify(alg, sig, data) for k in paths]
        if got_reference != expected or any(g != expected for g in got):
            return (f"alg {alg}: expected {expected}, libcrypto said {got}, "
                    f"cryptography said {got_reference}")
    for spki, digest, sig, expected in _digest_cases():
        got = [native(spki, ALG_ES256, fast).verify_digest(digest, sig) for fast in (True, False)]
        got_reference = _reference_digest(spki, digest, sig)
        if got_reference != expected or any(g != expected for g in got):
            return (f"ES256 digest case: expected {expected}, libcrypto said {got}, "
                    f"cryptography said {got_reference}")
    if qrv_ec_state == 1 and not any(
            k.table == 1 for (_, alg, fast), k in keys.items() if alg == ALG_ES256 and fast):
        return "ES256: the table path was not exercised"
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
