#!/usr/bin/env python3
"""Fuzz the verifier with mutated HC1 tokens.

    python bench/fuzz.py --count 1000000 [--seed N] [--workers 2]

Starts from valid tokens signed by development issuers made at run time (bench/_keys.py:
one per algorithm, a test-only key, an alternative-arc key, an untrusted one; bench/ reads
nothing from tests/) and mutates them in several ways, some of which re-sign the result
with a trusted key so that the schema, key, time and rules layers are reached too. Each
token goes through `Verifier.verify` (cache disabled). A failure is: any exception, a
reason outside the contract, or a holder shown for a token whose signature does not
verify (checked with an independent decode: cbor2 + the trust registry's keys). Failures
make the exit status 1. Memory stays bounded: tokens are generated, verified and dropped one by one.
"""

from __future__ import annotations

import argparse
import hashlib
import math
import multiprocessing as mp
import random
import resource
import struct
import sys
import time
import zlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

try:  # prefer the installed build; fall back to the source tree
    import verifier  # noqa: F401
except ImportError:  # pragma: no cover - depends on the environment
    sys.path.insert(0, str(ROOT))
if str(ROOT) not in sys.path:  # the bench package, after the installed qrverify
    sys.path.append(str(ROOT))

import cbor2  # noqa: E402

import fastpath._decode  # noqa: E402
from bench._keys import dev_issuers, trust_of  # noqa: E402
from keys import base45  # noqa: E402
from keys.cbor import RawCBOR, Tagged, dumps  # noqa: E402
from keys.cose import sig_structure  # noqa: E402
from keys.issuer import Issuer  # noqa: E402
from keys.registry import TrustRegistry  # noqa: E402
from keys.samples import DCC_KEYS, ENTRY_KEYS, NAME_KEYS, sample_dcc  # noqa: E402
from verifier import Reason, Verdict, Verifier  # noqa: E402
from verifier.store import MemoryStore  # noqa: E402

NOW = 1636977600  # 2021-11-15T12:00:00Z, inside every vector issuer's validity
CONTRACT = frozenset(r.value for r in Reason)
TYPES = ("vaccination", "test", "recovery")
CHUNK = 5000
MAX_FAILURE_EXAMPLES = 20

# -- the world a worker fuzzes in ---------------------------------------------------------


class World:
    """Issuers, seed tokens and a verifier; built once per process."""

    def __init__(self) -> None:
        self.issuers = dev_issuers()
        self.trust = trust_of(self.issuers)
        self.verifier = Verifier(MemoryStore(self.trust), cache_size=0)
        # the same checks on the other signature backend: every verdict must be identical
        self.verifier_other = Verifier(
            MemoryStore(self.trust), cache_size=0, signatures="cryptography"
        )
        # a second verifier with revocations and a registry set (CONTRACT section 4)
        half = len(SPECIAL_CI) // 2
        store = MemoryStore(
            self.trust,
            [_h16(ci) for ci in SPECIAL_CI[:half]],
            [_h16(ci) for ci in SPECIAL_CI[half:]],
        )
        self.verifier_store = Verifier(store, cache_size=0)
        # re-signing uses the fast signers; PS256 signs seeds only (about 1 ms a signature)
        self.signers = [
            self.issuers[n] for n in ("es256", "eddsa", "test_only", "vaccination_alt_arc")
        ]
        rng = random.Random(0)
        self.seeds: list[str] = []
        for issuer in self.issuers.values():
            for cert_type in TYPES:
                for form in ("tag18", "untagged", "tag61"):
                    placement = rng.choice(["protected", "unprotected", "both"])
                    self.seeds.append(
                        self.token(issuer, payload_of(cert_type), form=form, placement=placement)
                    )

    def token(
        self,
        issuer: Issuer,
        payload: bytes,
        *,
        form: str = "tag18",
        placement: str = "protected",
        protected: bytes | None = None,
        unprotected: Any = None,
    ) -> str:
        if protected is None:
            pmap: dict[int, Any] = {1: issuer.cose_alg}
            if placement in ("protected", "both"):
                pmap[4] = issuer.kid
            protected = dumps(pmap)
        if unprotected is None:
            unprotected = {4: issuer.kid} if placement in ("unprotected", "both") else {}
        signature = issuer.sign(sig_structure(protected, payload))
        msg: Any = [protected, unprotected, payload, signature]
        if form == "tag18":
            msg = Tagged(18, msg)
        elif form == "tag61":
            msg = Tagged(61, Tagged(18, msg))
        return hc1(dumps(msg))


