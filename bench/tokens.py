"""Token mixes for the load benchmarks: pools of HC1 tokens, each with its expected verdict.

`build_workdir(dir, ...)` writes into `dir`:

    trust.json              the issuer (and nothing else) the service trusts
    revocations.json        revoked hashes (UCI, COUNTRYCODEUCI and SIGNATURE kinds) and the
                            registry set (UCI hashes of every recovery and test certificate)
    push_revocations.json   revocations added later by `qrverify sync` (the sync scenario)
    pools.json              {"pools": {name: [[token, status, reason], ...]}, ...}
    records.jsonl           register records for the link pools (`serve --records`)

Pools: `valid` (vaccination, recovery and test, in proportion), `expired` (CWT exp in the
past), `revoked`, `forged` (signed by an untrusted key that claims the real issuer's kid:
`bad_signature`), `garbage` (unreadable codes: `bad_prefix`, `bad_base45`,
`bad_compression`) and `revoke_later` (valid until the sync scenario revokes them). A
re-scan is not a pool: the picker repeats one of the last valid tokens it handed out.

Every expected verdict is checked against an in-process `Verifier` before the load starts,
so a wrong expectation is a bug in this file, reported at once, not a load failure.
The tokens carry a fixed made-up name; no real personal data.

Register links (CONTRACT 1b), in pools of their own: `link_valid`, `link_expired`,
`link_revoked`, `link_unknown` (no record, or a wrong ck: `not_found`) and `link_bad`
(malformed, or a look-alike foreign host: `bad_link`). `MOSCOW_MIX` is the venue mix
of Moscow and the default of `python -m bench`: most guests (71 %) carry a register link,
foreign guests an EU certificate; `DEFAULT_MIX` is the EU-certificate-only mix of before.
`kind_group` names the kind of code a pool holds ("link" or "eu"); `without_links` is a
mix for a service without register records.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import random
import secrets
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "DEFAULT_MIX",
    "LINK_KINDS",
    "MIX_KINDS",
    "MOSCOW_MIX",
    "Mix",
    "Picker",
    "Pools",
    "build_workdir",
    "check_expectations",
    "expected_for",
    "group_shares",
    "inprocess_rate",
    "kind_group",
    "load_pools",
    "only_group",
    "parse_mix",
    "without_links",
]

# Share of scans of each kind, in percent (any positive weights; normalised).
DEFAULT_MIX: dict[str, float] = {
    "valid": 80.0,
    "rescan": 8.0,
    "expired": 4.0,
    "revoked": 3.0,
    "forged": 2.0,
    "garbage": 3.0,
}
LINK_KINDS = ("link_valid", "link_expired", "link_revoked", "link_unknown", "link_bad")
MIX_KINDS = (
    "valid",
    "rescan",
    "expired",
    "revoked",
    "forged",
    "garbage",
    "revoke_later",
    *LINK_KINDS,
)
# Moscow: most guests carry a register link, foreign guests an EU certificate.
MOSCOW_MIX: dict[str, float] = {
    "link_valid": 62.0,
    "valid": 15.0,
    "rescan": 8.0,
    "link_expired": 3.0,
    "link_revoked": 2.0,
    "link_unknown": 2.0,
    "link_bad": 2.0,
    "expired": 2.0,
    "revoked": 1.0,
    "forged": 1.0,
    "garbage": 2.0,
}
GROUPS = ("link", "eu")  # register links, EU certificates (and unreadable codes)


def kind_group(kind: str) -> str:
    """ "link" for the register-link pools, "eu" for the HC1 pools and unreadable codes."""
    return "link" if kind in LINK_KINDS else "eu"


def without_links(mix: Mapping[str, float]) -> Mix:
    """The mix with the register-link kinds left out (a service without records)."""
    out = {k: w for k, w in mix.items() if k not in LINK_KINDS}
    if not any(out.values()):
        raise ValueError("the mix has no EU-certificate kind left without the links")
    return out


def only_group(mix: Mapping[str, float], group: str) -> Mix:
    """The part of a mix of one group ("link" or "eu"); empty when it has none."""
    return {k: w for k, w in mix.items() if w > 0 and kind_group(k) == group}


def group_shares(mix: Mapping[str, float]) -> dict[str, float]:
    """Share (0..1) of each group in a mix's weights."""
    total = sum(w for w in mix.values() if w > 0)
    return {
        g: (
            sum(w for k, w in mix.items() if w > 0 and kind_group(k) == g) / total if total else 0.0
        )
        for g in GROUPS
    }


