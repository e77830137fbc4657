#!/usr/bin/env python3
"""Generate the qrverify test vectors: `python tests/vectors/generate.py`.

Writes, next to this script:
  vectors.json      the vectors: [{"name", "token", "at", "rules", "trust", "revocations",
                    "expect": {"status", "reason", optional "holder", "certificate"}}]
  trust.json        the trust registry every vector uses (CONTRACT section 4)
  revocations.json  revoked hashes (UCI, COUNTRYCODEUCI, SIGNATURE) and a registry set
  keys/<name>/      the development issuers (issuer.key + issuer.crt), created on the
                    first run and reused afterwards so that trust.json stays stable.

Times are fixed in 2021-2022 and every vector carries its own `at`, so vectors never
expire. Signatures (ECDSA, PSS) are randomised, so tokens differ between runs; the
expectations do not. Malformed tokens are built step by step from keys.cbor / keys.cose.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import math
import random
import struct
import sys
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
try:  # prefer the installed build; fall back to the source tree
    from keys import base45 as _probe  # noqa: F401
except ImportError:  # (tests/vectors/keys/ alone is a namespace package, not ours)
    sys.modules.pop("keys", None)
    sys.path.insert(0, str(ROOT))

from cryptography import x509  # noqa: E402
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID  # noqa: E402

from keys import base45  # noqa: E402
from keys.cbor import RawCBOR, Tagged, dumps  # noqa: E402
from keys.cose import sig_structure  # noqa: E402
from keys.issuer import KEY_FILE, Issuer, load_issuer  # noqa: E402

KEYS_DIR = HERE / "keys"
TRUST_FILE = "trust.json"
REVOCATIONS_FILE = "revocations.json"
VECTORS_FILE = "vectors.json"

DAY = 86400
HOUR = 3600


def epoch(text: str) -> int:
    return int(dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp())


def iso(ts: int) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def date(ts: int) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%d")


T = epoch("2021-11-15T12:00:00Z")  # the default verification instant
MIDNIGHT = epoch("2021-11-15T00:00:00Z")
IAT = T - DAY
EXP = epoch("2022-12-31T00:00:00Z")  # long enough for every rule boundary below
CERT_START = epoch("2021-01-01T00:00:00Z")
CERT_DAYS = 3650
SHORT_START = epoch("2021-06-01T00:00:00Z")
SHORT_DAYS = 183  # -> 2021-12-01T00:00:00Z
BARE_NB = "2021-01-01T00:00:00Z"
BARE_NA = "2023-06-01T00:00:00Z"
COLLIDING_KID = b"collide!"
BARE_KID = b"bare-recovery-01"

HOLDER = {"name": "Иванов Иван", "name_latin": "IVANOV<IVAN", "dob": "1980-01-01"}
ALT_ARC_VACCINATION = "1.3.6.1.4.1.0.1847.2021.1.2"


# -- issuers ---------------------------------------------------------------------------


def _eku_issuer(common_name: str, eku: x509.ObjectIdentifier) -> Issuer:
    """An ES256 issuer whose certificate carries one given extended key usage OID."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "RU"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )
    start = dt.datetime.fromtimestamp(CERT_START, dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=CERT_DAYS))
        .add_extension(x509.ExtendedKeyUsage([eku]), critical=False)
        .sign(key, hashes.SHA256())
    )
    return Issuer.from_parts(key, cert)


def _alt_arc_issuer() -> Issuer:
    """Vaccination only, with the EKU on the alternative EU arc (1.3.6.1.4.1.0.1847...)."""
    return _eku_issuer(
        "qrverify vectors alt-arc vaccination issuer", x509.ObjectIdentifier(ALT_ARC_VACCINATION)
    )


def _other_eku_issuer() -> Issuer:
    """An EKU holding no EU OID (serverAuth): may sign every type."""
    return _eku_issuer("qrverify vectors server-auth EKU issuer", ExtendedKeyUsageOID.SERVER_AUTH)


ISSUER_SPECS: dict[str, Callable[[], Issuer]] = {
    "es256": lambda: Issuer.generate("RU", "ES256", None, CERT_DAYS, CERT_START),
    "ps256": lambda: Issuer.generate("RU", "PS256", None, CERT_DAYS, CERT_START),
    "eddsa": lambda: Issuer.generate("RU", "EdDSA", None, CERT_DAYS, CERT_START),
    "de_es256": lambda: Issuer.generate("DE", "ES256", None, CERT_DAYS, CERT_START),
    "test_only": lambda: Issuer.generate("RU", "ES256", ["test"], CERT_DAYS, CERT_START),
    "vaccination_alt_arc": _alt_arc_issuer,
    "other_eku": _other_eku_issuer,
    "short_validity": lambda: Issuer.generate("RU", "ES256", None, SHORT_DAYS, SHORT_START),
    "untrusted": lambda: Issuer.generate("RU", "ES256", None, CERT_DAYS, CERT_START),
    "collide_a": lambda: Issuer.generate("RU", "ES256", None, CERT_DAYS, CERT_START),
    "collide_b": lambda: Issuer.generate("RU", "ES256", None, CERT_DAYS, CERT_START),
    "collide_c": lambda: Issuer.generate("RU", "ES256", None, CERT_DAYS, CERT_START),
    "bare_recovery": lambda: Issuer.generate("RU", "ES256", None, CERT_DAYS, CERT_START),
}


def load_issuers() -> dict[str, Issuer]:
    """Load the stored issuers; create (and store) any that are missing."""
    out: dict[str, Issuer] = {}
    for name, make in ISSUER_SPECS.items():
        directory = KEYS_DIR / name
        if (directory / KEY_FILE).exists():
            out[name] = load_issuer(directory)
        else:
            issuer = make()
            issuer.save(directory)
            out[name] = issuer
    return out


def _spki_b64(issuer: Issuer) -> str:
    spki = issuer.private_key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(spki).decode("ascii")


def trust_document(iss: dict[str, Issuer]) -> dict[str, Any]:
    cert_based = [
        "es256",
        "ps256",
        "eddsa",
        "de_es256",
        "test_only",
        "vaccination_alt_arc",
        "other_eku",
        "short_validity",
    ]
    keys: list[dict[str, Any]] = [iss[n].trust_entry() for n in cert_based]
    # Two bare keys sharing one kid: a token signed by the SECOND must verify.
    for name in ("collide_a", "collide_b"):
        keys.append(
            {
                "public_key": _spki_b64(iss[name]),
                "kid": base64.b64encode(COLLIDING_KID).decode("ascii"),
                "country": "RU",
            }
        )
    keys.append(
        {
            "public_key": _spki_b64(iss["bare_recovery"]),
            "kid": base64.b64encode(BARE_KID).decode("ascii"),
            "country": "RU",
            "types": ["recovery"],
            "not_before": BARE_NB,
            "not_after": BARE_NA,
        }
    )
    return {"keys": keys}


# -- payloads --------------------------------------------------------------------------

_serial = [0]


def next_ci(country: str = "RU") -> str:
    _serial[0] += 1
    return f"URN:UVCI:01:{country}:VECTORS{_serial[0]:05d}"


def names() -> dict[str, str]:
    return {"fn": "Иванов", "fnt": "IVANOV", "gn": "Иван", "gnt": "IVAN"}


def vaccination(
    dt_: int = MIDNIGHT - 30 * DAY, dn: int = 2, sd: int = 2, ci: str | None = None, co: str = "RU"
) -> dict[str, Any]:
    entry = {
        "tg": "840539006",
        "vp": "J07BX03",
        "mp": "Sputnik-V",
        "ma": "Gamaleya-Research-Institute",
        "dn": dn,
        "sd": sd,
        "dt": date(dt_),
        "co": co,
        "is": "Ministry of Health of the Russian Federation",
        "ci": ci or next_ci(co),
    }
    return {"ver": "1.3.0", "nam": names(), "dob": "1980-01-01", "v": [entry]}


def test(
    sc: int = T - 2 * HOUR,
    tr: str = "260415000",
    tt: str = "LP6464-4",
    ci: str | None = None,
    sc_text: str | None = None,
) -> dict[str, Any]:
    entry = {
        "tg": "840539006",
        "tt": tt,
        "nm": "SARS-CoV-2 RT-PCR",
        "sc": sc_text or iso(sc),
        "tr": tr,
        "tc": "Moscow City Diagnostic Laboratory",
        "co": "RU",
        "is": "Ministry of Health of the Russian Federation",
        "ci": ci or next_ci(),
    }
    return {"ver": "1.3.0", "nam": names(), "dob": "1980-01-01", "t": [entry]}


def recovery(
    fr: int = MIDNIGHT - 30 * DAY,
    df: int | None = None,
    du: int | None = None,
    ci: str | None = None,
) -> dict[str, Any]:
    entry = {
        "tg": "840539006",
        "fr": date(fr),
        "co": "RU",
        "is": "Ministry of Health of the Russian Federation",
        "df": date(fr + 11 * DAY if df is None else df),
        "du": date(fr + 180 * DAY if du is None else du),
        "ci": ci or next_ci(),
    }
    return {"ver": "1.3.0", "nam": names(), "dob": "1980-01-01", "r": [entry]}


def claims(
    dcc: Any, *, iat: int | None = IAT, exp: int | None = EXP, iss: str | None = "RU"
) -> bytes:
    """CBOR of {1: iss, 4: exp, 6: iat, -260: {1: dcc}}; None claims are left out."""
    c: dict[int, Any] = {}
    if iss is not None:
        c[1] = iss
    if exp is not None:
        c[4] = exp
    if iat is not None:
        c[6] = iat
    c[-260] = {1: dcc}
    return dumps(c)