def _h16(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8")).digest()[:16]


def payload_of(
    cert_type: str,
    dcc: Any = None,
    iat: int = NOW - 3600,
    exp: int = NOW + 200 * 86400,
    iss: Any = "RU",
) -> bytes:
    if dcc is None:
        dcc = sample_dcc(cert_type, at=NOW)
    claims: dict[int, Any] = {}
    if iss is not None:
        claims[1] = iss
    claims[4] = exp
    claims[6] = iat
    claims[-260] = {1: dcc}
    return dumps(claims)


def hc1(cose: bytes) -> str:
    return "HC1:" + base45.encode(zlib.compress(cose, 6))


def unhc1(token: str) -> bytes:
    return zlib.decompress(base45.decode(token[4:]))


# -- mutation strategies ------------------------------------------------------------------
# Each returns (token, resigned): resigned tokens carry a valid signature by construction.

B45 = base45.ALPHABET
ODD_CHARS = "abcxyz\x00\n\r\t\u0416\u00e9\ud800#&=_"


def mutate_bytes(rng: random.Random, buf: bytes, n: int) -> bytes:
    b = bytearray(buf)
    for _ in range(n):
        op = rng.randrange(6)
        i = rng.randrange(len(b) + 1)
        if op == 0 and i < len(b):
            b[i] ^= 1 << rng.randrange(8)
        elif op == 1 and i < len(b):
            b[i] = rng.choice(
                (
                    0x00,
                    0xFF,
                    0x7F,
                    0x80,
                    0x18,
                    0x19,
                    0x1A,
                    0x1B,
                    0x1F,
                    0x5B,
                    0x7B,
                    0x9B,
                    0xBB,
                    0x9F,
                    0xBF,
                    0xC0,
                    0xD2,
                    0xF7,
                )
            )
        elif op == 2:
            b.insert(i, rng.randrange(256))
        elif op == 3 and i < len(b):
            del b[i]
        elif op == 4 and len(b) > 2:  # duplicate a slice
            j = rng.randrange(len(b))
            b[i:i] = b[j : j + rng.randrange(1, 9)]
        elif i < len(b):  # random byte
            b[i] = rng.randrange(256)
    return bytes(b)


def s_base45(w: World, rng: random.Random) -> tuple[str, bool]:
    chars = list(rng.choice(w.seeds))
    for _ in range(rng.randint(1, 4)):
        i = rng.randrange(4, len(chars) + 1)
        ch = rng.choice(B45) if rng.random() < 0.8 else rng.choice(ODD_CHARS)
        op = rng.randrange(3)
        if op == 0 and i < len(chars):
            chars[i] = ch
        elif op == 1:
            chars.insert(i, ch)
        elif i < len(chars):
            del chars[i]
    return "".join(chars), False


def s_cose(w: World, rng: random.Random) -> tuple[str, bool]:
    raw = unhc1(rng.choice(w.seeds))
    return hc1(mutate_bytes(rng, raw, rng.randint(1, 4))), False


def s_zlib(w: World, rng: random.Random) -> tuple[str, bool]:
    raw = base45.decode(rng.choice(w.seeds)[4:])
    return "HC1:" + base45.encode(mutate_bytes(rng, raw, rng.randint(1, 3))), False


def s_truncate_splice(w: World, rng: random.Random) -> tuple[str, bool]:
    a, b = rng.choice(w.seeds), rng.choice(w.seeds)
    if rng.random() < 0.5:
        return a[: rng.randrange(len(a) + 1)], False
    return a[: rng.randrange(4, len(a))] + b[rng.randrange(4, len(b)) :], False


def s_random(w: World, rng: random.Random) -> tuple[str, bool]:
    n = rng.randrange(0, 600)
    kind = rng.randrange(4)
    if kind == 0:
        return "HC1:" + "".join(rng.choice(B45) for _ in range(n)), False
    if kind == 1:
        return "HC1:" + base45.encode(rng.randbytes(n)), False
    if kind == 2:
        return "HC1:" + base45.encode(zlib.compress(rng.randbytes(n))), False
    return "".join(chr(rng.randrange(32, 0x500)) for _ in range(n)), False


def s_structure(w: World, rng: random.Random) -> tuple[str, bool]:
    """Hostile CBOR shapes: deep nesting, huge lengths, indefinite items, bombs."""
    kind = rng.randrange(5)
    if kind == 0:
        depth = rng.randrange(10, 5000)
        body = bytes([rng.choice((0x81, 0xA1))]) * depth
        return hc1(body + b"\x00" * depth), False
    if kind == 1:
        head = rng.choice((0x5B, 0x7B, 0x9B, 0xBB))
        return hc1(b"\xd2\x84" + bytes([head]) + rng.randbytes(8) + rng.randbytes(20)), False
    if kind == 2:
        return hc1(b"\xd2\x9f" + rng.randbytes(rng.randrange(40)) + b"\xff"), False
    if kind == 3:
        return hc1(b"\x00" * rng.randrange(16000, 200_000)), False
    value: Any = rng.randbytes(8)
    for _ in range(rng.randrange(1, 30)):
        value = rng.choice(([value], {1: value}, Tagged(rng.randrange(100), value)))
    return hc1(dumps(Tagged(18, [dumps({1: -7}), {}, dumps(value), b""]))), False


def s_payload_resign(w: World, rng: random.Random) -> tuple[str, bool]:
    payload = payload_of(rng.choice(TYPES))
    return w.token(rng.choice(w.signers), mutate_bytes(rng, payload, rng.randint(1, 3))), True


FIELD_VALUES: list[Any] = [
    None,
    True,
    False,
    0,
    1,
    2,
    -1,
    1 << 40,
    1 << 63,
    2.5,
    "",
    "X",
    "A" * 81,
    "Я" * 81,
    "2021-10-16",
    "2021-02-30",
    "1899-12-31",
    "2100-01-01",
    "1980",
    "1980-01",
    "2021-11-15T10:00:00Z",
    "2021-11-15T10:00:00",
    "2021-11-18T10:00:00+03:00",
    "2021-11-15T25:00:00Z",
    "IVANOV",
    "ivanov",
    "IVANOV<<IVAN",
    "RU",
    "ru",
    "1.3.0",
    "260415000",
    "260373001",
    "LP6464-4",
    "LP217198-3",
    [],
    [{}],
    {},
    {"a": 1},
    RawCBOR(b"\x62\xc3\x28"),
    RawCBOR(b"\xf7"),
    RawCBOR(b"\xc1\x00"),
]
#: Certificate ids the fuzz store knows: the first half revoked, the second registered.
SPECIAL_CI = [f"URN:UVCI:01:RU:FUZZ{i:04d}#X" for i in range(8)]


def s_dcc_resign(w: World, rng: random.Random) -> tuple[str, bool]:
    cert_type = rng.choice(TYPES)
    dcc = sample_dcc(cert_type, at=NOW - rng.randrange(-60, 400) * 86400)
    group = {"vaccination": "v", "test": "t", "recovery": "r"}[cert_type]
    if rng.random() < 0.3:
        dcc[group][0]["ci"] = rng.choice(SPECIAL_CI)
    if cert_type == "vaccination" and rng.random() < 0.1:
        dcc[group][0]["dn"] = 1
    for _ in range(rng.randint(0, 3)):
        where = rng.randrange(3)
        target: Any = dcc
        keys = DCC_KEYS
        if where == 1:
            target, keys = dcc.get("nam"), NAME_KEYS
        elif where == 2:
            entries = dcc.get(group)
            target = entries[0] if isinstance(entries, list) and entries else None
            keys = ENTRY_KEYS
        if not isinstance(target, dict):
            continue
        key = rng.choice(keys)
        if rng.random() < 0.3:
            target.pop(key, None)
        else:
            target[key] = rng.choice(FIELD_VALUES)
    iat = NOW - rng.choice((3600, 0, -299, -301, 400 * 86400, 4000 * 86400))
    exp = NOW + rng.choice((86400, 0, -300, -301, 300 * 86400, 9000 * 86400))
    iss = rng.choice(("RU", "RU", None, "DE", ""))
    try:
        payload = payload_of(cert_type, dcc, iat=iat, exp=exp, iss=iss)
    except (TypeError, ValueError):
        payload = payload_of(cert_type)
    return w.token(rng.choice(w.signers), payload), True


def s_header_resign(w: World, rng: random.Random) -> tuple[str, bool]:
    issuer = rng.choice(w.signers)
    alg = rng.choice((issuer.cose_alg, issuer.cose_alg, -7, -8, -37, -35, 0, 1 << 20, "ES256"))
    kid = rng.choice(
        (
            issuer.kid,
            issuer.kid,
            None,
            b"",
            b"x" * 65,
            "kid",
            w.issuers["untrusted"].kid,
            w.issuers["es256"].kid,
        )
    )
    pmap: dict[int, Any] = {}
    if rng.random() < 0.9:
        pmap[1] = alg
    if kid is not None and rng.random() < 0.7:
        pmap[4] = kid
    if rng.random() < 0.1:
        pmap[rng.choice((2, 3, 5, 33, -1))] = rng.choice(FIELD_VALUES[:14])
    protected = dumps(pmap) if rng.random() < 0.95 else rng.randbytes(rng.randrange(6))
    unprot: Any = {}
    if rng.random() < 0.5:
        unprot = {4: rng.choice((issuer.kid, w.issuers["untrusted"].kid, b"", "kid"))}
    form = rng.choice(("tag18", "untagged", "tag61"))
    return w.token(
        issuer, payload_of(rng.choice(TYPES)), form=form, protected=protected, unprotected=unprot
    ), True


def _float_cbor(rng: random.Random, value: float) -> Any:
    """`value` as a CBOR float of a random width (half / single / double)."""
    width = rng.choice((2, 4, 8, 8))
    fmt = {2: (b"\xf9", ">e"), 4: (b"\xfa", ">f"), 8: (b"\xfb", ">d")}[width]
    try:
        return RawCBOR(fmt[0] + struct.pack(fmt[1], value))
    except (OverflowError, struct.error):  # too big for that width: an infinity
        return RawCBOR(fmt[0] + struct.pack(fmt[1], math.copysign(math.inf, value)))


def _time_number(rng: random.Random, base: int) -> Any:
    """An epoch time as the EU's issuers wrote them (and worse): ints, floats with
    fractions, NaN / infinities, times outside years 1..9999, text."""
    kind = rng.randrange(8)
    if kind == 0:
        return base
    if kind in (1, 2):
        return _float_cbor(rng, base + rng.random() * rng.choice((1, 0.001, 1e-9)))
    if kind == 3:
        return _float_cbor(
            rng,
            rng.choice(
                (
                    math.nan,
                    math.inf,
                    -math.inf,
                    -0.0,
                    65504.0,
                    1e300,
                    -1e300,
                    253402300799.5,
                    -62135596800.5,
                )
            ),
        )
    if kind == 4:
        return rng.choice(
            (
                253402300799,
                253402300800,
                -62135596800,
                -62135596801,
                (1 << 63) - 1,
                -(1 << 63),
                (1 << 64) - 1,
            )
        )
    if kind == 5:
        return Tagged(1, base)
    if kind == 6:
        return f"{base}.5"
    return RawCBOR(b"\xf9" + rng.randbytes(2))  # any half-precision bit pattern


def _time_field(rng: random.Random, base: int, day: bool) -> Any:
    """A value for a date / date-time field: text, tag 0 / tag 1 (with good or bad
    content), other tags, tags on tags."""
    text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(base))
    kind = rng.randrange(9)
    if kind == 0:
        return text[:10] if day else text + "Z"
    if kind == 1:
        return text + rng.choice(("Z", "+03:00", "-0530", "+01", ".123Z", "", "+24:00"))
    if kind == 2:
        return Tagged(0, text + rng.choice(("Z", "+02:00", "")))
    if kind == 3:
        return Tagged(0, rng.choice((text[:10], base, "garbage")))
    if kind == 4:
        return Tagged(1, rng.choice((base, base + 0.5, "1636977600")))
    if kind == 5:
        return Tagged(1, _time_number(rng, base))
    if kind == 6:
        return Tagged(rng.choice((2, 3, 4, 32, 100, 1004, 55799)), text)
    if kind == 7:
        return Tagged(0, Tagged(0, text + "Z"))
    return RawCBOR(b"\xc1" * rng.randrange(1, 40) + b"\x00")  # a chain of tags


