# cython: language_level=3
"""HC1 token decoding: the untrusted-input half of verification.

One entry point, `decode(token)`, takes a scanned string to a `Decoded` record:
prefix -> Base45 -> zlib (output capped) -> COSE_Sign1 -> CWT claims -> DCC payload
check (EU DCC schema 1.3) -> revocation hashes. Signatures are NOT checked here; the
caller verifies `signature` over `sig_structure` with the issuer key for `kid`, and must
not show any payload field before that succeeds.

Every failure raises `DecodeError` whose `.reason` is one of the contract's reason
codes; `_REASONS` below is the single place mapping internal error numbers to them.
Input is hostile: every length is checked against the bytes that remain, nesting is
capped, map keys must be unique, and no Python recursion is unbounded.
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.dict cimport PyDict_SetDefault
from cpython.list cimport PyList_New, PyList_SET_ITEM
from cpython.ref cimport Py_INCREF
from cpython.unicode cimport PyUnicode_DecodeUTF8
from libc.math cimport INFINITY, NAN, floor, ldexp
from libc.stdint cimport int64_t, uint8_t, uint32_t, uint64_t
from libc.string cimport memcmp, memcpy, memmove, memset
from posix.dlfcn cimport RTLD_LOCAL, RTLD_NOW, dlopen, dlsym


cdef extern from "Python.h":
    const char* PyUnicode_AsUTF8AndSize(object, Py_ssize_t*) except NULL
    dict _PyDict_NewPresized(Py_ssize_t)
    str PyUnicode_FromStringAndSize(const char*, Py_ssize_t)

# ---------------------------------------------------------------------------
# Limits and error numbers

cdef enum:
    DEF_MAX_TOKEN_CHARS = 8192  # a QR code holds at most 4296 alphanumeric characters
    DEF_MAX_INFLATED = 16384    # real DCCs inflate to well under 2 KiB
    MAX_DEPTH = 16              # CBOR nesting (the DCC needs 5)
    MAX_STR = 80                # EU DCC schema maxLength for names, issuer, ci, ...
    ISSUER_DISPLAY_MAX = 80     # certificate.issuer shown from the free-text iss claim

cdef enum:
    E_PREFIX = 1
    E_BASE45 = 2
    E_COMPRESSION = 3
    E_TOO_LARGE = 4
    E_COSE = 5
    E_CWT = 6

_REASONS = {
    E_PREFIX: "bad_prefix",
    E_BASE45: "bad_base45",
    E_COMPRESSION: "bad_compression",
    E_TOO_LARGE: "too_large",
    E_COSE: "bad_cose",
    E_CWT: "bad_cwt",
}

MAX_TOKEN_CHARS = DEF_MAX_TOKEN_CHARS
MAX_INFLATED = DEF_MAX_INFLATED

TYPE_NAMES = ("vaccination", "test", "recovery")


class DecodeError(ValueError):
    """A token that cannot be decoded. `reason` is a contract reason code; `detail` is
    None or an English sentence saying what was wrong (never any personal data)."""

    def __init__(self, reason, detail=None):
        ValueError.__init__(self, reason)
        self.reason = reason
        self.detail = detail


class _Malformed(Exception):
    """Internal: malformed CBOR; the caller knows which layer it was in."""


cdef inline object _fail(int code):
    raise DecodeError(_REASONS[code])


cdef inline object _fail_detail(int code, str detail):
    raise DecodeError(_REASONS[code], detail)


include "_base45.pxi"
include "_cbor.pxi"
include "_inflate.pxi"
include "_hash.pxi"
include "_valuesets.pxi"
include "_dcc.pxi"


# ---------------------------------------------------------------------------
# The decoded record

cdef class Decoded:
    """What a token says, before anyone has checked the signature (fields: _decode.pxd)."""

    @property
    def country(self):
        """The issuing country for revocation hashes and display: iss, else co."""
        return self.iss if self.iss else self.co

    @property
    def issuer_display(self):
        """The issuer as a verdict shows it: iss (else co) with the characters that could
        spoof a display replaced by U+FFFD, cut to ISSUER_DISPLAY_MAX characters (iss is
        free text: some issuers put a ministry's name there)."""
        cdef str text = self.iss if self.iss else self.co
        if text is None:
            return None
        text = _display_name(text)
        if len(text) > ISSUER_DISPLAY_MAX:
            text = text[:ISSUER_DISPLAY_MAX - 1] + u"\u2026"
        return text


# ---------------------------------------------------------------------------
# COSE_Sign1 and CWT

cdef inline Py_ssize_t _head_len(Py_ssize_t n):
    return 1 if n < 24 else 2 if n < 0x100 else 3 if n < 0x10000 else 5


cdef Py_ssize_t _put_bstr_head(uint8_t* w, Py_ssize_t n):
    if n < 24:
        w[0] = 0x40 | n
        return 1
    if n < 0x100:
        w[0] = 0x58
        w[1] = n
        return 2
    if n < 0x10000:
        w[0] = 0x59
        w[1] = n >> 8
        w[2] = n & 0xFF
        return 3
    w[0] = 0x5A
    w[1] = (n >> 24) & 0xFF
    w[2] = (n >> 16) & 0xFF
    w[3] = (n >> 8) & 0xFF
    w[4] = n & 0xFF
    return 5


cdef bytes _sig_structure(bytes protected, bytes payload):
    """CBOR ["Signature1", protected, h'', payload] built in one allocation."""
    cdef Py_ssize_t np = PyBytes_GET_SIZE(protected), nl = PyBytes_GET_SIZE(payload)
    cdef bytes out = PyBytes_FromStringAndSize(
        NULL, 12 + _head_len(np) + np + 1 + _head_len(nl) + nl)
    cdef uint8_t* w = <uint8_t*>PyBytes_AS_STRING(out)
    cdef Py_ssize_t o = 12
    memcpy(w, b"\x84\x6aSignature1", 12)
    o += _put_bstr_head(w + o, np)
    memcpy(w + o, PyBytes_AS_STRING(protected), np)
    o += np
    w[o] = 0x40
    o += 1
    o += _put_bstr_head(w + o, nl)
    memcpy(w + o, PyBytes_AS_STRING(payload), nl)
    return out


cdef object _header_map(object raw, bint protected):
    """The protected header is a bstr holding a map (empty bstr = empty map)."""
    if protected:
        if type(raw) is not bytes:
            _fail(E_COSE)
        if len(<bytes>raw) == 0:
            return {}
        try:
            raw = _loads(<bytes>raw, False)
        except _Malformed:
            _fail(E_COSE)
    if type(raw) is not dict:
        _fail(E_COSE)
    return raw


# NumericDate bounds: 0001-01-01T00:00:00Z .. 9999-12-31T23:59:59Z (format_iso_utc's range)
cdef int64_t MIN_TIME = -62135596800
cdef int64_t MAX_TIME = 253402300799


cdef int _time_value(object value, bint round_up, int64_t* out) except -2:
    """An epoch time given as an integer or a CBOR float (NumericDate allows fractions):
    floats are rounded down (or up). 0 when set; -1 for NaN, infinities, other types and
    anything that is not (after rounding) in years 1..9999."""
    cdef double f, r
    if type(value) is int:
        if not MIN_TIME <= value <= MAX_TIME:
            return -1
        out[0] = value
        return 0
    if type(value) is float:
        f = value
        if not (MIN_TIME - 1 < f < MAX_TIME + 1):  # also false for NaN
            return -1
        r = floor(f)
        if round_up and r != f:
            r += 1
        if not (MIN_TIME <= r <= MAX_TIME):
            return -1
        out[0] = <int64_t>r
        return 0
    return -1


cdef int _time_claim(object value, bint round_up, int64_t* out, str name) except -1:
    """exp (4) / iat (6): see _time_value; anything else is bad_cwt."""
    if _time_value(value, round_up, out) < 0:
        _fail_detail(E_CWT, f"The token's {name} is not a time between the years 1 and 9999.")
    return 0


cdef int _claims(bytes payload, Decoded out, ValueSets vs) except -1:
    """The CWT claims map: iss (1), exp (4), iat (6) and hcert (-260) whose key 1 holds the
    DCC. Malformed CBOR raises _Malformed; a missing or mistyped claim fails with bad_cwt."""
    cdef Cur c
    cdef Py_ssize_t n, i, m, j
    cdef object key, value
    cdef set others = None, hkeys = None
    cdef int have = 0, label
    c.p = <const uint8_t*>PyBytes_AS_STRING(payload)
    c.end = c.p + PyBytes_GET_SIZE(payload)
    if not _open_map(&c, 0, &n):
        _item(&c, 0)
        if c.p != c.end:
            raise _Malformed("trailing bytes")
        _fail(E_CWT)
    for i in range(n):
        key = _item(&c, 1)
        if type(key) is int and (key == 1 or key == 4 or key == 6 or key == -260):
            label = key
            bit = 1 if label == 1 else 2 if label == 4 else 4 if label == 6 else 8
            if have & bit:
                raise _Malformed("duplicate map key")
            have |= bit
            if label == -260:
                if not _open_map(&c, 1, &m):
                    _item(&c, 1)
                    _fail(E_CWT)
                hkeys = set()
                for j in range(m):
                    key = _item(&c, 2)
                    if type(key) is not int and type(key) is not str:
                        raise _Malformed("map key must be an integer or text")
                    if key in hkeys:
                        raise _Malformed("duplicate map key")
                    hkeys.add(key)
                    if type(key) is int and key == 1:
                        out.payload_ok = _dcc(&c, 2, out, vs)
                    else:
                        _ignored(&c, 2)
                continue
            value = _item(&c, 1)
            if label == 1:
                if type(value) is not str:
                    _fail(E_CWT)
                out.iss = value
            elif label == 4:
                _time_claim(value, False, &out.exp, "exp")  # exp rounds down
            else:
                _time_claim(value, True, &out.iat, "iat")   # iat rounds up
            continue
        if type(key) is not int and type(key) is not str:
            raise _Malformed("map key must be an integer or text")
        if others is None:
            others = set()
        if key in others:
            raise _Malformed("duplicate map key")
        others.add(key)
        _ignored(&c, 1)
    if c.p != c.end:
        raise _Malformed("trailing bytes")
    if have & 14 != 14 or 1 not in hkeys:
        _fail(E_CWT)
    if out.iat > out.exp:
        _fail_detail(E_CWT, "The token was issued (iat) after it expires (exp).")
    return 0


cdef int _check_crit(dict prot, object unprot) except -1:
    """RFC 9052 crit (label 2): only in the protected header, a non-empty array of labels,
    each one this verifier understands (alg 1, crit 2, kid 4)."""
    cdef object crit = prot.get(2, _ABSENT)
    if 2 in <dict>unprot:
        _fail_detail(E_COSE, "The crit header parameter is not in the protected header.")
    if crit is _ABSENT:
        return 0
    if type(crit) is not list or len(<list>crit) == 0:
        _fail_detail(E_COSE, "The crit header parameter is not a non-empty array.")
    for label in <list>crit:
        if type(label) is not int or not (label == 1 or label == 2 or label == 4):
            _fail_detail(E_COSE, "The crit header parameter names a header parameter "
                                 "this verifier does not understand.")
    return 0


cdef Decoded _decode_cose(bytes cose, ValueSets vs):
    cdef object msg, prot, unprot, alg, kid, payload, signature
    cdef Decoded out = Decoded.__new__(Decoded)
    try:
        msg = _loads(cose, True)
    except _Malformed:
        _fail(E_COSE)
    if type(msg) is not list or len(<list>msg) != 4:
        _fail(E_COSE)
    prot = _header_map(msg[0], True)
    unprot = _header_map(msg[1], False)
    payload = msg[2]
    signature = msg[3]
    if type(payload) is not bytes or type(signature) is not bytes:
        _fail(E_COSE)
    if 2 in <dict>prot or 2 in <dict>unprot:
        _check_crit(<dict>prot, unprot)
    alg = (<dict>prot).get(1)
    if type(alg) is not int or not -65536 < alg < 65536:
        _fail(E_COSE)
    kid = (<dict>prot).get(4, _ABSENT)
    if kid is _ABSENT:
        kid = (<dict>unprot).get(4, _ABSENT)
    if kid is _ABSENT:
        kid = None
    elif type(kid) is not bytes or len(<bytes>kid) > 64:
        _fail(E_COSE)
    out.alg = alg
    out.kid = kid
    out.signature = signature
    out.sig_structure = _sig_structure(msg[0], payload)

    try:
        _claims(<bytes>payload, out, vs)
    except _Malformed:
        _fail(E_CWT)
    if out.payload_ok:
        _set_hashes(out, alg == -7)
    return out


cdef int _set_hashes(Decoded out, bint half_signature) except -1:
    cdef Py_ssize_t nci, ncc, nsig = PyBytes_GET_SIZE(out.signature)
    cdef const uint8_t* ci = _utf8(out.ci, &nci)
    cdef const uint8_t* cc = _utf8(out.iss if out.iss else out.co, &ncc)
    out.uci_hash = _hash16(ci, 0, ci, nci)
    out.cuci_hash = _hash16(cc, ncc, ci, nci)
    if not out.iss or out.iss == out.co:
        out.cuci_co_hash = out.cuci_hash
    else:  # issuers disagreed on COUNTRYCODEUCI: iss+ci in some apps, co+ci in others
        cc = _utf8(out.co, &ncc)
        out.cuci_co_hash = _hash16(cc, ncc, ci, nci)
    if half_signature:
        nsig //= 2
    out.sig_hash = _hash16(<const uint8_t*>PyBytes_AS_STRING(out.signature), 0,
                           <const uint8_t*>PyBytes_AS_STRING(out.signature), nsig)
    return 0


cdef ValueSets _default_valuesets = None


def set_default_valuesets(ValueSets valuesets):
    """The value sets `decode_token` (and `decode` without `valuesets=`) checks codes
    against; None (the start-up state) checks none. Returns the previous ones."""
    global _default_valuesets
    cdef ValueSets before = _default_valuesets
    _default_valuesets = valuesets
    return before


def default_valuesets():
    """The value sets `decode` uses when none is given (None: codes are not checked)."""
    return _default_valuesets


def decode(token, Py_ssize_t max_inflated=DEF_MAX_INFLATED, valuesets=_ABSENT):
    """Decode an HC1 token (str or bytes) into a `Decoded`; raise `DecodeError`.

    `max_inflated` caps the decompressed size (at most MAX_INFLATED). Coded fields are
    checked against `valuesets` (a ValueSets; None: not checked; default: the module's
    default, see set_default_valuesets).
    """
    if not 0 < max_inflated <= DEF_MAX_INFLATED:
        raise ValueError("max_inflated must be between 1 and MAX_INFLATED")
    if valuesets is _ABSENT:
        valuesets = _default_valuesets
    if valuesets is not None and not isinstance(valuesets, ValueSets):
        raise TypeError("valuesets must be a ValueSets or None")
    return decode_token_vs(token, max_inflated, <ValueSets>valuesets)


cdef Decoded decode_token(object token, Py_ssize_t max_inflated):
    """C-level entry for other Cython modules (see _decode.pxd); raises DecodeError.
    Codes are checked against the default value sets."""
    return decode_token_vs(token, max_inflated, _default_valuesets)


cdef Decoded decode_token_vs(object token, Py_ssize_t max_inflated, ValueSets vs):
    """decode_token with the value sets to check codes against (None: not checked)."""
    cdef bytes raw
    if type(token) is str:
        if not (<str>token).startswith("HC1:"):
            _fail(E_PREFIX)
        if len(<str>token) > DEF_MAX_TOKEN_CHARS:
            _fail(E_TOO_LARGE)
        try:
            raw = (<str>token).encode("ascii")
        except UnicodeEncodeError:
            _fail(E_BASE45)
    elif isinstance(token, (bytes, bytearray, memoryview)):
        raw = bytes(token[:DEF_MAX_TOKEN_CHARS + 1])
        if not raw.startswith(b"HC1:"):
            _fail(E_PREFIX)
        if len(token) > DEF_MAX_TOKEN_CHARS:
            _fail(E_TOO_LARGE)
    else:
        _fail(E_PREFIX)
    raw = _base45(<const uint8_t*>PyBytes_AS_STRING(raw) + 4, PyBytes_GET_SIZE(raw) - 4)
    return _decode_cose(_inflate(raw, max_inflated), vs)


# ---------------------------------------------------------------------------
# Small helpers for the verifier's hot path

def ecdsa_der(signature):
    """Raw COSE ECDSA signature r || s -> DER SEQUENCE { INTEGER r, INTEGER s }.

    Raises ValueError for an odd or out-of-range length (at most 2 * 66 bytes: P-521).
    """
    cdef bytes sig = bytes(signature)
    cdef Py_ssize_t n = PyBytes_GET_SIZE(sig), half = n // 2, i, o = 2
    cdef const uint8_t* p = <const uint8_t*>PyBytes_AS_STRING(sig)
    cdef const uint8_t* part
    cdef uint8_t buf[150]
    cdef Py_ssize_t start, plen
    cdef int k
    if n == 0 or n % 2 or half > 66:
        raise ValueError("ECDSA signature must be r || s of equal halves")
    for k in range(2):
        part = p + k * half
        start = 0
        while start < half - 1 and part[start] == 0:
            start += 1
        plen = half - start
        buf[o] = 0x02
        if part[start] & 0x80:
            buf[o + 1] = plen + 1
            buf[o + 2] = 0
            o += 3
        else:
            buf[o + 1] = plen
            o += 2
        memcpy(buf + o, part + start, plen)
        o += plen
    if o - 2 < 128:
        buf[0] = 0x30
        buf[1] = o - 2
        return PyBytes_FromStringAndSize(<const char*>buf, o)
    # long form length (P-521): shift by one byte
    memmove(buf + 3, buf + 2, o - 2)
    buf[0] = 0x30
    buf[1] = 0x81
    buf[2] = o - 2
    return PyBytes_FromStringAndSize(<const char*>buf, o + 1)


def iso_utc(int64_t ts):
    """Epoch seconds -> 'YYYY-MM-DDTHH:MM:SSZ' (years 0001-9999)."""
    return format_iso_utc(ts)


cdef str format_iso_utc(int64_t ts):
    """C-level iso_utc for other Cython modules (see _decode.pxd)."""
    cdef int64_t days = ts // 86400, secs = ts - days * 86400
    cdef int64_t z, era, doe, yoe, y, doy, mp, d, m
    cdef char buf[21]
    if secs < 0:
        secs += 86400
        days -= 1
    z = days + 719468
    era = (z if z >= 0 else z - 146096) // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    y = yoe + era * 400
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    d = doy - (153 * mp + 2) // 5 + 1
    m = mp + 3 if mp < 10 else mp - 9
    if m <= 2:
        y += 1
    if not 1 <= y <= 9999:
        raise ValueError("year out of range")
    _digits(buf, 0, y, 4)
    buf[4] = 45
    _digits(buf, 5, m, 2)
    buf[7] = 45
    _digits(buf, 8, d, 2)
    buf[10] = 84
    _digits(buf, 11, secs // 3600, 2)
    buf[13] = 58
    _digits(buf, 14, (secs // 60) % 60, 2)
    buf[16] = 58
    _digits(buf, 17, secs % 60, 2)
    buf[19] = 90
    return PyUnicode_FromStringAndSize(buf, 20)


cdef inline void _digits(char* buf, int at, int64_t value, int width):
    cdef int i
    for i in range(width - 1, -1, -1):
        buf[at + i] = 48 + value % 10
        value //= 10
