"""Property-based tests (hypothesis) against the compiled decoder and the Verifier.

Every input, however broken, must give a Verdict with a contract reason code, never an
exception; personal data only once the signature is verified (checked against an
independent decode with cbor2 and the trust registry's keys).
"""

from __future__ import annotations

import copy
import json
import math
import re
import struct
import zlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import cbor2
import jsonschema
import pytest
from examples import examples
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from vector_support import TRUST_FILE, UNVERIFIED_REASONS, VECTORS_DIR

import fastpath
import fastpath._decode
import verifier as verifier_pkg
from keys import base45
from keys.cbor import RawCBOR, Tagged, dumps
from keys.cose import sig_structure, sign1
from keys.issuer import load_issuer
from keys.registry import TrustRegistry
from keys.samples import DCC_KEYS, ENTRY_KEYS, NAME_KEYS, sample_dcc
from keys.token import cwt_bytes, hc1_from_cose
from verifier import Reason, Verdict, Verifier

AT = datetime(2021, 11, 15, 12, 0, 0, tzinfo=UTC)
NOW = int(AT.timestamp())
CONTRACT = {r.value for r in Reason}
TRUST = TrustRegistry.from_file(TRUST_FILE)
ISSUER = load_issuer(VECTORS_DIR / "keys" / "es256")
SCHEMA = json.loads(
    (Path(verifier_pkg.__file__).parent / "data" / "DCC.combined-schema.json").read_text(
        encoding="utf-8"
    )
)
B45 = base45.ALPHABET
TYPES = ("vaccination", "test", "recovery")
SETTINGS = settings(
    max_examples=examples(1000),
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)


def _token(cert_type: str, **kw: Any) -> str:
    dcc = sample_dcc(cert_type, at=NOW)
    return hc1_from_cose(
        sign1(
            cwt_bytes(dcc, iat=NOW - 3600, exp=NOW + 86400 * 300, iss="RU"),
            ISSUER,
            kid=ISSUER.kid,
            **kw,
        )
    )


VALID = [
    _token("vaccination"),
    _token("test"),
    _token("recovery", form="untagged"),
    _token("vaccination", kid_placement="unprotected", form="tag61"),
]


@pytest.fixture(scope="module")
def verifier() -> Verifier:
    return Verifier.from_files(trust=TRUST_FILE, cache_size=0)


def test_compiled_module() -> None:
    assert fastpath._decode.__file__ is not None
    assert fastpath._decode.__file__.endswith(".so")


def test_valid_seeds(verifier: Verifier) -> None:
    for token in VALID:
        assert verifier.verify(token, at=AT).valid


# -- the independent oracle -------------------------------------------------------------


def independently_verified(token: Any) -> bool:
    """True if cbor2 + the trust registry's keys find a valid signature on the token."""
    try:
        text = token.decode("ascii") if isinstance(token, bytes) else token
        if not text.startswith("HC1:"):
            return False
        msg = cbor2.loads(zlib.decompress(base45.decode(text[4:])))
        for tag in (61, 18):
            if isinstance(msg, cbor2.CBORTag) and msg.tag == tag:
                msg = msg.value
        protected, unprotected, payload, signature = msg
        header = cbor2.loads(protected) if protected else {}
        kid = header.get(4, unprotected.get(4) if isinstance(unprotected, dict) else None)
        data = sig_structure(protected, payload)
        return any(k.verify(header[1], signature, data) for k in TRUST.candidates(kid))
    except Exception:  # noqa: BLE001 - any failure: not verified
        return False


def check(verdict: Verdict, token: Any, *, resigned: bool = False) -> None:
    """The invariants every verdict must satisfy."""
    assert isinstance(verdict, Verdict)
    d = verdict.to_dict()
    assert d["status"] in ("valid", "invalid")
    assert (d["reason"] is None) == (d["status"] == "valid")
    assert d["reason"] is None or d["reason"] in CONTRACT
    if verdict.reason in UNVERIFIED_REASONS:
        assert "holder" not in d and "certificate" not in d
    else:
        assert isinstance(d["holder"], dict) and isinstance(d["certificate"], dict)
        assert all(isinstance(x, str) for x in d["holder"].values())
        assert d["certificate"]["type"] in TYPES
    if "holder" in d:
        assert independently_verified(token), "holder shown for an unverified token"
    if resigned:  # signed by a trusted key: the key and signature layers must pass
        assert d["reason"] not in {
            "bad_prefix",
            "bad_base45",
            "bad_compression",
            "unknown_key",
            "bad_signature",
        }
    json.loads(verdict.to_json())