def s_times_tags_resign(w: World, rng: random.Random) -> tuple[str, bool]:
    """CONTRACT 1a leniencies and their limits, re-signed: exp / iat as floats, date-times
    as tags, date-times in date fields, tagged unknown fields, crit headers."""
    cert_type = rng.choice(TYPES)
    dcc = sample_dcc(cert_type, at=NOW - rng.randrange(0, 100) * 86400)
    group = {"vaccination": "v", "test": "t", "recovery": "r"}[cert_type]
    entry = dcc[group][0]
    for key in {"v": ("dt",), "t": ("sc",), "r": ("fr", "df", "du")}[group]:
        if rng.random() < 0.6:
            entry[key] = _time_field(rng, NOW - rng.randrange(0, 30) * 86400, key != "sc")
    if rng.random() < 0.2:  # a tag on a field that allows none
        key = rng.choice(("tg", "co", "ci", "is"))
        entry[key] = Tagged(rng.choice((0, 1, 32)), entry[key])
    if rng.random() < 0.3:  # fields the schema does not name, tags and all
        where = rng.choice((dcc, dcc["nam"], entry))
        where["meta"] = rng.choice(
            (
                {"id": "X-1", "at": Tagged(0, "2021-06-15T09:24:02Z"), "n": [1, 2.5, None]},
                Tagged(rng.randrange(1 << 16), {"k": Tagged(1, _time_number(rng, NOW))}),
                RawCBOR(b"\xd8\x20" * rng.randrange(1, 20) + b"\x00"),
            )
        )
    claims: dict[int, Any] = {
        1: "RU",
        4: _time_number(rng, NOW + 200 * 86400),
        6: _time_number(rng, NOW - 3600),
        -260: {1: dcc},
    }
    if rng.random() < 0.2:
        claims[rng.choice((5, 7, 99))] = Tagged(rng.choice((0, 1, 24)), b"x")
    issuer = rng.choice(w.signers)
    protected = None
    if rng.random() < 0.25:
        crit = rng.choice(([1], [4], [1, 2, 4], [99], [], ["kid"], 4, [4, 4], [-1]))
        protected = dumps({1: issuer.cose_alg, 4: issuer.kid, 2: crit})
    try:
        payload = dumps(claims)
    except (TypeError, ValueError):
        payload = payload_of(cert_type)
    return w.token(issuer, payload, protected=protected), True


