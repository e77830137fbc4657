"""Micro-benchmark of the verification core.

    python bench/bench_core.py [--tokens 2000] [--rounds 7] [--speed-seconds 1]

In one process, on one token set (distinct ES256 vaccination tokens from one issuer),
prints microseconds per token for:
  floor      a bare ES256 verification with cryptography (DER signature prepared, the
             algorithm object reused): what a verifier built on cryptography cannot avoid
  speed      `openssl speed -elapsed -seconds N ecdsap256` run as a subprocess in every
             round: 1 / its verify/s (libcrypto's own ECDSA verify, one signature over and
             over; -elapsed: wall-clock like every other row, not openssl's default CPU time)
  ossl       fastpath._ossl verifying the same signatures in a C loop, ES256 through the
             key's precomputed table (the path the verifier uses)
  ossl_evp   the same through libcrypto's generic EVP verify (the fallback path)
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
import re
import shutil
import statistics
import subprocess
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


_SPEED_LINE = re.compile(r"ecdsa \(nistp256\)\s+\S+s\s+\S+s\s+([0-9.]+)\s+([0-9.]+)")


def openssl_speed_us(seconds: int) -> float | None:
    """Microseconds per verification from `openssl speed -elapsed -seconds N ecdsap256` (None when
    the openssl command is missing or its output has no nistp256 line)."""
    exe = shutil.which("openssl")
    if exe is None:
        return None
    try:
        out = subprocess.run(
            [exe, "speed", "-elapsed", "-seconds", str(seconds), "ecdsap256"],
            capture_output=True,
            text=True,
            timeout=30 + 4 * seconds,
            check=False,
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    m = _SPEED_LINE.search(out)
    if m is None or float(m.group(2)) <= 0:
        return None
    return 1e6 / float(m.group(2))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tokens", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--speed-seconds", type=int, default=1, help="per `openssl speed` run")
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
    spki = pub.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    native_evp = _ossl.NativeKey(spki, -7, False) if _ossl.available() else None
    raw_pairs = [(d.signature, d.sig_structure) for d in decoded]
    # ES256 tables are built on a key's first verification (tens of ms): not timed
    for k in (native, native_evp):
        if k is not None and not k.verify(-7, *raw_pairs[0]):
            raise SystemExit("libcrypto did not verify a benchmark token: broken setup")
    for v in (cold, cold_c):
        if not v.verify(tokens[0]).valid:
            raise SystemExit("benchmark tokens do not verify: broken setup")
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

    def run_ossl_evp() -> None:
        if native_evp is None:
            return
        _, ok = _ossl.speed(native_evp, raw_pairs)
        if ok != len(raw_pairs):
            raise SystemExit("libcrypto (EVP) did not verify the benchmark tokens: broken setup")

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
        "ossl_evp": (run_ossl_evp, len(tokens)),
        "verify": (run_verify, len(tokens)),
        "verify_c": (run_verify_c, len(tokens)),
        "many": (run_many, len(tokens)),
        "rescan": (run_rescan, 20 * len(tokens)),
        "cwt": (run_cwt, len(tokens)),
    }
    samples: dict[str, list[float]] = {name: [] for name in cases}
    speed: list[float] = []
    for _ in range(args.rounds):
        for name, (fn, count) in cases.items():
            samples[name].append(_per_token(fn, count))
        one = openssl_speed_us(args.speed_seconds)
        if one is not None:
            speed.append(one)
    med = {name: statistics.median(v) for name, v in samples.items()}
    if speed:
        med["speed"] = statistics.median(speed)

    print(
        f"machine: {platform.processor() or platform.machine()}, "
        f"{_cpu_model()}, Python {platform.python_version()}, "
        f"{len(tokens)} tokens x {args.rounds} rounds (median); signatures: {backend}"
        f"{' (' + _ossl.version() + ')' if _ossl.available() else ''}"
    )
    print(f"{'case':<40}{'us/token':>10}{'vs floor':>10}")
    rows = [
        ("bare ES256 verify (floor)", "floor"),
        ("openssl speed ecdsap256 (verify)", "speed"),
        ("libcrypto C loop, per-key table", "ossl"),
        ("libcrypto C loop, EVP verify", "ossl_evp"),
        ("Verifier.verify (first scan)", "verify"),
        ("  the same, cryptography backend", "verify_c"),
        ("Verifier.verify_many (first scan)", "many"),
        ("Verifier.verify (re-scan)", "rescan"),
        ("python-cwt decode+verify", "cwt"),
    ]
    for label, key in rows:
        if key in med and (native is not None or not key.startswith("ossl")):
            print(f"{label:<40}{med[key]:>10.2f}{med[key] / med['floor']:>10.3f}")
        else:
            print(f"{label:<40}{'n/a':>10}")
    print()
    print(f"verify / floor          = {med['verify'] / med['floor']:.3f}  (target <= 1.00)")
    if "speed" in med:
        print(f"verify / openssl speed  = {med['verify'] / med['speed']:.3f}  (target <= 1.10)")
    else:
        print("verify / openssl speed  = n/a (no `openssl` command or no nistp256 line)")
    if native is not None:
        over = med["verify"] / med["ossl"]
        print(f"verify / C loop (table) = {over:.3f}  (decode + engine overhead)")
        print(f"C loop EVP / table      = {med['ossl_evp'] / med['ossl']:.3f}  (table speed-up)")
    print(f"verify_c / floor        = {med['verify_c'] / med['floor']:.3f}  (cryptography backend)")
    print(f"re-scan                 = {med['rescan']:.2f} us  (target < 1)")
    print(f"python-cwt / verify     = {med['cwt'] / med['verify']:.2f}x  (target >= 2.3)")
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
