"""Where a first scan's time goes, in CPU instructions (callgrind), not seconds.

    python bench/bench_instructions.py [--tokens 2000]

Instruction counts do not depend on what else a shared machine is doing, so this is the
repeatable companion of bench_core.py. It makes the tokens once, then runs each case
under `valgrind --tool=callgrind` twice, once with the measured loop over the tokens and
once without it, and prints the difference per token:

  floor      cryptography's ES256 verify (DER signature prepared beforehand)
  ossl       libcrypto through fastpath._ossl in a C loop, ES256 with the key's
             precomputed table (the verifier's path)
  ossl_evp   the same through libcrypto's generic EVP verify (the fallback path)
  decode     fastpath.decode alone (Base45, inflate, CBOR/COSE/CWT, DCC check, hashes)
  verify     Verifier.verify, first scan, the verifier's own choice of backend
  verify_c   Verifier.verify, first scan, cryptography backend

Needs Debian's valgrind.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CASES = ("floor", "ossl", "ossl_evp", "decode", "verify", "verify_c")


def _child(case: str, workdir: Path, loop: bool) -> None:
    """Run inside valgrind: load everything, then (if `loop`) run the case once."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    import fastpath
    from fastpath import _ossl
    from keys.registry import TrustRegistry
    from verifier import Verifier
    from verifier.store import MemoryStore

    trust = TrustRegistry.from_file(workdir / "trust.json")
    tokens = json.loads((workdir / "tokens.json").read_text())
    now = json.loads((workdir / "now.json").read_text())
    key = trust.candidates(fastpath.decode(tokens[0]).kid)[0]
    decoded = [fastpath.decode(t) for t in tokens]
    ecdsa = ec.ECDSA(hashes.SHA256())
    pub = key.public_key
    prepared = [(fastpath.ecdsa_der(d.signature), d.sig_structure) for d in decoded]
    raw = [(d.signature, d.sig_structure) for d in decoded]
    native = _ossl.native_key(key)
    native_evp = _ossl.NativeKey(native_spki(key), key.alg, False) if native else None
    chosen = Verifier(MemoryStore(trust), "venue", cache_size=0)
    forced = Verifier(MemoryStore(trust), "venue", cache_size=0, signatures="cryptography")
    # tables are built on a key's first verification: in both runs, so not counted
    for k in (native, native_evp):
        if k is not None:
            k.verify(key.alg, *raw[0])
    chosen.verify(tokens[0], now)
    forced.verify(tokens[0], now)
    if not loop:
        return
    if case == "floor":
        for der, data in prepared:
            pub.verify(der, data, ecdsa)  # type: ignore[call-arg, arg-type]
    elif case == "ossl" and native is not None:
        _ossl.speed(native, raw)
    elif case == "ossl_evp" and native_evp is not None:
        _ossl.speed(native_evp, raw)
    elif case == "decode":
        for t in tokens:
            fastpath.decode(t)
    elif case == "verify":
        for t in tokens:
            chosen.verify(t, now)
    elif case == "verify_c":
        for t in tokens:
            forced.verify(t, now)


def native_spki(key: object) -> bytes:
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    return key.public_key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)  # type: ignore[attr-defined, no-any-return]


def _instructions(case: str, workdir: Path, loop: bool) -> int:
    out = workdir / f"cg.{case}.{int(loop)}"
    cmd = [
        "valgrind",
        "--tool=callgrind",
        f"--callgrind-out-file={out}",
        sys.executable,
        __file__,
        "--child",
        case,
        "--workdir",
        str(workdir),
    ]
    if loop:
        cmd.append("--loop")
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=1800, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{case}: valgrind failed:\n{done.stderr[-2000:]}")
    match = re.search(r"Collected\s*:\s*(\d+)", done.stderr)
    if match is None:
        raise SystemExit(f"{case}: no instruction count in valgrind's output")
    return int(match.group(1))


def _prepare(workdir: Path, n: int) -> None:
    from keys.issuer import Issuer
    from keys.samples import sample_dcc
    from keys.token import issue_token

    now = int(time.time())
    issuer = Issuer.generate(country="RU", alg="ES256")
    tokens = [
        issue_token(issuer, sample_dcc("vaccination", at=now - i), iat=now, exp=now + 86400)
        for i in range(n)
    ]
    (workdir / "trust.json").write_text(json.dumps({"keys": [issuer.trust_entry()]}))
    (workdir / "tokens.json").write_text(json.dumps(tokens))
    (workdir / "now.json").write_text(json.dumps(now))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tokens", type=int, default=2000)
    ap.add_argument("--child", choices=CASES, help=argparse.SUPPRESS)
    ap.add_argument("--workdir", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--loop", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        _child(args.child, args.workdir, args.loop)
        return 0
    if shutil.which("valgrind") is None:
        raise SystemExit("needs valgrind (Debian package valgrind)")
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        _prepare(workdir, args.tokens)
        per: dict[str, float] = {}
        for case in CASES:
            base = _instructions(case, workdir, loop=False)
            full = _instructions(case, workdir, loop=True)
            per[case] = (full - base) / args.tokens
            print(f"{case:<9}{per[case] / 1000:>10.1f} k instructions/token", flush=True)
    print()
    print(f"verify / floor   = {per['verify'] / per['floor']:.3f}  (instructions)")
    print(f"verify_c / floor = {per['verify_c'] / per['floor']:.3f}")
    if per["ossl"]:
        print(f"verify / ossl    = {per['verify'] / per['ossl']:.3f}  (ossl: table path)")
        print(f"ossl_evp / ossl  = {per['ossl_evp'] / per['ossl']:.3f}  (table speed-up)")
    print(f"decode share of verify = {per['decode'] / per['verify']:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