STRATEGIES: list[tuple[str, Callable[[World, random.Random], tuple[str, bool]], int]] = [
    ("base45_chars", s_base45, 16),
    ("cose_bytes", s_cose, 20),
    ("zlib_bytes", s_zlib, 8),
    ("truncate_splice", s_truncate_splice, 6),
    ("random_input", s_random, 6),
    ("cbor_structure", s_structure, 4),
    ("payload_resigned", s_payload_resign, 14),
    ("dcc_resigned", s_dcc_resign, 18),
    ("header_resigned", s_header_resign, 8),
    ("times_tags_resigned", s_times_tags_resign, 8),
]
_NAMES = [s[0] for s in STRATEGIES]
_FUNCS = [s[1] for s in STRATEGIES]
_WEIGHTS = [s[2] for s in STRATEGIES]


# -- the oracle and the checks --------------------------------------------------------------


def signature_verifies(trust: TrustRegistry, token: str) -> bool:
    """Independent check (cbor2 + the registry's keys) that the token's signature holds."""
    try:
        msg = cbor2.loads(unhc1(token))
        for tag in (61, 18):
            if isinstance(msg, cbor2.CBORTag) and msg.tag == tag:
                msg = msg.value
        protected, unprotected, payload, signature = msg
        header = cbor2.loads(protected) if protected else {}
        kid = header.get(4, unprotected.get(4) if isinstance(unprotected, dict) else None)
        if not isinstance(kid, bytes):
            return False
        data = sig_structure(protected, payload)
        return any(k.verify(header[1], signature, data) for k in trust.candidates(kid))
    except Exception:  # noqa: BLE001 - anything unreadable is unverified
        return False