# -- mutation helpers -------------------------------------------------------------------

mutation = st.tuples(st.integers(0, 2), st.integers(0, 1 << 16), st.integers(0, 255))


def mutate_bytes(buf: bytes, muts: list[tuple[int, int, int]]) -> bytes:
    b = bytearray(buf)
    for op, pos, val in muts:
        i = pos % (len(b) + 1)
        if op == 0 and i < len(b):
            b[i] ^= val or 1
        elif op == 1:
            b.insert(i, val)
        elif i < len(b):
            del b[i]
    return bytes(b)


def mutate_text(text: str, muts: list[tuple[int, int, int]]) -> str:
    chars = list(text)
    for op, pos, val in muts:
        i = 4 + pos % (len(chars) - 3)
        ch = B45[val % 45] if val < 240 else chr(val + 0x100)
        if op == 0 and i < len(chars):
            chars[i] = ch
        elif op == 1:
            chars.insert(i, ch)
        elif i < len(chars):
            del chars[i]
    return "".join(chars)


def inflated(token: str) -> bytes:
    return zlib.decompress(base45.decode(token[4:]))


# -- random input -----------------------------------------------------------------------


@SETTINGS
@given(st.text(max_size=300))
def test_random_text(verifier: Verifier, text: str) -> None:
    for token in (text, "HC1:" + text):
        check(verifier.verify(token, at=AT), token)


@SETTINGS
@given(st.binary(max_size=400))
def test_random_bytes(verifier: Verifier, raw: bytes) -> None:
    for token in (
        raw,
        b"HC1:" + raw,
        "HC1:" + base45.encode(raw),
        "HC1:" + base45.encode(zlib.compress(raw)),
    ):
        check(verifier.verify(token, at=AT), token)


@SETTINGS
@given(st.text(alphabet=B45, max_size=600))
def test_random_base45(verifier: Verifier, text: str) -> None:
    check(verifier.verify("HC1:" + text, at=AT), "HC1:" + text)


# -- mutated valid tokens -----------------------------------------------------------------


@SETTINGS
@given(st.sampled_from(VALID), st.lists(mutation, min_size=1, max_size=4))
def test_mutated_base45(verifier: Verifier, token: str, muts: list[Any]) -> None:
    bad = mutate_text(token, muts)
    check(verifier.verify(bad, at=AT), bad)


@SETTINGS
@given(st.sampled_from(VALID), st.lists(mutation, min_size=1, max_size=4))
def test_mutated_cose_recompressed(verifier: Verifier, token: str, muts: list[Any]) -> None:
    bad = "HC1:" + base45.encode(zlib.compress(mutate_bytes(inflated(token), muts)))
    verdict = verifier.verify(bad, at=AT)
    check(verdict, bad)
    assert verdict.reason not in (Reason.BAD_PREFIX, Reason.BAD_BASE45, Reason.BAD_COMPRESSION)


@SETTINGS
@given(st.sampled_from(VALID), st.lists(mutation, min_size=1, max_size=3))
def test_mutated_zlib_stream(verifier: Verifier, token: str, muts: list[Any]) -> None:
    bad = "HC1:" + base45.encode(mutate_bytes(base45.decode(token[4:]), muts))
    check(verifier.verify(bad, at=AT), bad)


@SETTINGS
@given(st.sampled_from(TYPES), st.lists(mutation, min_size=1, max_size=4))
def test_mutated_payload_resigned(verifier: Verifier, cert_type: str, muts: list[Any]) -> None:
    dcc = sample_dcc(cert_type, at=NOW)
    payload = mutate_bytes(cwt_bytes(dcc, iat=NOW - 3600, exp=NOW + 86400 * 300, iss="RU"), muts)
    token = hc1_from_cose(sign1(payload, ISSUER, kid=ISSUER.kid))
    verdict = verifier.verify(token, at=AT)
    if verdict.reason is Reason.UNKNOWN_KEY:  # iss mutated into another country's code:
        iss = fastpath._decode.decode(token).iss  # a RU key does not issue for it (1a)
        assert iss is not None and len(iss) == 2 and iss.isascii() and iss.isalpha()
        assert iss.upper() != "RU" and verdict.holder is None
        return
    check(verdict, token, resigned=True)
    assert verdict.reason is not Reason.BAD_COSE


# -- random DCC payloads, re-signed --------------------------------------------------------

