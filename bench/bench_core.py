"""Micro-benchmark of the verification core.

    python bench/bench_core.py [--tokens 2000] [--rounds 7]

In one process, on one token set (distinct ES256 vaccination tokens from one issuer),
prints microseconds per token for:
  floor      a bare ES256 verification with cryptography (DER signature prepared, the
             algorithm object reused): what a verifier built on cryptography cannot avoid
  ossl       the system libcrypto verifying the same signatures in a C loop (what
             `openssl speed ecdsap256` measures, here over the same distinct tokens)
  verify     Verifier.verify on tokens not seen before (re-scan cache off), with the
             signature backend the verifier chose (libcrypto when its self-test passed)
  verify_c   the same with the cryptography backend forced
  many       Verifier.verify_many over the whole set (cache off)
  rescan     Verifier.verify of a token already seen (cache on, warm)
  cwt        python-cwt decoding + verifying the same tokens (after Base45 and zlib)
and the ratios against the floor. Rounds are interleaved so that machine noise hits
every measurement alike; the median round is reported.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import tempfile
import time
import zlib
from collections.abc import Callable
from pathlib import Path

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

import fastpath
from fastpath import _ossl
from keys import base45
from keys.issuer import Issuer
from keys.registry import TrustRegistry
from keys.samples import sample_dcc
from keys.token import issue_token
from verifier import Verifier
from verifier.store import MemoryStore


def _tokens(issuer: Issuer, n: int, now: int) -> list[str]:
    return [
        issue_token(issuer, sample_dcc("vaccination", at=now - i), iat=now, exp=now + 86400)
        for i in range(n)
    ]


def _per_token(fn: Callable[[], object], count: int) -> float:
    t0 = time.perf_counter()
    fn()
    return (time.perf_counter() - t0) / count * 1e6


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tokens", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=7)
    args = ap.parse_args()

    now = int(time.time())
    issuer = Issuer.generate(country="RU", alg="ES256")
    tokens = _tokens(issuer, args.tokens, now)
    trust = TrustRegistry.from_dict({"keys": [issuer.trust_entry()]})

    # floor inputs: exactly what verification must check, prepared outside the timing
    pub = issuer.certificate.public_key()
    if not isinstance(pub, ec.EllipticCurvePublicKey):
        raise SystemExit("the benchmark issuer must have an EC key")
    ecdsa = ec.ECDSA(hashes.SHA256())
    decoded = [fastpath.decode(t) for t in tokens]
    prepared = [(fastpath.ecdsa_der(d.signature), d.sig_structure) for d in decoded]

    cold = Verifier(MemoryStore(trust), "venue", cache_size=0)
    cold_c = Verifier(MemoryStore(trust), "venue", cache_size=0, signatures="cryptography")
    backend = cold.status()["signatures"]
    native = _ossl.native_key(trust.candidates(decoded[0].kid)[0]) if _ossl.available() else None
    raw_pairs = [(d.signature, d.sig_structure) for d in decoded]
    warm = Verifier(MemoryStore(trust), "venue")
    for t in tokens:
        if not warm.verify(t).valid:
            raise SystemExit("benchmark tokens do not verify: broken setup")

    import cwt

    cwt_key = cwt.load_pem_hcert_dsc(issuer.certificate.public_bytes(serialization.Encoding.PEM))

    def run_floor() -> None:
        for der, data in prepared:
            pub.verify(der, data, ecdsa)

    def run_ossl() -> None:
        if native is None:
            return
        _, ok = _ossl.speed(native, raw_pairs)
        if ok != len(raw_pairs):
            raise SystemExit("libcrypto did not verify the benchmark tokens: broken setup")

    def run_verify() -> None:
        for t in tokens:
            cold.verify(t)

    def run_verify_c() -> None:
        for t in tokens:
            cold_c.verify(t)

    def run_many() -> None:
        cold.verify_many(tokens)

    def run_rescan() -> None:
        for _ in range(20):
            for t in tokens:
                warm.verify(t)

    def run_cwt() -> None:
        for t in tokens:
            cwt.decode(zlib.decompress(base45.decode(t[4:])), cwt_key)

    cases: dict[str, tuple[Callable[[], None], int]] = {
        "floor": (run_floor, len(tokens)),
        "ossl": (run_ossl, len(tokens)),
        "verify": (run_verify, len(tokens)),
        "verify_c": (run_verify_c, len(tokens)),
        "many": (run_many, len(tokens)),
        "rescan": (run_rescan, 20 * len(tokens)),
        "cwt": (run_cwt, len(tokens)),
    }
    samples: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(args.rounds):
        for name, (fn, count) in cases.items():
            samples[name].append(_per_token(fn, count))
    med = {name: statistics.median(v) for name, v in samples.items()}

    print(
        f"machine: {platform.processor() or platform.machine()}, "
        f"{_cpu_model()}, Python {platform.python_version()}, "
        f"{len(tokens)} tokens x {args.rounds} rounds (median); signatures: {backend}"
        f"{' (' + _ossl.version() + ')' if _ossl.available() else ''}"
    )
    print(f"{'case':<34}{'us/token':>10}{'vs floor':>10}")
    rows = [
        ("bare ES256 verify (floor)", "floor"),
        ("libcrypto ES256 verify, C loop", "ossl"),
        ("Verifier.verify (first scan)", "verify"),
        ("  the same, cryptography backend", "verify_c"),
        ("Verifier.verify_many (first scan)", "many"),
        ("Verifier.verify (re-scan)", "rescan"),
        ("python-cwt decode+verify", "cwt"),
    ]
    for label, key in rows:
        print(f"{label:<34}{med[key]:>10.2f}{med[key] / med['floor']:>10.3f}")
    print()
    print(f"verify / floor      = {med['verify'] / med['floor']:.3f}  (target <= 1.00)")
    if native is not None:
        print(f"verify / libcrypto  = {med['verify'] / med['ossl']:.3f}  (target <= 1.10)")
    print(f"verify_c / floor    = {med['verify_c'] / med['floor']:.3f}  (cryptography backend)")
    print(f"re-scan             = {med['rescan']:.2f} us  (target < 1)")
    print(f"python-cwt / verify = {med['cwt'] / med['verify']:.2f}x  (target >= 2.3)")
    return 0


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


if __name__ == "__main__":
    with tempfile.TemporaryDirectory():
        raise SystemExit(main())