def problem(w: World, verdict: Any, token: str, resigned: bool) -> str | None:
    if not isinstance(verdict, Verdict):
        return f"verify returned {type(verdict).__name__}, not a Verdict"
    reason = verdict.reason
    if reason is not None and (not isinstance(reason, Reason) or reason.value not in CONTRACT):
        return f"reason outside the contract: {reason!r}"
    d = verdict.to_dict()
    if "holder" in d and not resigned and not signature_verifies(w.trust, token):
        return "holder shown although the signature does not verify"
    if "holder" in d and resigned and reason in (Reason.UNKNOWN_KEY, Reason.BAD_SIGNATURE):
        return f"holder shown with reason {reason.value}"
    return None


# -- running ------------------------------------------------------------------------------


@dataclass
class Result:
    count: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    strategies: Counter[str] = field(default_factory=Counter)
    strategy_valid: Counter[str] = field(default_factory=Counter)
    failures: int = 0
    examples: list[str] = field(default_factory=list)
    verify_seconds: float = 0.0
    slowest: float = 0.0

    def merge(self, other: Result) -> None:
        self.count += other.count
        self.reasons.update(other.reasons)
        self.strategies.update(other.strategies)
        self.strategy_valid.update(other.strategy_valid)
        self.failures += other.failures
        room = MAX_FAILURE_EXAMPLES - len(self.examples)
        self.examples.extend(other.examples[: max(room, 0)])
        self.verify_seconds += other.verify_seconds
        self.slowest = max(self.slowest, other.slowest)