INTERESTING = st.sampled_from(
    [
        "",
        "2021-10-16",
        "2021-02-30",
        "1980-01-01",
        "1899-01-01",
        "2100-01-01",
        "1980",
        "2021-11-15T10:00:00Z",
        "2021-11-15T10:00:00",
        "2021-11-15T10:00:00+03:00",
        "IVANOV",
        "ivanov",
        "A" * 80,
        "A" * 81,
        "RU",
        "ru",
        "1.3.0",
        "1.3",
        "260415000",
        "260373001",
        "LP6464-4",
        "LP217198-3",
        "Иванов",
        "\x00",
        "<<<",
        "URN:UVCI:01:RU:X#1",
    ]
)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(1 << 64), (1 << 64) - 1)
    | st.integers(-3, 1000)
    | st.floats(allow_nan=False)
    | st.text(max_size=90)
    | INTERESTING
)


def _json_containers(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)


JSONISH = st.recursive(SCALARS, _json_containers, max_leaves=6)

edit = st.tuples(
    st.sampled_from(["top", "nam", "entry"]),
    st.integers(0, 100),
    st.sampled_from(["set", "delete"]),
    JSONISH,
)


def edit_dcc(dcc: dict[str, Any], edits: list[tuple[str, int, str, Any]]) -> dict[str, Any]:
    group = next(k for k in ("v", "t", "r") if k in dcc)
    for where, n, action, value in edits:
        if where == "top":
            target, keys = dcc, DCC_KEYS
        elif where == "nam" and isinstance(dcc.get("nam"), dict):
            target, keys = dcc["nam"], NAME_KEYS
        elif (
            where == "entry"
            and isinstance(dcc.get(group), list)
            and dcc[group]
            and isinstance(dcc[group][0], dict)
        ):
            target, keys = dcc[group][0], ENTRY_KEYS
        else:
            continue
        key = keys[n % len(keys)]
        if action == "delete":
            target.pop(key, None)
        else:
            target[key] = value
    return dcc


_DATE_TIME_RE = re.compile(
    r"(\d{4})-(\d\d)-(\d\d)[Tt](\d\d):(\d\d):(\d\d)(\.\d+)?"
    r"([Zz]|[+-]\d\d(:?\d\d)?)",
    re.ASCII,
)


def rfc3339_epoch(value: Any) -> int | None:
    """Epoch seconds (rounded down) of an RFC 3339 date-time as the contract reads it
    (zone Z, +HH:MM, +HHMM or +HH; leap second 60 counts as 59), else None."""
    if not isinstance(value, str) or len(value) > 40:
        return None
    m = _DATE_TIME_RE.fullmatch(value)
    if m is None:
        return None
    y, mo, d, hh, mi, ss = (int(g) for g in m.groups()[:6])
    zone = m.group(8)
    try:
        day = datetime(y, mo, d, tzinfo=UTC)
    except ValueError:
        return None
    if hh > 23 or mi > 59 or ss > 60:
        return None
    offset = 0
    if zone not in ("Z", "z"):
        oh, om = int(zone[1:3]), int(zone[-2:]) if len(zone) > 3 else 0
        if oh > 23 or om > 59:
            return None
        offset = (oh * 3600 + om * 60) * (1 if zone[0] == "+" else -1)
    return int(day.timestamp()) + hh * 3600 + mi * 60 + min(ss, 59) - offset


def plain_date(value: str) -> int | None:
    """Epoch of 00:00Z of a 'YYYY-MM-DD' text, else None."""
    if re.fullmatch(r"\d{4}-\d\d-\d\d", value, re.ASCII) is None:
        return None
    try:
        return int(datetime.fromisoformat(value).replace(tzinfo=UTC).timestamp())
    except ValueError:
        return None


def schema_accepts(dcc: Any) -> bool:
    """The EU DCC schema, with the one leniency (CONTRACT 1a) that changes a value's form:
    an RFC 3339 date-time in a date field (dt, fr, df, du) stands for its date part."""
    validator = jsonschema.Draft202012Validator(
        SCHEMA, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )
    dcc = copy.deepcopy(dcc)
    for group in ("v", "t", "r"):
        entries = dcc.get(group) if isinstance(dcc, dict) else None
        if isinstance(entries, list) and entries and isinstance(entries[0], dict):
            for key in ("dt", "fr", "df", "du"):
                value = entries[0].get(key)
                if isinstance(value, str) and rfc3339_epoch(value) is not None:
                    entries[0][key] = value[:10]
    return validator.is_valid(dcc)