# -- COSE / HC1 building ---------------------------------------------------------------


class Signed:
    """A COSE_Sign1 built by `sign`: its bytes and raw signature."""

    def __init__(self, cose: bytes, signature: bytes) -> None:
        self.cose = cose
        self.signature = signature

    @property
    def token(self) -> str:
        return hc1(self.cose)


def sign(
    issuer: Issuer,
    payload: bytes,
    *,
    kid: Any = "issuer",
    unprot_kid: Any = None,
    form: str = "tag18",
    alg: int | None = None,
    protected: bytes | None = None,
    unprotected: Any = None,
) -> Signed:
    """Sign `payload`; kid="issuer" puts the issuer's kid in the protected header.

    `protected` / `unprotected` override the headers with raw bytes / any CBOR value.
    """
    if protected is None:
        pmap: dict[int, Any] = {1: issuer.cose_alg if alg is None else alg}
        if kid == "issuer":
            kid = issuer.kid
        if kid is not None:
            pmap[4] = kid
        protected = dumps(pmap)
    if unprotected is None:
        unprotected = {} if unprot_kid is None else {4: unprot_kid}
    signature = issuer.sign(sig_structure(protected, payload))
    msg: Any = [protected, unprotected, payload, signature]
    if form == "tag18":
        msg = Tagged(18, msg)
    elif form == "tag61":
        msg = Tagged(61, Tagged(18, msg))
    elif form != "untagged":
        raise ValueError(form)
    return Signed(dumps(msg), signature)


def hc1(cose: bytes) -> str:
    return "HC1:" + base45.encode(zlib.compress(cose, 9))


def hc1_zlib(compressed: bytes) -> str:
    return "HC1:" + base45.encode(compressed)


def h16(text: str | bytes) -> bytes:
    data = text.encode("utf-8") if isinstance(text, str) else text
    return hashlib.sha256(data).digest()[:16]


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


# -- the vector list -------------------------------------------------------------------


class Builder:
    def __init__(self) -> None:
        self.vectors: list[dict[str, Any]] = []
        self.revoked: list[dict[str, str]] = []
        self.registry: list[str] = []

    def add(
        self,
        name: str,
        token: str,
        reason: str | None,
        *,
        at: int = T,
        rules: Any = "venue",
        revocations: bool = False,
        holder: dict[str, str] | None = None,
        certificate: dict[str, str] | None = None,
        field: str | None = None,
    ) -> None:
        """`field`: for bad_payload, the payload field the decoder names in its detail."""
        if any(v["name"] == name for v in self.vectors):
            raise ValueError(f"duplicate vector name {name}")
        expect: dict[str, Any] = {
            "status": "valid" if reason is None else "invalid",
            "reason": reason,
        }
        if field is not None:
            expect["field"] = field
        if holder is not None:
            expect["holder"] = holder
        if certificate is not None:
            expect["certificate"] = certificate
        self.vectors.append(
            {
                "name": name,
                "token": token,
                "at": iso(at),
                "rules": rules,
                "trust": TRUST_FILE,
                "revocations": REVOCATIONS_FILE if revocations else None,
                "expect": expect,
            }
        )

    def revoke(self, kind: str, digest: bytes) -> None:
        self.revoked.append({"type": kind, "hash": b64(digest)})

    def register(self, ci: str) -> None:
        self.registry.append(b64(h16(ci)))


def cert(kind: str, until: int, issuer: str = "RU") -> dict[str, str]:
    return {"type": kind, "issuer": issuer, "valid_until": iso(until)}