# Share of valid certificates by type (a Moscow evening: mostly vaccinated guests).
TYPE_SHARE = {"vaccination": 0.7, "test": 0.2, "recovery": 0.1}
REVOKE_GRACE = 1.0  # seconds after the push during which "valid" is still acceptable
RESCAN_WINDOW = 64  # a re-scan repeats one of the last N valid guests
Entry = tuple[str, str, "str | None"]  # (token, expected status, expected reason)
Mix = dict[str, float]


def parse_mix(text: str) -> Mix:
    """`valid=80,rescan=8,...` -> weights. Unknown kinds, negatives or an all-zero mix raise."""
    mix: Mix = {}
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        name, sep, value = part.partition("=")
        name = name.strip()
        if not sep or name not in MIX_KINDS:
            raise ValueError(
                f"mix entry {part!r}: expected KIND=WEIGHT, KIND one of {', '.join(MIX_KINDS)}"
            )
        try:
            weight = float(value)
        except ValueError:
            raise ValueError(f"mix entry {part!r}: weight is not a number") from None
        if not weight >= 0 or weight == float("inf"):
            raise ValueError(f"mix entry {part!r}: weight must be a finite number >= 0")
        mix[name] = weight
    if not any(mix.values()):
        raise ValueError("the mix has no positive weight")
    return mix


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _h16(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()[:16]


def _issue(
    issuer: Any, cert_type: str, now: int, *, iat: int, exp: int, signer: Any = None
) -> tuple[str, dict[str, Any]]:
    from keys.cose import sign1
    from keys.samples import sample_dcc
    from keys.token import cwt_bytes, hc1_from_cose

    dcc = sample_dcc(cert_type, at=now, name="TESTOV TEST", dob="1985-05-05")
    payload = cwt_bytes(dcc, iat=iat, exp=exp, iss=issuer.country)
    cose = sign1(payload, signer or issuer, kid=issuer.kid)
    return hc1_from_cose(cose), dcc


def _ci(dcc: Mapping[str, Any]) -> str:
    for group in ("v", "t", "r"):
        if group in dcc:
            return str(dcc[group][0]["ci"])
    raise ValueError("payload without certificate entry")


def _garbage(rng: random.Random) -> Entry:
    from keys import base45

    kind = rng.randrange(3)
    if kind == 0:  # a QR code that is not a health certificate at all (a menu's link:
        # a link to a site other than the register's is bad_link, "a foreign site")
        text = "https://example.org/menu?table=" + str(rng.randrange(100))
        return (text, "invalid", "bad_link")
    if kind == 1:  # HC1 prefix, characters outside the Base45 alphabet
        return (
            "HC1:" + "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(60)),
            "invalid",
            "bad_base45",
        )
    junk = bytes(rng.randrange(256) for _ in range(80))  # Base45 fine, not zlib
    return ("HC1:" + base45.encode(b"\x00\x01" + junk), "invalid", "bad_compression")


@dataclass
class Pools:
    """Token pools by kind; each entry is (token, expected status, expected reason)."""

    pools: dict[str, list[Entry]]
    meta: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> bytes:
        return json.dumps(
            {"pools": {k: [list(e) for e in v] for k, v in self.pools.items()}, "meta": self.meta}
        ).encode("utf-8")


def load_pools(path: str | os.PathLike[str]) -> Pools:
    obj = json.loads(Path(path).read_bytes())
    pools = {k: [(str(e[0]), str(e[1]), e[2]) for e in v] for k, v in obj["pools"].items()}
    return Pools(pools, obj.get("meta", {}))


def build_workdir(
    directory: str | os.PathLike[str],
    *,
    valid: int = 2000,
    other: int = 100,
    revoke_later: int = 50,
    seed: int = 1,
    check: bool = True,
) -> Pools:
    """Create issuer, trust file, revocation files and token pools in `directory`."""
    from keys.issuer import Issuer

    base = Path(directory)
    base.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    now = int(time.time())
    issuer = Issuer.generate("RU", "ES256", None, days=1500, not_before=now - 800 * 86400)
    forger = Issuer.generate("RU", "ES256", None, days=1500, not_before=now - 800 * 86400)
    year = 365 * 86400
    types = list(TYPE_SHARE)
    weights = [TYPE_SHARE[t] for t in types]
    registry: list[bytes] = []

    def fresh(cert_type: str) -> tuple[str, dict[str, Any]]:
        token, dcc = _issue(issuer, cert_type, now, iat=now - 3600, exp=now + year)
        if cert_type != "vaccination":
            registry.append(_h16(_ci(dcc).encode("utf-8")))
        return token, dcc

    pools: dict[str, list[Entry]] = {k: [] for k in MIX_KINDS if k != "rescan"}
    for _ in range(valid):
        token, _dcc = fresh(rng.choices(types, weights)[0])
        pools["valid"].append((token, "valid", None))
    revoked_entries: list[dict[str, str]] = []
    for i in range(other):
        token, dcc = fresh(types[i % 3])
        kind = ("UCI", "COUNTRYCODEUCI", "SIGNATURE")[i % 3]
        if kind == "UCI":
            digest = _h16(_ci(dcc).encode("utf-8"))
        elif kind == "COUNTRYCODEUCI":
            digest = _h16((issuer.country + _ci(dcc)).encode("utf-8"))
        else:
            digest = _sig_hash(token)
        revoked_entries.append({"type": kind, "hash": _b64(digest)})
        pools["revoked"].append((token, "invalid", "revoked"))
    later: list[dict[str, str]] = []
    for i in range(revoke_later):
        token, dcc = fresh(types[i % 3])
        later.append({"type": "UCI", "hash": _b64(_h16(_ci(dcc).encode("utf-8")))})
        pools["revoke_later"].append((token, "valid", None))
    for i in range(other):
        token, _ = _issue(
            issuer, types[i % 3], now - 400 * 86400, iat=now - 400 * 86400, exp=now - 2 * 86400
        )
        pools["expired"].append((token, "invalid", "token_expired"))
        token, _ = _issue(issuer, types[i % 3], now, iat=now - 3600, exp=now + year, signer=forger)
        pools["forged"].append((token, "invalid", "bad_signature"))
        pools["garbage"].append(_garbage(rng))
    _link_pools(base, pools, rng, valid=valid, other=other)
    _write(base / "trust.json", {"keys": [issuer.trust_entry()]})
    _write(
        base / "revocations.json",
        {"revoked": revoked_entries, "registry": [_b64(h) for h in registry]},
    )
    _write(base / "push_revocations.json", {"revoked": later})
    result = Pools(pools, {"created": now, "seed": seed})
    (base / "pools.json").write_bytes(result.to_json())
    if check:
        check_expectations(base, result)
    return result


def _link_pools(
    base: Path, pools: dict[str, list[Entry]], rng: random.Random, *, valid: int, other: int
) -> None:
    """Register records (records.jsonl) and the link pools that scan them."""
    import datetime as dt

    from keys.link_records import record_link, sample_record

    today = dt.datetime.now(dt.timezone(dt.timedelta(hours=3))).date()
    types = ("vaccination", "vaccination", "vaccination", "test", "recovery")
    lines: list[bytes] = []
    for i in range(valid):
        rec = sample_record(types[i % len(types)], today=today)
        lines.append(json.dumps(rec, ensure_ascii=False).encode("utf-8"))
        pools["link_valid"].append((record_link(rec), "valid", None))
    for i in range(other):
        old = sample_record("test", today=today - dt.timedelta(days=30 + i % 30))
        revoked = sample_record("vaccination", today=today, status="revoked")
        lines += [json.dumps(r, ensure_ascii=False).encode("utf-8") for r in (old, revoked)]
        pools["link_expired"].append((record_link(old), "invalid", "token_expired"))
        pools["link_revoked"].append((record_link(revoked), "invalid", "revoked"))
        unknown = record_link(sample_record("vaccination", today=today))
        if i % 2 and pools["link_valid"]:  # a real record's id with a wrong ck
            real = pools["link_valid"][i % len(pools["link_valid"])][0]
            unknown = real[:-32] + "".join(rng.choice("0123456789abcdef") for _ in range(32))
        pools["link_unknown"].append((unknown, "invalid", "not_found"))
        good = record_link(sample_record("vaccination", today=today))
        bad = (
            good.replace("www.gosuslugi.ru", "www.gosuslugi.ru.example.com"),
            good.replace("gosuslugi", "g\u043esuslugi"),  # a Cyrillic o
            good[:-3],
            good.replace("/verify/", "/verify/x"),
        )[i % 4]
        pools["link_bad"].append((bad, "invalid", "bad_link"))
    tmp = base / "records.jsonl.tmp"
    tmp.write_bytes(b"\n".join(lines) + b"\n")
    os.replace(tmp, base / "records.jsonl")


def _sig_hash(token: str) -> bytes:
    import fastpath

    digest = fastpath.decode(token).sig_hash
    if digest is None:
        raise ValueError("token has no signature hash")
    return bytes(digest)


def _write(path: Path, obj: Any) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(json.dumps(obj).encode("utf-8"))
    os.replace(tmp, path)


def check_expectations(directory: Path, pools: Pools) -> None:
    """Raise ValueError naming the pool when an in-process Verifier disagrees."""
    from verifier import Verifier

    records = directory / "records.jsonl"
    v = Verifier.from_files(
        trust=str(directory / "trust.json"),
        revocations=str(directory / "revocations.json"),
        cache_size=0,
        records=str(records) if records.exists() else None,
    )
    try:
        for name, entries in pools.pools.items():
            for token, status, reason in entries:
                got = v.verify(token)
                got_reason = None if got.reason is None else str(got.reason.value)
                if (got.status, got_reason) != (status, reason):
                    raise ValueError(
                        f"pool {name}: expected {status}/{reason}, "
                        f"the verifier says {got.status}/{got_reason}"
                    )
    finally:
        v.store.close()


def expected_for(
    kind: str, status: str, reason: str | None, push: dict[str, float], now: float
) -> tuple[set[tuple[str, str | None]], bool]:
    """Acceptable (status, reason) pairs at `now`, and whether "valid" is a late revocation.

    A `revoke_later` token is valid before the push starts, either during the push and
    REVOKE_GRACE seconds after its end, and must be refused as revoked from then on.
    """
    if kind != "revoke_later" or "start" not in push:
        return {(status, reason)}, False
    end = push.get("end")
    if end is not None and now > end + REVOKE_GRACE:
        return {("invalid", "revoked")}, True
    return {(status, reason), ("invalid", "revoked")}, False


class Picker:
    """Hands out (token, status, reason, kind) following a mix; not thread-safe (gevent ok).

    `valid` walks through the pool in order (fresh guests; wraps around), `rescan` repeats
    one of the last valid tokens, other kinds pick at random from their pool.
    """

    def __init__(
        self, pools: Pools, mix: Mapping[str, float], seed: int | None = None, start: int = 0
    ) -> None:
        kinds = [k for k, w in mix.items() if w > 0]
        for k in kinds:
            if k != "rescan" and not pools.pools.get(k):
                raise ValueError(f"the mix uses {k!r} but that pool is empty")
        self.pools = pools.pools
        self.kinds = kinds
        self.weights = [mix[k] for k in kinds]
        self.rng = random.Random(secrets.randbits(32) if seed is None else seed)
        self.next_valid = start % max(1, len(self.pools.get("valid", ())))
        self.recent: deque[Entry] = deque(maxlen=RESCAN_WINDOW)

    def pick(self) -> tuple[str, str, str | None, str]:
        kind = self.rng.choices(self.kinds, self.weights)[0]
        if kind == "rescan" and self.recent:
            entry = self.rng.choice(self.recent)
        elif kind in ("valid", "rescan"):
            kind = "valid"
            pool = self.pools["valid"]
            entry = pool[self.next_valid]
            self.next_valid = (self.next_valid + 1) % len(pool)
            self.recent.append(entry)
        else:
            entry = self.rng.choice(self.pools[kind])
        return entry[0], entry[1], entry[2], kind


def inprocess_rate(
    directory: Path,
    pools: Pools,
    mix: Mapping[str, float],
    *,
    seconds: float = 2.0,
    max_scans: int = 2_000_000,
) -> dict[str, float]:
    """Verifier.verify per second in this process on the same mix (server defaults, cache on)."""
    from verifier import Verifier

    records = directory / "records.jsonl"
    v = Verifier.from_files(
        trust=str(directory / "trust.json"),
        revocations=str(directory / "revocations.json"),
        records=str(records) if records.exists() else None,
    )
    try:
        picker = Picker(pools, mix, seed=7)
        # Longer than the re-scan cache, so fresh guests stay uncached as in the service.
        tokens = [picker.pick()[0] for _ in range(100_000)]
        verify = v.verify
        n = 0
        start = time.perf_counter()
        deadline = start + seconds
        while n < max_scans:
            i = n % len(tokens)
            chunk = tokens[i : i + 500]
            for token in chunk:
                verify(token)
            n += len(chunk)
            if time.perf_counter() >= deadline:
                break
        elapsed = time.perf_counter() - start
    finally:
        v.store.close()
    return {"verifies": n, "seconds": elapsed, "rate": n / elapsed if elapsed > 0 else 0.0}