@SETTINGS
@given(st.sampled_from(TYPES), st.lists(edit, min_size=1, max_size=3))
def test_random_dcc_resigned(verifier: Verifier, cert_type: str, edits: list[Any]) -> None:
    dcc = edit_dcc(sample_dcc(cert_type, at=NOW), edits)
    token = hc1_from_cose(
        sign1(
            cwt_bytes(dcc, iat=NOW - 3600, exp=NOW + 86400 * 300, iss="RU"), ISSUER, kid=ISSUER.kid
        )
    )
    verdict = verifier.verify(token, at=AT)
    check(verdict, token, resigned=True)
    assert verdict.reason not in (Reason.BAD_COSE, Reason.BAD_CWT, Reason.TOO_LARGE)
    if verdict.reason is not Reason.BAD_PAYLOAD:
        # what our schema check accepts, the reference schema accepts too
        assert schema_accepts(dcc), f"accepted a payload the EU DCC schema rejects: {dcc!r}"


# -- loads_cbor against cbor2 --------------------------------------------------------------

CBOR_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(1 << 64), (1 << 64) - 1)
    | st.floats()
    | st.text(max_size=40)
    | st.binary(max_size=40)
)


def _cbor_containers(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    keys = st.integers(-(1 << 64), (1 << 64) - 1) | st.text(max_size=8)
    return st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=4)


CBOR_VALUES = st.recursive(CBOR_SCALARS, _cbor_containers, max_leaves=30)


def _depth(value: Any) -> int:
    """Depth of the deepest item, the top-level item being at depth 0."""
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=-1)
    if isinstance(value, dict):
        return 1 + max((max(_depth(k), _depth(v)) for k, v in value.items()), default=-1)
    return 0