_WORLD: World | None = None


def _world() -> World:
    global _WORLD
    if _WORLD is None:
        _WORLD = World()
    return _WORLD


def run_chunk(job: tuple[int, int, int]) -> Result:
    """Fuzz `count` tokens with a generator seeded from (seed, chunk index)."""
    seed, index, count = job
    w = _world()
    rng = random.Random(seed * 1_000_003 + index)
    verify_plain = w.verifier.verify
    verify_store = w.verifier_store.verify
    clock = time.perf_counter
    res = Result()
    for _ in range(count):
        k = rng.choices(range(len(_FUNCS)), _WEIGHTS)[0]
        name = _NAMES[k]
        try:
            token, resigned = _FUNCS[k](w, rng)
        except Exception as exc:  # noqa: BLE001 - a generator bug, not a verifier bug
            res.failures += 1
            res.examples.append(f"[{name}] generator raised {type(exc).__name__}: {exc}")
            continue
        verify = verify_store if rng.random() < 0.3 else verify_plain
        t0 = clock()
        try:
            verdict = verify(token, NOW)
        except BaseException as exc:  # noqa: BLE001 - exactly what we hunt for
            if isinstance(exc, KeyboardInterrupt):
                raise
            elapsed = clock() - t0
            res.failures += 1
            if len(res.examples) < MAX_FAILURE_EXAMPLES:
                res.examples.append(
                    f"[{name}] {type(exc).__name__}: {exc!s:.200} token={token[:120]!r}"
                )
            res.count += 1
            res.strategies[name] += 1
            res.reasons["<exception>"] += 1
            continue
        elapsed = clock() - t0
        res.verify_seconds += elapsed
        res.slowest = max(res.slowest, elapsed)
        res.count += 1
        res.strategies[name] += 1
        label = "valid" if verdict.reason is None else verdict.reason.value
        res.reasons[label] += 1
        if verdict.reason is None:
            res.strategy_valid[name] += 1
        issue = problem(w, verdict, token, resigned)
        if issue is None and verify is verify_plain:
            other = w.verifier_other.verify(token, NOW)
            if other.to_dict() != verdict.to_dict():
                issue = f"signature backends disagree ({w.verifier.signatures} vs cryptography)"
        if issue is not None:
            res.failures += 1
            if len(res.examples) < MAX_FAILURE_EXAMPLES:
                res.examples.append(f"[{name}] {issue} (reason {label}) token={token[:120]!r}")
    return res