def build(iss: dict[str, Issuer]) -> Builder:  # noqa: PLR0915 - one flat list on purpose
    b = Builder()
    es, ps, ed = iss["es256"], iss["ps256"], iss["eddsa"]

    def tok(dcc: Any, issuer: Issuer = es, **kw: Any) -> str:
        ckw = {k: kw.pop(k) for k in ("iat", "exp", "iss") if k in kw}
        return sign(issuer, claims(dcc, **ckw), **kw).token

    # ---- every algorithm, every type ------------------------------------------------
    vacc_end = MIDNIGHT - 30 * DAY + 365 * DAY
    for alg, issuer in (("es256", es), ("ps256", ps), ("eddsa", ed)):
        b.add(
            f"valid_vaccination_{alg}",
            tok(vaccination(), issuer),
            None,
            holder=HOLDER,
            certificate=cert("vaccination", vacc_end),
        )
    b.add(
        "valid_test_pcr",
        tok(test()),
        None,
        holder=HOLDER,
        certificate=cert("test", T - 2 * HOUR + 72 * HOUR),
    )
    rec_fr = MIDNIGHT - 30 * DAY
    b.add(
        "valid_recovery",
        tok(recovery()),
        None,
        holder=HOLDER,
        certificate=cert("recovery", rec_fr + 180 * DAY),
    )
    b.add(
        "valid_until_capped_by_exp",
        tok(vaccination(), exp=T + 10 * DAY),
        None,
        holder=HOLDER,
        certificate=cert("vaccination", T + 10 * DAY),
    )
    b.add(
        "valid_issuer_from_iss_claim",
        tok(vaccination(co="DE"), iss["de_es256"], iss="DE"),
        None,
        holder=HOLDER,
        certificate=cert("vaccination", vacc_end, "DE"),
    )
    b.add(
        "valid_issuer_from_co_when_iss_missing",
        tok(vaccination(co="DE"), iss=None),
        None,
        holder=HOLDER,
        certificate=cert("vaccination", vacc_end, "DE"),
    )
    latin_only = vaccination()
    latin_only["nam"] = {"fnt": "IVANOV", "gnt": "IVAN"}
    b.add(
        "valid_latin_names_only",
        tok(latin_only),
        None,
        holder={"name": "IVANOV IVAN", "name_latin": "IVANOV<IVAN", "dob": "1980-01-01"},
    )
    gnt_only = vaccination()
    gnt_only["nam"] = {"gnt": "IVAN"}
    b.add("valid_only_gnt", tok(gnt_only), None)
    for dob in ("", "1980", "1980-01", "1900-01-01", "2099-12-31"):
        d = vaccination()
        d["dob"] = dob
        b.add(f"valid_dob_{dob or 'empty'}", tok(d), None)
    d = test(sc_text=iso(T - 2 * HOUR).replace("Z", "+03:00"))
    b.add(
        "valid_test_sc_with_offset",
        tok(d),
        None,
        certificate=cert("test", T - 5 * HOUR + 72 * HOUR),
    )
    d = test(sc_text=iso(T - 2 * HOUR).replace("Z", ".123Z"))
    b.add("valid_test_sc_fraction", tok(d), None)
    d = vaccination()
    d["x-extra"] = "unknown top-level fields are ignored"
    b.add("valid_unknown_field_ignored", tok(d), None)
    d = vaccination(dn=3, sd=2)
    b.add("valid_vaccination_booster", tok(d), None)

    # ---- alg / key mismatches ------------------------------------------------------
    b.add("bad_signature_alg_header_mismatch", tok(vaccination(), ps, alg=-7), "bad_signature")
    b.add("bad_signature_unknown_alg", tok(vaccination(), es, alg=-257), "bad_signature")

    # ---- kid placement ----------------------------------------------------------------
    b.add("kid_protected_only", tok(vaccination()), None, holder=HOLDER)
    b.add(
        "kid_unprotected_only", tok(vaccination(), kid=None, unprot_kid=es.kid), None, holder=HOLDER
    )
    b.add("kid_both_same", tok(vaccination(), unprot_kid=es.kid), None)
    b.add(
        "kid_protected_right_unprotected_wrong",
        tok(vaccination(), unprot_kid=iss["untrusted"].kid),
        None,
    )
    b.add(
        "kid_protected_wrong_unprotected_right",
        tok(vaccination(), kid=iss["untrusted"].kid, unprot_kid=es.kid),
        "unknown_key",
    )
    b.add("kid_missing", tok(vaccination(), kid=None), "unknown_key")
    b.add("kid_empty", tok(vaccination(), kid=b""), "unknown_key")
    b.add(
        "kid_null_protected",
        sign(
            es, claims(vaccination()), protected=dumps({1: -7, 4: None}), unprotected={4: es.kid}
        ).token,
        "bad_cose",
    )
    b.add("kid_not_bytes", tok(vaccination(), kid="text-kid"), "bad_cose")
    b.add("kid_too_long", tok(vaccination(), kid=b"k" * 65), "bad_cose")
    b.add("unknown_key_untrusted_issuer", tok(vaccination(), iss["untrusted"]), "unknown_key")

    # ---- COSE forms ---------------------------------------------------------------------
    for form in ("tag18", "untagged", "tag61"):
        b.add(f"cose_form_{form}", tok(vaccination(), form=form), None, holder=HOLDER)
    s = sign(es, claims(vaccination()), form="untagged")
    b.add("cose_wrong_tag_98", hc1(dumps(Tagged(98, RawCBOR(s.cose)))), "bad_cose")
    b.add(
        "cose_tags_reversed_18_61", hc1(dumps(Tagged(18, Tagged(61, RawCBOR(s.cose))))), "bad_cose"
    )
    b.add("cose_tag18_twice", hc1(dumps(Tagged(18, Tagged(18, RawCBOR(s.cose))))), "bad_cose")

    # ---- kid collision ----------------------------------------------------------------
    b.add(
        "kid_collision_second_key_verifies",
        tok(vaccination(), iss["collide_b"], kid=COLLIDING_KID),
        None,
        holder=HOLDER,
    )
    b.add(
        "kid_collision_first_key_verifies",
        tok(vaccination(), iss["collide_a"], kid=COLLIDING_KID),
        None,
    )
    b.add(
        "kid_collision_no_key_verifies",
        tok(vaccination(), iss["collide_c"], kid=COLLIDING_KID),
        "bad_signature",
    )

    # ---- bad signature -------------------------------------------------------------------
    payload = claims(vaccination())
    s = sign(es, payload)
    b.add(
        "bad_signature_flipped_bit",
        hc1(
            dumps(
                Tagged(
                    18,
                    [
                        dumps({1: -7, 4: es.kid}),
                        {},
                        payload,
                        bytes([s.signature[0] ^ 1]) + s.signature[1:],
                    ],
                )
            )
        ),
        "bad_signature",
    )
    b.add(
        "bad_signature_flipped_payload_bit",
        hc1(
            dumps(
                Tagged(
                    18,
                    [
                        dumps({1: -7, 4: es.kid}),
                        {},
                        payload[:-3] + bytes([payload[-3] ^ 1]) + payload[-2:],
                        s.signature,
                    ],
                )
            )
        ),
        "bad_signature",
    )
    s = sign(es, payload)
    other = claims(vaccination())
    b.add(
        "bad_signature_payload_swapped",
        hc1(dumps(Tagged(18, [dumps({1: -7, 4: es.kid}), {}, other, s.signature]))),
        "bad_signature",
    )
    b.add(
        "bad_signature_truncated",
        hc1(dumps(Tagged(18, [dumps({1: -7, 4: es.kid}), {}, payload, s.signature[:63]]))),
        "bad_signature",
    )
    b.add(
        "bad_signature_empty",
        hc1(dumps(Tagged(18, [dumps({1: -7, 4: es.kid}), {}, payload, b""]))),
        "bad_signature",
    )
    payload_ps = claims(vaccination())
    sp = sign(ps, payload_ps)
    b.add(
        "bad_signature_ps256_flipped",
        hc1(
            dumps(
                Tagged(
                    18,
                    [
                        dumps({1: -37, 4: ps.kid}),
                        {},
                        payload_ps,
                        sp.signature[:-1] + bytes([sp.signature[-1] ^ 1]),
                    ],
                )
            )
        ),
        "bad_signature",
    )
    payload_ed = claims(vaccination())
    se = sign(ed, payload_ed)
    b.add(
        "bad_signature_eddsa_flipped",
        hc1(
            dumps(
                Tagged(
                    18,
                    [
                        dumps({1: -8, 4: ed.kid}),
                        {},
                        payload_ed,
                        bytes([se.signature[0] ^ 0x80]) + se.signature[1:],
                    ],
                )
            )
        ),
        "bad_signature",
    )
    b.add(
        "bad_signature_wrong_key_same_kid",
        tok(vaccination(), iss["untrusted"], kid=es.kid),
        "bad_signature",
    )
    # unprotected kid is not covered by the signature: changing it must not matter,
    # but changing the protected header must.
    s = sign(es, payload)
    b.add(
        "bad_signature_protected_header_changed",
        hc1(dumps(Tagged(18, [dumps({4: es.kid, 1: -7}), {}, payload, s.signature]))),
        "bad_signature",
    )

    # ---- key usage (EKU) -----------------------------------------------------------------
    to, alt, oth = iss["test_only"], iss["vaccination_alt_arc"], iss["other_eku"]
    b.add(
        "key_usage_test_only_signs_vaccination",
        tok(vaccination(), to),
        "key_usage",
        holder=HOLDER,
        certificate={"type": "vaccination", "issuer": "RU"},
    )
    b.add("key_usage_test_only_signs_recovery", tok(recovery(), to), "key_usage")
    b.add("key_usage_test_only_signs_test", tok(test(), to), None, holder=HOLDER)
    b.add("key_usage_alt_arc_vaccination_signs_vaccination", tok(vaccination(), alt), None)
    b.add("key_usage_alt_arc_vaccination_signs_recovery", tok(recovery(), alt), "key_usage")
    b.add("key_usage_alt_arc_vaccination_signs_test", tok(test(), alt), "key_usage")
    for kind, dcc in (("vaccination", vaccination()), ("test", test()), ("recovery", recovery())):
        b.add(f"key_usage_no_eku_signs_{kind}", tok(dcc, es), None)
        b.add(f"key_usage_non_eu_eku_signs_{kind}", tok(dcc, oth), None)
    bare = iss["bare_recovery"]
    bare_exp = epoch("2023-01-01T00:00:00Z")
    b.add(
        "key_usage_bare_key_types_recovery_ok",
        tok(recovery(), bare, kid=BARE_KID, exp=bare_exp),
        None,
    )
    b.add(
        "key_usage_bare_key_types_vaccination",
        tok(vaccination(), bare, kid=BARE_KID, exp=bare_exp),
        "key_usage",
    )

    # ---- key validity ----------------------------------------------------------------
    sv = iss["short_validity"]
    nb, na = SHORT_START, SHORT_START + SHORT_DAYS * DAY
    at_short = epoch("2021-07-01T00:00:00Z")
    # key_expired: the key is outside its validity AT THE TIME OF VERIFICATION (CONTRACT
    # 1a); iat before notBefore or exp after notAfter alone is fine.
    b.add(
        "key_validity_iat_before_not_before_valid",
        tok(vaccination(MIDNIGHT - 200 * DAY), sv, iat=nb - 1, exp=na),
        None,
        at=at_short,
        holder=HOLDER,
    )
    t_long = tok(vaccination(MIDNIGHT - 200 * DAY), sv, iat=nb, exp=na + 30 * DAY)
    b.add(
        "key_validity_exp_after_not_after_valid",
        t_long,
        None,
        at=at_short,
        certificate=cert("vaccination", na),
    )  # valid until the key's end
    b.add("key_validity_not_after_exactly_valid", t_long, None, at=na)
    b.add(
        "key_expired_scan_after_not_after",
        t_long,
        "key_expired",
        at=na + 1,
        holder=HOLDER,
        certificate=cert("vaccination", na),
    )
    b.add(
        "key_expired_scan_before_not_before",
        tok(vaccination(nb - 100 * DAY), sv, iat=nb - 100, exp=na),
        "key_expired",
        at=nb - 1,
        holder=HOLDER,
    )
    b.add(
        "key_validity_exact_bounds_valid",
        tok(vaccination(MIDNIGHT - 200 * DAY), sv, iat=nb, exp=na),
        None,
        at=at_short,
    )
    b.add(
        "key_validity_bare_key_exp_after_not_after_valid",
        tok(recovery(), bare, kid=BARE_KID, exp=epoch(BARE_NA) + 1),
        None,
    )
    b.add(
        "key_validity_bare_key_iat_before_not_before_valid",
        tok(recovery(), bare, kid=BARE_KID, iat=epoch(BARE_NB) - 1, exp=bare_exp),
        None,
    )
    b.add(
        "key_expired_bare_key_scan_after_not_after",
        tok(
            recovery(MIDNIGHT + 500 * DAY),
            bare,
            kid=BARE_KID,
            iat=epoch(BARE_NA) - DAY,
            exp=epoch(BARE_NA) + 100 * DAY,
        ),
        "key_expired",
        at=epoch(BARE_NA) + 1,
    )

    # ---- CWT expiry and leeway ------------------------------------------------------------
    exp_at = T + 3600
    d = vaccination()
    t_exp = tok(d, exp=exp_at)
    b.add("token_exp_plus_300s_valid", t_exp, None, at=exp_at + 300)
    b.add(
        "token_exp_plus_301s_expired",
        t_exp,
        "token_expired",
        at=exp_at + 301,
        holder=HOLDER,
        certificate={"type": "vaccination", "issuer": "RU", "valid_until": iso(exp_at)},
    )
    b.add("token_exp_exactly_now_valid", t_exp, None, at=exp_at)
    t_iat = tok(vaccination(), iat=T + 300)
    b.add("token_iat_300s_in_future_valid", t_iat, None, at=T)
    t_iat = tok(vaccination(), iat=T + 301)
    b.add(
        "token_iat_301s_in_future_not_yet_valid", t_iat, "token_not_yet_valid", at=T, holder=HOLDER
    )
    b.add(
        "token_expired_long_ago",
        tok(vaccination(), iat=CERT_START + DAY, exp=T - 30 * DAY),
        "token_expired",
    )

    # ---- revocation ----------------------------------------------------------------------
    ci = next_ci()
    b.add("revoked_uci", tok(vaccination(ci=ci)), "revoked", revocations=True, holder=HOLDER)
    b.revoke("UCI", h16(ci))
    ci = next_ci()
    b.add("revoked_countrycodeuci_iss", tok(vaccination(ci=ci)), "revoked", revocations=True)
    b.revoke("COUNTRYCODEUCI", h16("RU" + ci))
    ci = next_ci("DE")
    b.add(
        "revoked_countrycodeuci_co_when_iss_missing",
        tok(vaccination(ci=ci, co="DE"), iss=None),
        "revoked",
        revocations=True,
    )
    b.revoke("COUNTRYCODEUCI", h16("DE" + ci))
    ci = next_ci("DE")
    # iss RU, co DE: issuers disagreed on the COUNTRYCODEUCI input, both are checked
    b.add(
        "revoked_countrycodeuci_co_when_iss_differs",
        tok(vaccination(ci=ci, co="DE")),
        "revoked",
        revocations=True,
        holder=HOLDER,
    )
    b.revoke("COUNTRYCODEUCI", h16("DE" + ci))
    ci = next_ci("DE")
    b.add(
        "revoked_countrycodeuci_iss_when_co_differs",
        tok(vaccination(ci=ci, co="DE")),
        "revoked",
        revocations=True,
    )
    b.revoke("COUNTRYCODEUCI", h16("RU" + ci))
    ci = next_ci("DE")
    b.add(
        "not_revoked_countrycodeuci_other_country",
        tok(vaccination(ci=ci, co="DE")),
        None,
        revocations=True,
    )
    b.revoke("COUNTRYCODEUCI", h16("FR" + ci))
    ci = next_ci()
    b.add("not_revoked_uci_hash_of_other_case", tok(vaccination(ci=ci)), None, revocations=True)
    b.revoke("UCI", h16(ci.lower()))
    s = sign(es, claims(vaccination()))
    b.add("revoked_signature_es256_r_half", s.token, "revoked", revocations=True)
    b.revoke("SIGNATURE", h16(s.signature[:32]))
    s = sign(es, claims(vaccination()))
    b.add("not_revoked_signature_es256_whole_sig_hash", s.token, None, revocations=True)
    b.revoke("SIGNATURE", h16(s.signature))
    for alg, issuer in (("ps256", ps), ("eddsa", ed)):
        s = sign(issuer, claims(vaccination()))
        b.add(f"revoked_signature_{alg}_whole", s.token, "revoked", revocations=True)
        b.revoke("SIGNATURE", h16(s.signature))
        s = sign(issuer, claims(vaccination()))
        b.add(f"not_revoked_signature_{alg}_first_half", s.token, None, revocations=True)
        b.revoke("SIGNATURE", h16(s.signature[: len(s.signature) // 2]))
    ci = next_ci()
    revoked_expired = tok(vaccination(ci=ci), exp=T - DAY)
    b.add("token_expired_before_revoked", revoked_expired, "token_expired", revocations=True)
    b.revoke("UCI", h16(ci))
    ci = next_ci()
    b.add(
        "revoked_before_rules",
        tok(vaccination(dt_=MIDNIGHT - 400 * DAY, ci=ci)),
        "revoked",
        revocations=True,
    )
    b.revoke("UCI", h16(ci))

    # ---- registry set ------------------------------------------------------------------
    ci = next_ci()
    b.add("registry_recovery_present", tok(recovery(ci=ci)), None, revocations=True)
    b.register(ci)
    b.add(
        "registry_recovery_absent",
        tok(recovery()),
        "not_in_registry",
        revocations=True,
        holder=HOLDER,
    )
    b.add("registry_recovery_no_set_loaded", tok(recovery()), None)
    ci = next_ci()
    b.add("registry_test_present", tok(test(ci=ci)), None, revocations=True)
    b.register(ci)
    b.add("registry_test_absent", tok(test()), "not_in_registry", revocations=True)
    b.add("registry_test_no_set_loaded", tok(test()), None)
    b.add("registry_vaccination_absent_not_required", tok(vaccination()), None, revocations=True)
    b.add(
        "registry_absent_rules_none_not_required",
        tok(recovery()),
        None,
        revocations=True,
        rules="none",
    )
    b.add(
        "registry_absent_before_rules",
        tok(test(sc=T - 100 * HOUR)),
        "not_in_registry",
        revocations=True,
    )

    # ---- venue rules: vaccination ---------------------------------------------------------
    dt0 = MIDNIGHT - 100 * DAY
    tv = tok(vaccination(dt0), iat=dt0 - 2 * DAY)
    b.add(
        "vaccination_365_days_exactly_valid",
        tv,
        None,
        at=dt0 + 365 * DAY,
        certificate=cert("vaccination", dt0 + 365 * DAY),
    )
    b.add(
        "vaccination_365_days_plus_1s_expired",
        tv,
        "vaccination_expired",
        at=dt0 + 365 * DAY + 1,
        holder=HOLDER,
    )
    b.add("vaccination_366_days_expired", tv, "vaccination_expired", at=dt0 + 366 * DAY)
    b.add("vaccination_day_of_dt_valid", tv, None, at=dt0)
    b.add("vaccination_1s_before_dt_not_yet_valid", tv, "vaccination_not_yet_valid", at=dt0 - 1)
    tv_future = tok(vaccination(MIDNIGHT + DAY))
    b.add(
        "vaccination_day_before_dt_not_yet_valid",
        tv_future,
        "vaccination_not_yet_valid",
        at=MIDNIGHT,
    )
    b.add(
        "vaccination_incomplete_1_of_2",
        tok(vaccination(dn=1, sd=2)),
        "vaccination_incomplete",
        holder=HOLDER,
    )
    b.add("vaccination_complete_1_of_1", tok(vaccination(dn=1, sd=1)), None)
    # accepted_vaccines (CONTRACT section 3): checked before the course and the dates
    for mp in ("Sputnik-V", "Sputnik-Light", "CoviVac", "EpiVacCorona", "EpiVacCorona-N"):
        d = vaccination(dn=1, sd=1)
        d["v"][0]["mp"] = mp
        b.add(f"vaccine_accepted_{mp.lower()}", tok(d), None)
    comirnaty = vaccination(dn=1, sd=2)
    comirnaty["v"][0].update(mp="EU/1/20/1528", ma="ORG-100030215")
    t_comirnaty = tok(comirnaty)
    b.add(
        "vaccine_not_accepted_before_course",
        t_comirnaty,
        "vaccine_not_accepted",
        holder=HOLDER,
        certificate=cert("vaccination", vacc_end),
    )
    b.add("vaccine_not_accepted_rules_none_valid", t_comirnaty, None, rules="none")
    b.add(
        "vaccine_accepted_by_rules_file",
        t_comirnaty,
        None,
        rules={"accepted_vaccines": ["EU/1/20/1528"], "require_full_course": False},
    )
    b.add(
        "vaccine_any_by_rules_file_null",
        t_comirnaty,
        "vaccination_incomplete",
        rules={"accepted_vaccines": None},
    )
    b.add(
        "vaccination_incomplete_rules_none_valid", tok(vaccination(dn=1, sd=2)), None, rules="none"
    )
    old = tok(vaccination(MIDNIGHT - 700 * DAY), iat=CERT_START + DAY)
    b.add("vaccination_old_rules_venue_expired", old, "vaccination_expired")
    b.add(
        "vaccination_old_rules_none_valid",
        old,
        None,
        rules="none",
        certificate=cert("vaccination", EXP),
    )
    t270 = tok(vaccination(dt0 - 200 * DAY), iat=CERT_START + DAY)  # 300 days old at T
    b.add("vaccination_300_days_venue_valid", t270, None)
    b.add(
        "vaccination_300_days_rules_270_expired",
        t270,
        "vaccination_expired",
        rules={"vaccination_days": 270},
    )
    b.add(
        "vaccination_270_days_exactly_rules_270_valid",
        t270,
        None,
        rules={"vaccination_days": 270},
        at=dt0 - 200 * DAY + 270 * DAY,
    )
    b.add(
        "vaccination_270_days_plus_1s_rules_270_expired",
        t270,
        "vaccination_expired",
        rules={"vaccination_days": 270},
        at=dt0 - 200 * DAY + 270 * DAY + 1,
    )
    b.add(
        "vaccination_incomplete_rules_full_course_off",
        tok(vaccination(dn=1, sd=2)),
        None,
        rules={"require_full_course": False},
    )

    # ---- venue rules: test -----------------------------------------------------------
    sc = T - 10 * HOUR
    tt = tok(test(sc))
    b.add(
        "test_72_hours_exactly_valid",
        tt,
        None,
        at=sc + 72 * HOUR,
        certificate=cert("test", sc + 72 * HOUR),
    )
    b.add("test_72_hours_plus_1s_expired", tt, "test_expired", at=sc + 72 * HOUR + 1, holder=HOLDER)
    b.add("test_sc_exactly_now_valid", tt, None, at=sc)
    b.add("test_sc_1s_in_future", tt, "test_in_future", at=sc - 1)
    b.add("test_positive", tok(test(tr="260373001")), "test_positive", holder=HOLDER)
    b.add("test_positive_rules_none_valid", tok(test(tr="260373001")), None, rules="none")
    b.add("test_antigen_not_accepted", tok(test(tt="LP217198-3")), "test_type_not_accepted")
    b.add(
        "test_antigen_accepted_by_rules_file",
        tok(test(tt="LP217198-3")),
        None,
        rules={"accepted_test_types": ["LP6464-4", "LP217198-3"]},
    )
    b.add(
        "test_48_hours_rules_file_expired",
        tok(test(T - 49 * HOUR)),
        "test_expired",
        rules={"test_hours": 48},
    )
    b.add("test_positive_before_type", tok(test(tr="260373001", tt="LP217198-3")), "test_positive")
    b.add("test_expired_token_not_expired", tok(test(T - 100 * HOUR)), "test_expired")

    # ---- venue rules: recovery -----------------------------------------------------------
    fr = MIDNIGHT - 60 * DAY
    tr_ = tok(recovery(fr, df=fr + 11 * DAY, du=fr + 200 * DAY), iat=fr)
    b.add(
        "recovery_180_days_exactly_valid",
        tr_,
        None,
        at=fr + 180 * DAY,
        certificate=cert("recovery", fr + 180 * DAY),
    )
    b.add(
        "recovery_180_days_plus_1s_expired",
        tr_,
        "recovery_expired",
        at=fr + 180 * DAY + 1,
        holder=HOLDER,
    )
    b.add("recovery_df_exactly_valid", tr_, None, at=fr + 11 * DAY)
    b.add(
        "recovery_1s_before_df_not_yet_valid", tr_, "recovery_not_yet_valid", at=fr + 11 * DAY - 1
    )
    b.add("recovery_day_before_df_not_yet_valid", tr_, "recovery_not_yet_valid", at=fr + 10 * DAY)
    tr_du = tok(recovery(fr, df=fr + 11 * DAY, du=fr + 100 * DAY), iat=fr)
    b.add(
        "recovery_last_day_of_du_valid",
        tr_du,
        None,
        at=fr + 100 * DAY + DAY - 1,
        certificate=cert("recovery", fr + 101 * DAY),
    )
    b.add("recovery_after_du_expired", tr_du, "recovery_expired", at=fr + 101 * DAY + 1)
    b.add("recovery_day_after_du_expired", tr_du, "recovery_expired", at=fr + 102 * DAY)
    b.add("recovery_old_rules_none_valid", tr_du, None, rules="none", at=fr + 300 * DAY)
    b.add(
        "recovery_rules_90_days_expired",
        tr_,
        "recovery_expired",
        at=fr + 91 * DAY,
        rules={"recovery_days": 90},
    )

    # ---- bad payload (schema), signed by a trusted key ---------------------------------
    def bad(
        name: str,
        mutate: Callable[[dict[str, Any]], Any],
        base: Callable[[], dict[str, Any]] = vaccination,
    ) -> None:
        d = base()
        result = mutate(d)
        b.add(f"bad_payload_{name}", tok(d if result is None else result), "bad_payload")

    bad("missing_ver", lambda d: d.pop("ver") and None)
    bad("missing_dob", lambda d: d.pop("dob") and None)
    bad("missing_nam", lambda d: d.pop("nam") and None)
    bad("missing_fnt_and_gnt", lambda d: d.update(nam={"fn": "Иванов", "gn": "Иван"}))
    bad("missing_vaccination_ma", lambda d: d["v"][0].pop("ma") and None)
    bad("missing_vaccination_ci", lambda d: d["v"][0].pop("ci") and None)
    bad("missing_test_tr", lambda d: d["t"][0].pop("tr") and None, test)
    bad("missing_test_sc", lambda d: d["t"][0].pop("sc") and None, test)
    bad("missing_recovery_du", lambda d: d["r"][0].pop("du") and None, recovery)
    bad("missing_recovery_fr", lambda d: d["r"][0].pop("fr") and None, recovery)
    bad("no_v_t_r", lambda d: d.pop("v") and None)
    bad("fnt_lowercase", lambda d: d["nam"].update(fnt="Ivanov"))
    bad("gnt_with_space", lambda d: d["nam"].update(gnt="IVAN IVANOVICH"))
    bad("dob_1899", lambda d: d.update(dob="1899-01-01"))
    bad("dob_2100", lambda d: d.update(dob="2100-01-01"))
    bad("dob_not_a_date", lambda d: d.update(dob="01.01.1980"))
    bad("dob_integer", lambda d: d.update(dob=1980))
    bad("two_of_v_and_t", lambda d: d.update(t=test()["t"]))
    bad("two_of_v_and_r", lambda d: d.update(r=recovery()["r"]))
    bad("empty_v_list", lambda d: d.update(v=[]))
    bad("two_v_entries", lambda d: d.update(v=[d["v"][0], vaccination()["v"][0]]))
    bad("v_not_a_list", lambda d: d.update(v=d["v"][0]))
    bad("fn_81_chars", lambda d: d["nam"].update(fn="Я" * 81))
    bad("fnt_81_chars", lambda d: d["nam"].update(fnt="A" * 81))
    bad("ci_81_chars", lambda d: d["v"][0].update(ci="X" * 81))
    bad("is_81_chars", lambda d: d["v"][0].update(**{"is": "X" * 81}))
    bad("ci_empty", lambda d: d["v"][0].update(ci=""))
    bad("dn_as_string", lambda d: d["v"][0].update(dn="2"))
    bad("dn_zero", lambda d: d["v"][0].update(dn=0))
    bad("dn_bool", lambda d: d["v"][0].update(dn=True))
    bad("dt_feb_30", lambda d: d["v"][0].update(dt="2021-02-30"))
    bad("dt_not_iso", lambda d: d["v"][0].update(dt="16.10.2021"))
    bad("dt_with_time_without_zone", lambda d: d["v"][0].update(dt="2021-10-16T00:00:00"))
    bad("sc_without_zone", lambda d: d["t"][0].update(sc="2021-11-15T10:00:00"), test)
    bad("sc_date_only", lambda d: d["t"][0].update(sc="2021-11-15"), test)
    bad("sc_hour_25", lambda d: d["t"][0].update(sc="2021-11-15T25:00:00Z"), test)
    bad("fr_bad_date", lambda d: d["r"][0].update(fr="2021-13-01"), recovery)
    bad("co_lowercase", lambda d: d["v"][0].update(co="ru"))
    bad("ver_not_semver", lambda d: d.update(ver="1.3"))
    bad("nam_not_a_map", lambda d: d.update(nam="IVANOV<IVAN"))
    bad("tg_integer", lambda d: d["v"][0].update(tg=840539006))
    bad("not_a_map", lambda d: [d])
    # optional string fields given as CBOR null: the schema says "type": "string"
    bad("fn_null", lambda d: d["nam"].update(fn=None))
    bad("fnt_null_gnt_present", lambda d: d["nam"].update(fnt=None))
    bad("tc_null", lambda d: d["t"][0].update(tc=None), test)
    bad("nm_null", lambda d: d["t"][0].update(nm=None), test)
    bad("test_ma_null", lambda d: d["t"][0].update(ma=None), test)
    bad("tr_integer", lambda d: d["t"][0].update(tr=260415000), test)

    # ---- bad prefix / base45 --------------------------------------------------------------
    good = tok(vaccination())
    b.add("bad_prefix_empty", "", "bad_prefix")
    b.add("prefix_lowercase_accepted", "hc1:" + good[4:], None)  # CONTRACT 1: any case
    b.add("bad_prefix_hc2", "HC2:" + good[4:], "bad_prefix")
    b.add("bad_prefix_missing", good[4:], "bad_prefix")
    b.add("leading_space_stripped", " " + good, None)
    b.add("bad_prefix_url", "ftp://example.org/", "bad_prefix")
    # register links (CONTRACT 1b): no records are loaded with the vectors
    link = (
        "https://www.gosuslugi.ru/covid-cert/verify/9160000012345678?lang=ru"
        "&ck=4d3c2b1a00112233445566778899aabb"
    )
    b.add("link_foreign_site", "https://example.org/", "bad_link")
    b.add(
        "link_lookalike_host", link.replace("gosuslugi.ru", "gosuslugi.ru.example.com"), "bad_link"
    )
    b.add("link_malformed_id", link.replace("12345678?", "1234567?"), "bad_link")
    b.add("link_not_found", link, "not_found")
    b.add("bad_base45_lowercase_char", good[:20] + "a" + good[21:], "bad_base45")
    b.add("bad_base45_length_mod_3_is_1", good + "0" * ((1 - len(good[4:])) % 3), "bad_base45")
    b.add("bad_base45_triplet_overflow", "HC1:" + ":::", "bad_base45")
    b.add("bad_base45_pair_overflow", "HC1:" + "::", "bad_base45")
    b.add("bad_base45_non_ascii", good[:30] + "Ж" + good[31:], "bad_base45")
    b.add("trailing_newline_stripped", good + "\n", None)
    b.add("bad_base45_nul", good[:30] + "\x00" + good[31:], "bad_base45")

    # ---- bad compression ------------------------------------------------------------------
    cose = sign(es, claims(vaccination())).cose
    z = zlib.compress(cose, 9)
    b.add("bad_compression_truncated", hc1_zlib(z[:-6]), "bad_compression")
    b.add("bad_compression_trailing_garbage", hc1_zlib(z + b"\x00garbage"), "bad_compression")
    b.add("bad_compression_not_zlib", hc1_zlib(cose), "bad_compression")
    b.add("bad_compression_empty", "HC1:", "bad_compression")
    b.add(
        "bad_compression_bad_checksum", hc1_zlib(z[:-1] + bytes([z[-1] ^ 0xFF])), "bad_compression"
    )
    raw = zlib.compressobj(9, zlib.DEFLATED, -15)
    b.add(
        "bad_compression_raw_deflate", hc1_zlib(raw.compress(cose) + raw.flush()), "bad_compression"
    )

    # ---- too large ------------------------------------------------------------------------
    bomb = dumps(Tagged(18, [dumps({1: -7, 4: es.kid}), {}, b"\x00" * 1_000_000, b"x" * 64]))
    b.add("too_large_zlib_bomb_1mb", hc1(bomb), "too_large")
    b.add("too_large_zlib_bomb_zero_run", hc1(b"\x00" * 20000), "too_large")
    exact = _padded(es, 16384)
    b.add("inflated_exactly_16384_valid", exact.token, None)
    b.add("too_large_inflated_16385", _padded(es, 16385).token, "too_large")
    b.add("too_large_token_8193_chars", "HC1:" + "0" * 8189, "too_large")
    b.add("too_large_token_huge", "HC1:" + good[4:] * 40, "too_large")
    big = _long_token(es)
    if not 8000 < len(big) <= 8192:
        raise RuntimeError(f"long token has {len(big)} characters")
    b.add("valid_long_token_near_8192_chars", big, None)
    b.add("token_8192_chars_is_decoded_not_too_large", "HC1:" + "0" * 8188, "bad_base45")

    # ---- bad COSE ------------------------------------------------------------------------
    p = claims(vaccination())
    prot = dumps({1: -7, 4: es.kid})
    sig = es.sign(sig_structure(prot, p))
    b.add("bad_cose_not_an_array", hc1(dumps(Tagged(18, {1: prot, 2: p}))), "bad_cose")
    b.add("bad_cose_3_elements", hc1(dumps(Tagged(18, [prot, {}, p]))), "bad_cose")
    b.add("bad_cose_5_elements", hc1(dumps(Tagged(18, [prot, {}, p, sig, b""]))), "bad_cose")
    b.add(
        "bad_cose_protected_not_bstr",
        hc1(dumps(Tagged(18, [{1: -7, 4: es.kid}, {}, p, sig]))),
        "bad_cose",
    )
    b.add("bad_cose_protected_not_a_map", sign(es, p, protected=dumps([1, -7])).token, "bad_cose")
    b.add(
        "bad_cose_protected_trailing_bytes", sign(es, p, protected=prot + b"\x00").token, "bad_cose"
    )
    b.add("bad_cose_unprotected_not_a_map", hc1(dumps(Tagged(18, [prot, [], p, sig]))), "bad_cose")
    b.add("bad_cose_payload_not_bstr", hc1(dumps(Tagged(18, [prot, {}, "text", sig]))), "bad_cose")
    b.add(
        "bad_cose_payload_nil_detached", hc1(dumps(Tagged(18, [prot, {}, None, sig]))), "bad_cose"
    )
    b.add(
        "bad_cose_signature_not_bstr",
        hc1(dumps(Tagged(18, [prot, {}, p, list(sig[:4])]))),
        "bad_cose",
    )
    b.add(
        "bad_cose_duplicate_key_protected",
        sign(es, p, protected=b"\xa2\x01\x26\x01\x26").token,
        "bad_cose",
    )
    b.add(
        "bad_cose_duplicate_key_unprotected_different_values",
        hc1(dumps(Tagged(18, [prot, RawCBOR(b"\xa2\x04\x41k\x04\x41j"), p, sig]))),
        "bad_cose",
    )
    # the same key twice with equal small values (CPython caches such objects)
    b.add(
        "bad_cose_duplicate_key_unprotected_same_value",
        hc1(dumps(Tagged(18, [prot, RawCBOR(b"\xa2\x04\x41k\x04\x41k"), p, sig]))),
        "bad_cose",
    )
    b.add(
        "bad_cose_indefinite_array",
        hc1(b"\xd2\x9f" + dumps(prot) + b"\xa0" + dumps(p) + dumps(sig) + b"\xff"),
        "bad_cose",
    )
    b.add(
        "bad_cose_indefinite_bstr_payload",
        hc1(dumps(Tagged(18, [prot, {}, RawCBOR(b"\x5f" + dumps(p) + b"\xff"), sig]))),
        "bad_cose",
    )
    b.add("bad_cose_alg_missing", sign(es, p, protected=dumps({4: es.kid})).token, "bad_cose")
    b.add(
        "bad_cose_alg_text", sign(es, p, protected=dumps({1: "ES256", 4: es.kid})).token, "bad_cose"
    )
    b.add(
        "bad_cose_alg_only_unprotected",
        sign(es, p, protected=dumps({4: es.kid}), unprotected={1: -7}).token,
        "bad_cose",
    )
    b.add(
        "bad_cose_huge_bstr_length",
        hc1(b"\xd2\x84" + b"\x5b\x7f\xff\xff\xff\xff\xff\xff\xff" + b"\x00" * 8),
        "bad_cose",
    )
    b.add(
        "bad_cose_huge_array_length", hc1(b"\xd2\x9b\xff\xff\xff\xff\xff\xff\xff\xff"), "bad_cose"
    )
    b.add(
        "bad_cose_huge_map_length",
        hc1(dumps(Tagged(18, [prot, RawCBOR(b"\xbb\x00\x00\x00\x01\x00\x00\x00\x00"), p, sig]))),
        "bad_cose",
    )
    b.add("bad_cose_truncated_cbor", hc1(sign(es, p).cose[:-10]), "bad_cose")
    b.add("bad_cose_trailing_cbor", hc1(sign(es, p).cose + b"\x00"), "bad_cose")
    b.add("bad_cose_empty", hc1(b""), "bad_cose")
    b.add(
        "bad_cose_deep_nesting_unprotected",
        hc1(dumps(Tagged(18, [prot, {5: _nest(40)}, p, sig]))),
        "bad_cose",
    )
    b.add(
        "bad_cose_non_utf8_unprotected_text",
        hc1(dumps(Tagged(18, [prot, RawCBOR(b"\xa1\x05\x62\xc3\x28"), p, sig]))),
        "bad_cose",
    )
    b.add(
        "bad_cose_map_key_bytes",
        hc1(dumps(Tagged(18, [prot, RawCBOR(b"\xa1\x41k\x01"), p, sig]))),
        "bad_cose",
    )
    b.add(
        "bad_cose_undefined_simple",
        hc1(dumps(Tagged(18, [prot, {}, p, RawCBOR(b"\xf7")]))),
        "bad_cose",
    )
    b.add(
        "bad_cose_inner_tag",
        hc1(dumps(Tagged(18, [prot, {5: Tagged(0, "x")}, p, sig]))),
        "bad_cose",
    )

    # ---- bad CWT (the signature may be fine: the claims cannot be read) ----------------
    def cwt_bad(name: str, payload: bytes) -> None:
        b.add(f"bad_cwt_{name}", sign(es, payload).token, "bad_cwt")

    dcc = vaccination()
    cwt_bad("claims_not_a_map", dumps([1, "RU", 4, EXP]))
    cwt_bad("claims_empty_bstr", b"")
    cwt_bad("claims_garbage", b"\xff\xfe\xfd")
    cwt_bad("exp_missing", claims(dcc, exp=None))
    cwt_bad("iat_missing", claims(dcc, iat=None))
    cwt_bad("exp_string", dumps({1: "RU", 4: str(EXP), 6: IAT, -260: {1: dcc}}))
    cwt_bad("exp_huge", dumps({1: "RU", 4: 1 << 63, 6: IAT, -260: {1: dcc}}))
    cwt_bad("exp_epoch_tag", dumps({1: "RU", 4: Tagged(1, EXP), 6: IAT, -260: {1: dcc}}))
    cwt_bad("iss_null", dumps({1: None, 4: EXP, 6: IAT, -260: {1: dcc}}))
    cwt_bad("iss_integer", dumps({1: 643, 4: EXP, 6: IAT, -260: {1: dcc}}))
    cwt_bad("hcert_missing", dumps({1: "RU", 4: EXP, 6: IAT}))
    cwt_bad("hcert_not_a_map", dumps({1: "RU", 4: EXP, 6: IAT, -260: [dcc]}))
    cwt_bad("hcert_key_1_missing", dumps({1: "RU", 4: EXP, 6: IAT, -260: {2: dcc}}))
    deep = vaccination()
    deep["x-deep"] = _nest(13)  # innermost item at depth 16: the limit
    b.add("valid_nesting_depth_16", tok(deep), None)
    deep = vaccination()
    deep["x-deep"] = _nest(14)  # depth 17
    b.add("bad_cwt_nesting_depth_17", tok(deep), "bad_cwt")
    cwt_bad("deep_nesting_1000", RawCBOR(b"\x81" * 1000 + b"\x00").data)
    cwt_bad("duplicate_claim", RawCBOR(b"\xa2\x04" + dumps(EXP) + b"\x04" + dumps(EXP)).data)
    cwt_bad(
        "duplicate_key_in_dcc",
        dumps(
            {
                1: "RU",
                4: EXP,
                6: IAT,
                -260: {
                    1: RawCBOR(
                        b"\xa2"
                        + dumps("dob")
                        + dumps("1980-01-01")
                        + dumps("dob")
                        + dumps("1980-01-01")
                    )
                },
            }
        ),
    )
    cwt_bad(
        "duplicate_key_same_small_value",
        dumps(
            {1: "RU", 4: EXP, 6: IAT, -260: RawCBOR(b"\xa3\x01" + dumps(dcc) + b"\x02\x00\x02\x00")}
        ),
    )
    dup = vaccination()
    entry = dict(dup["v"][0])
    entry.pop("dn")
    body = b"".join(dumps(k) + dumps(v) for k, v in entry.items())
    dup["v"] = [RawCBOR(bytes([0xA0 + len(entry) + 2]) + body + b"\x62dn\x02\x62dn\x02")]
    cwt_bad("duplicate_dn_same_value", claims(dup))
    cwt_bad(
        "non_utf8_name",
        dumps(
            {
                1: "RU",
                4: EXP,
                6: IAT,
                -260: {
                    1: {
                        "ver": "1.3.0",
                        "dob": "1980-01-01",
                        "v": dcc["v"],
                        "nam": {"fnt": "IVANOV", "fn": RawCBOR(b"\x64\xd0\x98\xff\xfe")},
                    }
                },
            }
        ),
    )
    cwt_bad(
        "non_utf8_overlong_encoding",
        dumps({1: "RU", 4: EXP, 6: IAT, -260: {1: {**dcc, "dob": RawCBOR(b"\x62\xc0\xaf")}}}),
    )
    cwt_bad(
        "lone_surrogate_utf8",
        dumps({1: "RU", 4: EXP, 6: IAT, -260: {1: {**dcc, "dob": RawCBOR(b"\x63\xed\xa0\x80")}}}),
    )
    cwt_bad("indefinite_map", b"\xbf\x04" + dumps(EXP) + b"\xff")
    cwt_bad("trailing_bytes", claims(dcc) + b"\x00")
    cwt_bad("huge_text_length", b"\xa1\x01\x7b\x00\x00\x00\x01\x00\x00\x00\x00")
    leniency_vectors(b, iss, tok)
    hardening_vectors(b, iss, tok)
    valueset_vectors(b, tok)
    return b


# -- CBOR pieces the encoder does not make on its own ----------------------------------


def f16(x: float) -> RawCBOR:
    return RawCBOR(b"\xf9" + struct.pack(">e", x))


def f32(x: float) -> RawCBOR:
    return RawCBOR(b"\xfa" + struct.pack(">f", x))


def f64(x: float) -> RawCBOR:
    return RawCBOR(b"\xfb" + struct.pack(">d", x))


def raw_claims(dcc: Any, exp: Any, iat: Any, **extra: Any) -> bytes:
    c: dict[Any, Any] = {1: "RU", 4: exp, 6: iat, -260: {1: dcc}}
    c.update(extra)
    return dumps(c)


YEAR_10000 = 253402300800  # 10000-01-01T00:00:00Z
LAST_9999 = YEAR_10000 - 1
BEFORE_YEAR_1 = -62135596801


def leniency_vectors(b: Builder, iss: dict[str, Issuer], tok: Callable[..., str]) -> None:
    """What real issuers produced and the EU's own verifiers accept (CONTRACT 1a)."""
    es = iss["es256"]

    def signed(payload: bytes, **kw: Any) -> str:
        return sign(es, payload, **kw).token

    # ---- exp / iat as CBOR floats (NumericDate allows fractions) ----------------------
    vacc_end = MIDNIGHT - 30 * DAY + 365 * DAY
    until = T + 10 * DAY
    b.add(
        "valid_exp_iat_double_with_fraction",
        signed(raw_claims(vaccination(), f64(until + 0.78), f64(IAT + 0.25))),
        None,
        holder=HOLDER,
        certificate=cert("vaccination", until),
    )
    exp32 = struct.unpack(">f", struct.pack(">f", float(EXP)))[0]
    iat32 = struct.unpack(">f", struct.pack(">f", float(IAT)))[0]
    b.add(
        "valid_exp_iat_single_floats",
        signed(raw_claims(vaccination(), f32(EXP), f32(IAT))),
        None,
        holder=HOLDER,
        certificate=cert("vaccination", min(vacc_end, int(exp32))),
    )
    if iat32 > T + 300:
        raise RuntimeError("single-float iat landed in the future")
    bare = iss["collide_a"]  # a bare key without validity dates: only the token's times count
    b.add(
        "token_exp_half_float_decodes_and_expires",
        sign(bare, raw_claims(vaccination(), f16(65504.0), f16(1.5)), kid=COLLIDING_KID).token,
        "token_expired",
        holder=HOLDER,
        certificate=cert("vaccination", 65504),
    )
    exp_at = T + 3600
    t_round = signed(raw_claims(vaccination(), f64(exp_at + 0.5), IAT))
    b.add("token_exp_float_rounded_down_valid_at_leeway_end", t_round, None, at=exp_at + 300)
    b.add("token_exp_float_rounded_down_expired", t_round, "token_expired", at=exp_at + 301)
    b.add(
        "token_iat_float_rounded_up_not_yet_valid",
        signed(raw_claims(vaccination(), EXP, f64(T + 300.25))),
        "token_not_yet_valid",
    )
    b.add(
        "token_iat_float_whole_valid", signed(raw_claims(vaccination(), EXP, f64(T + 300.0))), None
    )
    cwt = "bad_cwt"
    b.add("bad_cwt_exp_float_nan", signed(raw_claims(vaccination(), f64(math.nan), IAT)), cwt)
    b.add(
        "bad_cwt_exp_half_nan",
        signed(raw_claims(vaccination(), RawCBOR(b"\xf9\x7e\x00"), IAT)),
        cwt,
    )
    b.add("bad_cwt_exp_half_infinity", signed(raw_claims(vaccination(), f16(math.inf), IAT)), cwt)
    b.add(
        "bad_cwt_iat_single_minus_infinity",
        signed(raw_claims(vaccination(), EXP, f32(-math.inf))),
        cwt,
    )
    b.add("bad_cwt_exp_double_1e300", signed(raw_claims(vaccination(), f64(1e300), IAT)), cwt)
    b.add(
        "bad_cwt_exp_double_year_10000",
        signed(raw_claims(vaccination(), f64(float(YEAR_10000)), IAT)),
        cwt,
    )
    b.add(
        "bad_cwt_iat_float_after_exp_by_rounding",
        signed(raw_claims(vaccination(), f64(T + DAY + 0.2), f64(T + DAY + 0.1))),
        cwt,
    )
    b.add("bad_cwt_exp_float_text", signed(raw_claims(vaccination(), "1621262460.78", IAT)), cwt)

    # ---- date-times as CBOR tag 0 / tag 1 ------------------------------------------------
    sc = T - 2 * HOUR
    for name, value in (
        ("tag0_text", Tagged(0, iso(sc))),
        ("tag1_int", Tagged(1, sc)),
        ("tag1_double", Tagged(1, f64(sc + 0.9))),
        ("tag1_single", Tagged(1, f32(float(sc)))),
    ):
        d = test()
        d["t"][0]["sc"] = value
        sc_val = (
            sc
            if name != "tag1_single"
            else int(struct.unpack(">f", struct.pack(">f", float(sc)))[0])
        )
        b.add(
            f"valid_test_sc_{name}",
            tok(d),
            None,
            holder=HOLDER,
            certificate=cert("test", sc_val + 72 * HOUR),
            at=max(T, sc_val),
        )
    for name, value in (
        ("tag1_nan", Tagged(1, f64(math.nan))),
        ("tag1_infinity", Tagged(1, f16(math.inf))),
        ("tag1_year_10000", Tagged(1, YEAR_10000)),
        ("tag1_text", Tagged(1, iso(sc))),
        ("tag0_integer", Tagged(0, sc)),
        ("tag0_date_only", Tagged(0, date(sc))),
        ("tag0_no_zone", Tagged(0, iso(sc)[:-1])),
        ("tag2_bignum", Tagged(2, b"\x01")),
        ("tag1004_date", Tagged(1004, date(sc))),
        ("tag_on_tag", Tagged(0, Tagged(0, iso(sc)))),
        ("untagged_integer", sc),
    ):
        d = test()
        d["t"][0]["sc"] = value
        b.add(f"bad_payload_sc_{name}", tok(d), "bad_payload", field="sc")
    # tags on a date field (a date-time where a date is expected: its date part counts)
    d = vaccination()
    d["v"][0]["dt"] = Tagged(0, iso(MIDNIGHT - 30 * DAY + 5 * HOUR))
    b.add("valid_vaccination_dt_tag0", tok(d), None, certificate=cert("vaccination", vacc_end))
    d = vaccination()
    d["v"][0]["dt"] = Tagged(1, MIDNIGHT - 30 * DAY + 5 * HOUR)
    b.add(
        "valid_vaccination_dt_tag1_utc_date",
        tok(d),
        None,
        certificate=cert("vaccination", vacc_end),
    )
    for field_, value in (("tg", Tagged(0, "840539006")), ("co", Tagged(1, 643))):
        d = vaccination()
        d["v"][0][field_] = value
        b.add(f"bad_payload_tag_on_{field_}", tok(d), "bad_payload", field=field_)
    d = vaccination()
    d["dob"] = Tagged(1004, "1980-01-01")
    b.add("bad_payload_tag_on_dob", tok(d), "bad_payload", field="dob")
    d = vaccination()
    d["nam"]["fn"] = Tagged(0, "Иванов")
    b.add("bad_payload_tag_on_fn", tok(d), "bad_payload", field="fn")

    # ---- a date-time where the schema has a date ------------------------------------------
    dt0 = MIDNIGHT - 100 * DAY
    d = vaccination(dt0)
    d["v"][0]["dt"] = date(dt0) + "T22:54:00+02:00"
    b.add(
        "valid_vaccination_dt_datetime_offset",
        tok(d, iat=dt0 - 2 * DAY),
        None,
        certificate=cert("vaccination", dt0 + 365 * DAY),
    )
    d = vaccination(dt0)
    d["v"][0]["dt"] = date(dt0) + "T23:30:00-05:00"  # 04:30Z the next day: the date counts
    tv = tok(d, iat=dt0 - 2 * DAY)
    b.add("vaccination_dt_datetime_date_part_counts_valid", tv, None, at=dt0)
    b.add(
        "vaccination_dt_datetime_date_part_counts_not_yet_valid",
        tv,
        "vaccination_not_yet_valid",
        at=dt0 - 1,
    )
    fr = MIDNIGHT - 60 * DAY
    d = recovery(fr, df=fr + 11 * DAY, du=fr + 200 * DAY)
    r0 = d["r"][0]
    r0["fr"] += "T10:00:00Z"
    r0["df"] += "T00:00:00.000+08:00"
    r0["du"] += "T23:59:59+08:00"
    b.add(
        "valid_recovery_dates_with_times",
        tok(d, iat=fr),
        None,
        at=fr + 180 * DAY,
        certificate=cert("recovery", fr + 180 * DAY),
    )
    for name, text in (
        ("no_zone", "2021-10-16T00:00:00"),
        ("space_separator", "2021-10-16 00:00:00Z"),
        ("feb_30_with_time", "2021-02-30T00:00:00Z"),
        ("trailing_text", "2021-10-16Tnoon"),
    ):
        d = vaccination()
        d["v"][0]["dt"] = text
        b.add(f"bad_payload_dt_datetime_{name}", tok(d), "bad_payload", field="dt")
    d = recovery()
    d["r"][0]["du"] = "2022-05-10T24:00:00Z"
    b.add("bad_payload_du_datetime_hour_24", tok(d), "bad_payload", field="du")
    d = vaccination()
    d["dob"] = "1980-01-01T00:00:00Z"
    b.add("bad_payload_dob_datetime_stays_a_date", tok(d), "bad_payload", field="dob")

    # ---- payload fields the schema does not name --------------------------------------
    d = vaccination()
    d["meta"] = {
        "id": "SG-123",
        "reference": {"type": "NOTARISED", "n": [1, -2, 2.5, None, True, b"\x00"]},
        "issued": Tagged(0, iso(T)),
        "epoch": Tagged(1, f64(T + 0.5)),
        "big": Tagged(2, b"\x01\x00"),
        "nested": Tagged(55799, {"k": Tagged(32, "x")}),
    }
    b.add("valid_unknown_meta_object_with_tags", tok(d), None, holder=HOLDER)
    d = vaccination()
    d["nam"]["x-middle"] = "Иванович"
    d["v"][0]["x-lot"] = {"lot": "AB123", "at": Tagged(1, T)}
    b.add("valid_unknown_fields_in_nam_and_entry", tok(d), None, holder=HOLDER)
    b.add(
        "valid_unknown_claims_and_hcert_keys",
        signed(
            dumps(
                {
                    1: "RU",
                    4: EXP,
                    6: IAT,
                    5: IAT,
                    7: b"cti",
                    99: Tagged(0, iso(T)),
                    -260: {1: vaccination(), 2: {"x": Tagged(1, 0)}},
                }
            )
        ),
        None,
        holder=HOLDER,
    )
    d = vaccination()
    d["meta"] = {"a": RawCBOR(b"\xa2\x61k\x01\x61k\x02")}
    b.add("bad_cwt_unknown_field_duplicate_key", tok(d), "bad_cwt")
    d = vaccination()
    d["meta"] = Tagged(0, RawCBOR(b"\x62\xc3\x28"))
    b.add("bad_cwt_unknown_field_tagged_non_utf8", tok(d), "bad_cwt")
    d = vaccination()
    d["meta"] = Tagged(1, _nest(14))  # the tag is one level more: depth 17
    b.add("bad_cwt_unknown_field_tagged_too_deep", tok(d), "bad_cwt")
    d = vaccination()
    d["meta"] = RawCBOR(b"\xc1" * 40 + b"\x00")  # 40 tags on a tag: nesting cap
    b.add("bad_cwt_unknown_field_tag_chain", tok(d), "bad_cwt")


def hardening_vectors(b: Builder, iss: dict[str, Issuer], tok: Callable[..., str]) -> None:
    """Issue 10: times out of range, crit, names a gate display must not trust."""
    es = iss["es256"]

    def signed(payload: bytes, **kw: Any) -> str:
        return sign(es, payload, **kw).token

    cwt = "bad_cwt"
    b.add("bad_cwt_exp_year_10000", signed(raw_claims(vaccination(), YEAR_10000, IAT)), cwt)
    b.add("bad_cwt_iat_year_0", signed(raw_claims(vaccination(), EXP, BEFORE_YEAR_1)), cwt)
    b.add(
        "bad_cwt_exp_negative_year_0",
        signed(raw_claims(vaccination(), BEFORE_YEAR_1, BEFORE_YEAR_1)),
        cwt,
    )
    b.add(
        "valid_exp_last_second_of_year_9999",
        sign(iss["collide_a"], raw_claims(vaccination(), LAST_9999, IAT), kid=COLLIDING_KID).token,
        None,
        holder=HOLDER,
        certificate=cert("vaccination", MIDNIGHT - 30 * DAY + 365 * DAY),
    )
    b.add("bad_cwt_iat_after_exp", signed(raw_claims(vaccination(), T + DAY, T + DAY + 1)), cwt)
    b.add("token_iat_equals_exp_decodes", signed(raw_claims(vaccination(), T, T)), None)

    # ---- crit (RFC 9052): only labels this verifier understands -------------------------
    p = claims(vaccination())

    def prot(m: dict[int, Any]) -> bytes:
        return dumps({1: -7, 4: es.kid, **m})

    b.add("valid_crit_alg_kid", signed(p, protected=prot({2: [1, 4]})), None, holder=HOLDER)
    b.add("bad_cose_crit_unknown_label", signed(p, protected=prot({2: [4, 99], 99: 1})), "bad_cose")
    b.add("bad_cose_crit_text_label", signed(p, protected=prot({2: ["exp"]})), "bad_cose")
    b.add("bad_cose_crit_empty", signed(p, protected=prot({2: []})), "bad_cose")
    b.add("bad_cose_crit_not_an_array", signed(p, protected=prot({2: 4})), "bad_cose")
    b.add("bad_cose_crit_unprotected", signed(p, unprotected={2: [4]}), "bad_cose")

    # ---- names: controls and bidirectional overrides replaced by U+FFFD ----------------
    d = vaccination()
    d["nam"]["fn"] = "Иванов\u202eвонавИ"
    d["nam"]["gn"] = "Ив\x00а\nн\u2066\u0085\u200f"
    fffd = "\ufffd"
    b.add(
        "valid_names_controls_and_bidi_replaced",
        tok(d),
        None,
        holder={
            "name": f"Иванов{fffd}вонавИ Ив{fffd}а{fffd}н{fffd}{fffd}{fffd}",
            "name_latin": "IVANOV<IVAN",
            "dob": "1980-01-01",
        },
    )
    d = vaccination()
    d["nam"] = {"fn": "\u202dIVANOV", "fnt": "IVANOV"}
    b.add(
        "valid_name_override_at_start_replaced",
        tok(d),
        None,
        holder={"name": f"{fffd}IVANOV", "name_latin": "IVANOV", "dob": "1980-01-01"},
    )


def valueset_vectors(b: Builder, tok: Callable[..., str]) -> None:
    """Coded fields checked against the EU value sets (release 2.12.0, package data)."""
    for field_, value in (
        ("co", "XY"),
        ("tg", "840539007"),
        ("vp", "J07BX99"),
        ("mp", "EU/9/99/9999"),
        ("ma", "ORG-99999999"),
    ):
        d = vaccination()
        d["v"][0][field_] = value
        b.add(f"bad_payload_unknown_vaccination_{field_}", tok(d), "bad_payload", field=field_)
    for field_, value in (("tt", "LP0000-0"), ("tr", "123456"), ("co", "ZZ")):
        d = test()
        d["t"][0][field_] = value
        b.add(f"bad_payload_unknown_test_{field_}", tok(d), "bad_payload", field=field_)
    d = recovery()
    d["r"][0]["tg"] = "0"
    b.add("bad_payload_unknown_recovery_tg", tok(d), "bad_payload", field="tg")
    d = test(tt="LP217198-3")
    d["t"][0]["ma"] = "9999"
    b.add(
        "valid_test_device_not_checked_without_device_list",
        tok(d),
        None,
        rules={"accepted_test_types": ["LP6464-4", "LP217198-3"]},
    )
    for mp, ma in (
        ("EU/1/20/1528", "ORG-100030215"),
        ("Sputnik-Light", "Gamaleya-Research-Institute"),
        ("CoviVac", "Chumakov-Federal-Scientific-Center"),
        ("EpiVacCorona", "Vector-Institute"),
    ):
        d = vaccination()
        d["v"][0].update(mp=mp, ma=ma)
        b.add(f"valueset_known_product_{mp.replace('/', '_')}", tok(d), None, rules="none")
    d = vaccination(co="XK")
    d["v"][0]["co"] = "XK"
    b.add("valueset_country_xk_known", tok(d), None)
    d = vaccination()
    d["v"][0]["co"] = "ru"
    b.add("bad_payload_co_lowercase_names_co", tok(d), "bad_payload", field="co")


def _nest(depth: int) -> Any:
    value: Any = 0
    for _ in range(depth):
        value = [value]
    return value


def _padded(es: Issuer, inflated: int) -> Signed:
    """A valid vaccination token whose COSE bytes are exactly `inflated` long."""
    dcc = vaccination()
    lo = 0
    for pad in range(inflated - 1200, inflated):
        dcc["x-pad"] = "P" * max(pad, 0)
        s = sign(es, claims(dcc))
        if len(s.cose) == inflated:
            return s
        lo = len(s.cose)
    raise RuntimeError(f"cannot pad a token to {inflated} bytes (last {lo})")


def _long_token(es: Issuer) -> str:
    """A valid token of close to (at most) 8192 characters: incompressible padding."""
    rng = random.Random(20211115)
    best = ""
    lo, hi = 100, 8000
    while lo <= hi:
        mid = (lo + hi) // 2
        dcc = vaccination(ci="URN:UVCI:01:RU:VECTORSLONG")
        dcc["x-noise"] = rng.randbytes(mid)
        token = sign(es, claims(dcc)).token
        if len(token) <= 8192:
            best, lo = token, mid + 1
        else:
            hi = mid - 1
    return best


def revocations_document(b: Builder) -> dict[str, Any]:
    return {"revoked": b.revoked, "registry": b.registry}


def write_json(path: Path, obj: Any) -> None:
    path.write_text(json.dumps(obj, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    import argparse

    ap = argparse.ArgumentParser(description="Generate the qrverify test vectors.")
    ap.add_argument(
        "--out",
        type=Path,
        default=HERE,
        help="directory for the JSON files (default: next to this script); "
        "issuer keys always live in tests/vectors/keys",
    )
    out: Path = ap.parse_args(argv).out
    out.mkdir(parents=True, exist_ok=True)
    issuers = load_issuers()
    b = build(issuers)
    write_json(out / TRUST_FILE, trust_document(issuers))
    write_json(out / REVOCATIONS_FILE, revocations_document(b))
    write_json(out / VECTORS_FILE, b.vectors)
    reasons = sorted({v["expect"]["reason"] or "valid" for v in b.vectors})
    print(f"wrote {len(b.vectors)} vectors ({len(reasons)} outcomes) to {out / VECTORS_FILE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