def same(a: Any, b: Any) -> bool:
    """Structural equality with types (True != 1) and NaN == NaN."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return (math.isnan(a) and math.isnan(b)) or (
            a == b and math.copysign(1, a) == math.copysign(1, b)
        )
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    return bool(a == b)


@SETTINGS
@given(CBOR_VALUES, st.booleans())
def test_loads_cbor_matches_cbor2(value: Any, canonical: bool) -> None:
    data = cbor2.dumps(value, canonical=canonical)
    expected = cbor2.loads(data)
    if _depth(value) > 16:
        with pytest.raises(ValueError):
            fastpath.loads_cbor(data)
        return
    assert same(fastpath.loads_cbor(data), expected)
    if not _has_float(value):  # our own encoder (shortest ints, insertion order)
        ours = dumps(value)
        assert same(fastpath.loads_cbor(ours), cbor2.loads(ours))


def _has_float(value: Any) -> bool:
    if isinstance(value, float):
        return True
    if isinstance(value, list):
        return any(_has_float(v) for v in value)
    if isinstance(value, dict):
        return any(_has_float(v) for v in value.values())
    return False


@SETTINGS
@given(st.binary(max_size=200))
def test_loads_cbor_random_bytes_agree_when_accepted(raw: bytes) -> None:
    try:
        got = fastpath.loads_cbor(raw)
    except ValueError:
        return
    expected = cbor2.loads(raw)  # whatever we accept, a full decoder reads the same way
    assert same(got, expected)


# -- EU leniencies: exp / iat as floats, date-times as tags (CONTRACT 1a) ------------------

MIN_TIME = -62135596800  # 0001-01-01T00:00:00Z
MAX_TIME = 253402300799  # 9999-12-31T23:59:59Z
BARE = load_issuer(VECTORS_DIR / "keys" / "collide_a")  # a trust entry without validity dates
BARE_KID = b"collide!"


class Num:
    """A number as CBOR: an integer, or a float in half / single / double precision."""

    def __init__(self, value: float | int, width: int = 0) -> None:
        self.value = value
        self.width = width

    def cbor(self) -> Any:
        if self.width == 0:
            return self.value
        fmt = {16: (b"\xf9", ">e"), 32: (b"\xfa", ">f"), 64: (b"\xfb", ">d")}[self.width]
        return RawCBOR(fmt[0] + struct.pack(fmt[1], self.value))

    def rounded(self, up: bool) -> int | None:
        """The epoch second the contract makes of it, or None when it must be refused."""
        v = self.value
        if isinstance(v, float):
            if not math.isfinite(v):
                return None
            v = math.ceil(v) if up else math.floor(v)
        return v if MIN_TIME <= v <= MAX_TIME else None

    def __repr__(self) -> str:
        return f"Num({self.value!r}, {self.width})"


NUMS = st.one_of(
    st.integers(MIN_TIME - 10, MAX_TIME + 10).map(Num),
    st.integers(-(1 << 63), (1 << 64) - 1).map(Num),
    st.sampled_from([MIN_TIME, MAX_TIME, MIN_TIME - 1, MAX_TIME + 1, NOW]).map(Num),
    st.floats(width=16).map(lambda f: Num(f, 16)),
    st.floats(width=32).map(lambda f: Num(f, 32)),
    st.floats(width=64).map(lambda f: Num(f, 64)),
    st.floats(MIN_TIME - 2.0, MAX_TIME + 2.0).map(lambda f: Num(f, 64)),
    st.sampled_from(
        [MAX_TIME + 0.5, MAX_TIME + 0.999, MIN_TIME - 0.5, MIN_TIME + 0.5, NOW + 0.5, -0.0]
    ).map(lambda f: Num(f, 64)),
)


@SETTINGS
@given(NUMS, NUMS)
def test_exp_iat_numbers_accepted_exactly_as_the_contract_says(
    verifier: Verifier, exp: Num, iat: Num
) -> None:
    dcc = sample_dcc("vaccination", at=NOW)
    payload = dumps({1: "RU", 4: exp.cbor(), 6: iat.cbor(), -260: {1: dcc}})
    token = hc1_from_cose(sign1(payload, BARE, kid=BARE_KID))
    e, i = exp.rounded(False), iat.rounded(True)
    expect_ok = e is not None and i is not None and i <= e
    try:
        d = fastpath._decode.decode(token)
    except fastpath.DecodeError as exc:
        assert not expect_ok, f"refused {exp} / {iat}"
        assert exc.reason == "bad_cwt"
        assert exc.detail
    else:
        assert expect_ok, f"accepted {exp} / {iat}"
        assert (d.exp, d.iat) == (e, i)
        assert d.payload_ok
    verdict = verifier.verify(token, at=AT)
    check(verdict, token, resigned=True)
    assert (verdict.reason is Reason.BAD_CWT) == (not expect_ok)


def _sc_text(moment: datetime, form: int) -> str:
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    return text + ["Z", "+03:00", "-0530", "+01", ".25Z", "z"][form]


SC_TEXT = st.builds(
    _sc_text, st.datetimes(datetime(1, 1, 2), datetime(9999, 12, 30)), st.integers(0, 5)
)
BAD_SC_TEXT = st.one_of(
    SC_TEXT.map(lambda t: t.rstrip("Zz")),  # no zone
    SC_TEXT.map(lambda t: t[:10]),  # a date
    SC_TEXT.map(lambda t: t.replace("T", " ")),  # space separator
    st.text(max_size=30),
)
TAG_NUMBERS = st.sampled_from([0, 1, 2, 3, 4, 5, 32, 100, 1004, 55799, (1 << 64) - 1])


@st.composite
def sc_values(draw: Any) -> tuple[Any, int | None]:
    """A value for `sc` and the epoch second the contract reads from it (None: refused)."""
    kind = draw(st.integers(0, 5))
    if kind == 0:
        text = draw(SC_TEXT | BAD_SC_TEXT)
        return text, rfc3339_epoch(text)
    if kind == 1:
        text = draw(SC_TEXT | BAD_SC_TEXT)
        return Tagged(0, text), rfc3339_epoch(text)
    if kind == 2:
        num = draw(NUMS)
        return Tagged(1, num.cbor()), num.rounded(False)
    if kind == 3:  # tag 0 with a number, tag 1 with text: refused
        num = draw(NUMS)
        text = draw(SC_TEXT)
        return draw(st.sampled_from([Tagged(0, num.cbor()), Tagged(1, text)])), None
    if kind == 4:  # any other tag, or a tag on a tag
        tag = draw(TAG_NUMBERS.filter(lambda t: t not in (0, 1)))
        text = draw(SC_TEXT)
        return draw(
            st.sampled_from(
                [Tagged(tag, text), Tagged(0, Tagged(0, text)), Tagged(1, Tagged(1, NOW))]
            )
        ), None
    return draw(NUMS).cbor(), None  # an untagged number


@SETTINGS
@given(sc_values())
def test_sc_forms_accepted_exactly_as_the_contract_says(
    verifier: Verifier, sc: tuple[Any, int | None]
) -> None:
    value, expected = sc
    dcc = sample_dcc("test", at=NOW)
    dcc["t"][0]["sc"] = value
    token = hc1_from_cose(
        sign1(
            cwt_bytes(dcc, iat=NOW - 3600, exp=NOW + 86400 * 300, iss="RU"), ISSUER, kid=ISSUER.kid
        )
    )
    d = fastpath._decode.decode(token)
    assert d.payload_ok == (expected is not None), repr(value)
    if expected is not None:
        assert d.sc == expected
    else:
        assert d.payload_field == "sc"
    verdict = verifier.verify(token, at=AT)
    check(verdict, token, resigned=True)
    assert (verdict.reason is Reason.BAD_PAYLOAD) == (expected is None)


@st.composite
def date_values(draw: Any) -> tuple[Any, int | None]:
    """A value for a date field (dt, fr, df, du) and the day it stands for (epoch of
    00:00Z), or None when refused: a date, a date-time (its written date counts), tag 0
    with a date-time, tag 1 with an epoch (its UTC date)."""
    kind = draw(st.integers(0, 3))
    if kind == 0:
        day = draw(st.dates())
        text = draw(
            st.sampled_from(
                [day.isoformat(), day.isoformat().replace("-", "/"), day.isoformat() + "T"]
            )
        )
        ok = len(text) == 10 and text[4] == "-"
        return text, (
            int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()) if ok else None
        )
    text = draw(SC_TEXT | BAD_SC_TEXT)
    epoch = rfc3339_epoch(text)
    day_of = (
        None
        if epoch is None
        else int(datetime.fromisoformat(text[:10]).replace(tzinfo=UTC).timestamp())
    )
    if kind == 1:
        return text, day_of if epoch is not None else plain_date(text)
    if kind == 2:
        return Tagged(0, text), day_of
    num = draw(NUMS)
    r = num.rounded(False)
    return Tagged(1, num.cbor()), None if r is None else r - r % 86400


@SETTINGS
@given(st.sampled_from(["dt", "fr", "df", "du"]), date_values())
def test_date_fields_accept_date_times_by_their_date_part(
    field: str, value: tuple[Any, int | None]
) -> None:
    cbor_value, expected = value
    cert_type = "vaccination" if field == "dt" else "recovery"
    dcc = sample_dcc(cert_type, at=NOW)
    dcc["v" if field == "dt" else "r"][0][field] = cbor_value
    token = hc1_from_cose(
        sign1(
            cwt_bytes(dcc, iat=NOW - 3600, exp=NOW + 86400 * 300, iss="RU"), ISSUER, kid=ISSUER.kid
        )
    )
    d = fastpath._decode.decode(token)
    assert d.payload_ok == (expected is not None), repr(cbor_value)
    if expected is not None:
        assert getattr(d, field) == expected
    else:
        assert d.payload_field == field


def _tagged_containers(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.text(max_size=4) | st.integers(-5, 5), inner, max_size=3)
        | st.builds(Tagged, TAG_NUMBERS, inner)
    )


TAGGED_JSONISH = st.recursive(SCALARS | st.binary(max_size=8), _tagged_containers, max_leaves=6)


@SETTINGS
@given(
    st.sampled_from(TYPES),
    st.sampled_from(["top", "nam", "entry", "claims", "hcert"]),
    TAGGED_JSONISH,
)
def test_unknown_fields_are_ignored_whatever_they_hold(
    verifier: Verifier, cert_type: str, where: str, value: Any
) -> None:
    dcc = sample_dcc(cert_type, at=NOW)
    group = next(k for k in ("v", "t", "r") if k in dcc)
    claims: dict[Any, Any] = {1: "RU", 4: NOW + 86400 * 300, 6: NOW - 3600, -260: {1: dcc}}
    if where == "top":
        dcc["meta"] = value
    elif where == "nam":
        dcc["nam"]["x-name"] = value
    elif where == "entry":
        dcc[group][0]["x-entry"] = value
    elif where == "claims":
        claims[99] = value
    else:
        claims[-260][7] = value
    token = hc1_from_cose(sign1(dumps(claims), ISSUER, kid=ISSUER.kid))
    d = fastpath._decode.decode(token)  # the nesting stays far below the cap here
    assert d.payload_ok
    verdict = verifier.verify(token, at=AT)
    check(verdict, token, resigned=True)
    assert verdict.reason not in UNVERIFIED_REASONS, verdict.reason