def jobs(seed: int, count: int) -> list[tuple[int, int, int]]:
    out = []
    for i, start in enumerate(range(0, count, CHUNK)):
        out.append((seed, i, min(CHUNK, count - start)))
    return out


def summary(res: Result, wall: float, workers: int) -> str:
    lines = [
        f"fuzz: {res.count:,} tokens, {workers} worker(s), {wall:.1f} s wall, "
        f"{res.count / wall:,.0f} tokens/s; verify alone "
        f"{1e6 * res.verify_seconds / max(res.count, 1):.1f} us/token on average, "
        f"slowest {1e3 * res.slowest:.2f} ms",
        "",
        f"{'outcome':<26}{'count':>12}{'share':>9}",
    ]
    for reason, n in sorted(res.reasons.items(), key=lambda kv: (-kv[1], kv[0])):
        lines.append(f"{reason:<26}{n:>12,}{100 * n / max(res.count, 1):>8.2f}%")
    unseen = sorted(CONTRACT - set(res.reasons))
    lines += [
        "",
        f"contract reasons never produced: {', '.join(unseen) or 'none'}",
        "",
        f"{'strategy':<26}{'tokens':>12}{'valid':>9}",
    ]
    for name in _NAMES:
        lines.append(f"{name:<26}{res.strategies[name]:>12,}{res.strategy_valid[name]:>9,}")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    child = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    lines += [
        "",
        f"max RSS: main {rss / 1024:.0f} MiB, largest worker {child / 1024:.0f} MiB",
        f"failures: {res.failures}",
    ]
    lines += [f"  {e}" for e in res.examples]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--count", type=int, default=1_000_000, help="tokens to verify")
    ap.add_argument("--seed", type=int, default=1, help="random seed (reproducible runs)")
    ap.add_argument("--workers", type=int, default=1, help="processes")
    ap.add_argument("--quiet", action="store_true", help="no progress lines")
    args = ap.parse_args(argv)
    if args.count < 1 or not 1 <= args.workers <= 64:
        ap.error("--count must be >= 1 and --workers 1..64")
    print(f"fuzz: decoder {fastpath._decode.__file__}", flush=True)
    print(f"fuzz: {args.count:,} tokens, seed {args.seed}, {args.workers} worker(s)", flush=True)
    total = Result()
    started = time.perf_counter()
    last_print = 0.0
    work = jobs(args.seed, args.count)

    def progress(res: Result) -> None:
        nonlocal last_print
        total.merge(res)
        now = time.perf_counter()
        if not args.quiet and (now - last_print > 10 or total.count == args.count):
            last_print = now
            el = now - started
            print(
                f"  {total.count:>10,}/{args.count:,}  {el:7.1f} s  "
                f"{total.count / el:8,.0f} tokens/s  failures {total.failures}",
                flush=True,
            )

    if args.workers == 1:
        for job in work:
            progress(run_chunk(job))
    else:
        ctx = mp.get_context("fork")
        with ctx.Pool(args.workers, maxtasksperchild=50) as pool:
            for res in pool.imap_unordered(run_chunk, work):
                progress(res)
    wall = time.perf_counter() - started
    print(summary(total, wall, args.workers), flush=True)
    return 1 if total.failures else 0


if __name__ == "__main__":
    sys.exit(main())
