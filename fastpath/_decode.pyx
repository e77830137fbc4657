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
from libc.math cimport INFINITY, NAN, ldexp
from libc.stdint cimport int64_t, uint8_t, uint16_t, uint32_t, uint64_t
from cpython.object cimport PyObject
from libc.string cimport memcmp, memcpy, memmove


cdef extern from "Python.h":
    const char* PyUnicode_AsUTF8AndSize(object, Py_ssize_t*) except NULL
    dict _PyDict_NewPresized(Py_ssize_t)
    str PyUnicode_FromStringAndSize(const char*, Py_ssize_t)

cdef extern from "sha256.h":
    void qrv_sha256_2(const uint8_t* a, size_t alen, const uint8_t* b, size_t blen,
                      uint8_t* out, size_t outlen) nogil
    int qrv_sha256_select(int allow) nogil

cdef int _sha_ni = qrv_sha256_select(1)


def sha256_backend(name=None):
    """Which SHA-256 code is used: "sha-ni" (x86 SHA extensions) or "portable".

    With `name`, switch to it (for tests); "sha-ni" only where the CPU has it.
    """
    global _sha_ni
    if name is not None:
        _sha_ni = qrv_sha256_select(1 if name == "sha-ni" else 0)
    return "sha-ni" if _sha_ni else "portable"
from zlib import decompressobj as _decompressobj
from zlib import error as _ZlibError

# ---------------------------------------------------------------------------
# Limits and error numbers

cdef enum:
    DEF_MAX_TOKEN_CHARS = 8192  # a QR code holds at most 4296 alphanumeric characters
    DEF_MAX_INFLATED = 16384    # real DCCs inflate to well under 2 KiB
    MAX_DEPTH = 16              # CBOR nesting (the DCC needs 5)
    MAX_STR = 80                # EU DCC schema maxLength for names, issuer, ci, ...

cdef enum:
    E_PREFIX = 1
    E_BASE45 = 2
    E_COMPRESSION = 3
    E_TOO_LARGE = 4
    E_COSE = 5
    E_CWT = 6
    E_PAYLOAD = 7

_REASONS = {
    E_PREFIX: "bad_prefix",
    E_BASE45: "bad_base45",
    E_COMPRESSION: "bad_compression",
    E_TOO_LARGE: "too_large",
    E_COSE: "bad_cose",
    E_CWT: "bad_cwt",
    E_PAYLOAD: "bad_payload",
}

MAX_TOKEN_CHARS = DEF_MAX_TOKEN_CHARS
MAX_INFLATED = DEF_MAX_INFLATED

TYPE_NAMES = ("vaccination", "test", "recovery")


class DecodeError(ValueError):
    """A token that cannot be decoded. `reason` is a contract reason code."""

    def __init__(self, reason):
        ValueError.__init__(self, reason)
        self.reason = reason


class _Malformed(Exception):
    """Internal: malformed CBOR; the caller knows which layer it was in."""


cdef inline object _fail(int code):
    raise DecodeError(_REASONS[code])


# ---------------------------------------------------------------------------
# Base45 (RFC 9285)

cdef signed char _B45[256]
cdef void _init_b45():
    cdef int i
    cdef bytes alphabet = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"
    for i in range(256):
        _B45[i] = -1
    for i in range(45):
        _B45[<uint8_t>alphabet[i]] = i
_init_b45()


cdef bytes _base45(const uint8_t* s, Py_ssize_t n):
    cdef Py_ssize_t groups = n // 3, rem = n % 3, i, o = 0
    cdef int a, b, c
    cdef uint32_t v
    if rem == 1:
        _fail(E_BASE45)
    cdef bytes out = PyBytes_FromStringAndSize(NULL, groups * 2 + (1 if rem == 2 else 0))
    cdef uint8_t* w = <uint8_t*>PyBytes_AS_STRING(out)
    for i in range(groups):
        a = _B45[s[3 * i]]
        b = _B45[s[3 * i + 1]]
        c = _B45[s[3 * i + 2]]
        if a < 0 or b < 0 or c < 0:
            _fail(E_BASE45)
        v = a + b * 45 + c * 2025
        if v > 0xFFFF:
            _fail(E_BASE45)
        w[o] = v >> 8
        w[o + 1] = v & 0xFF
        o += 2
    if rem == 2:
        a = _B45[s[n - 2]]
        b = _B45[s[n - 1]]
        if a < 0 or b < 0:
            _fail(E_BASE45)
        v = a + b * 45
        if v > 0xFF:
            _fail(E_BASE45)
        w[o] = v
    return out


# ---------------------------------------------------------------------------
# CBOR (RFC 8949), definite lengths only, into Python objects

cdef struct Cur:
    const uint8_t* p
    const uint8_t* end


cdef int _head(Cur* c, int* major, uint64_t* arg) except -1:
    cdef uint8_t ib
    cdef int info, k, size
    cdef uint64_t v = 0
    if c.p >= c.end:
        raise _Malformed("truncated")
    ib = c.p[0]
    c.p += 1
    major[0] = ib >> 5
    info = ib & 0x1F
    if info < 24:
        arg[0] = info
        return 0
    if info > 27:
        raise _Malformed("indefinite or reserved length")
    size = 1 << (info - 24)
    if c.end - c.p < size:
        raise _Malformed("truncated")
    for k in range(size):
        v = (v << 8) | c.p[k]
    c.p += size
    arg[0] = v
    return 0


cdef inline Py_ssize_t _remaining(Cur* c):
    return c.end - c.p


cdef double _float_from(uint64_t bits, int size):
    cdef uint32_t b32
    cdef float f32
    cdef double f64
    cdef int e, m
    cdef double val
    if size == 2:
        e = (bits >> 10) & 0x1F
        m = bits & 0x3FF
        if e == 0:
            val = ldexp(m, -24)
        elif e != 31:
            val = ldexp(m + 1024, e - 25)
        else:
            val = INFINITY if m == 0 else NAN
        return -val if bits & 0x8000 else val
    if size == 4:
        b32 = <uint32_t>bits
        memcpy(&f32, &b32, 4)
        return f32
    memcpy(&f64, &bits, 8)
    return f64


cdef inline object _text(const uint8_t* p, Py_ssize_t n):
    try:
        return PyUnicode_DecodeUTF8(<const char*>p, n, "strict")
    except UnicodeDecodeError:
        raise _Malformed("invalid UTF-8")


cdef object _item(Cur* c, int depth):
    cdef int major
    cdef uint64_t arg
    cdef Py_ssize_t n, i
    cdef const uint8_t* start
    cdef object key, value
    cdef list lst
    cdef dict dct
    if depth > MAX_DEPTH:
        raise _Malformed("nesting too deep")
    start = c.p
    _head(c, &major, &arg)
    if major == 0:
        return arg
    if major == 1:
        if arg < 0x7FFFFFFFFFFFFFFF:
            return -1 - <int64_t>arg
        return -1 - <object>arg
    if major == 2 or major == 3:
        if arg > <uint64_t>_remaining(c):
            raise _Malformed("string past end")
        n = <Py_ssize_t>arg
        c.p += n
        if major == 2:
            return PyBytes_FromStringAndSize(<const char*>(c.p - n), n)
        return _text(c.p - n, n)
    if major == 4:
        if arg > <uint64_t>_remaining(c):
            raise _Malformed("array longer than input")
        n = <Py_ssize_t>arg
        lst = PyList_New(n)
        for i in range(n):
            value = _item(c, depth + 1)
            Py_INCREF(value)
            PyList_SET_ITEM(lst, i, value)
        return lst
    if major == 5:
        if arg > <uint64_t>(_remaining(c) // 2):
            raise _Malformed("map longer than input")
        n = <Py_ssize_t>arg
        dct = _PyDict_NewPresized(n)
        for i in range(n):
            key = _item(c, depth + 1)
            if type(key) is not int and type(key) is not str:
                raise _Malformed("map key must be an integer or text")
            value = _item(c, depth + 1)
            PyDict_SetDefault(dct, key, value)
            if len(dct) != i + 1:  # the key was there already
                raise _Malformed("duplicate map key")
        return dct
    if major == 6:
        raise _Malformed("unexpected tag")
    # major 7
    n = c.p - start
    if n == 1:
        if arg == 20:
            return False
        if arg == 21:
            return True
        if arg == 22:
            return None
        raise _Malformed("unsupported simple value")
    if n == 2:
        raise _Malformed("unsupported simple value")
    return _float_from(arg, <int>(n - 1))


cdef object _loads(bytes data, bint allow_cose_tags):
    """Decode exactly one CBOR item filling `data`."""
    cdef Cur c
    cdef int major
    cdef uint64_t arg
    cdef const uint8_t* mark
    cdef object value
    cdef uint64_t[2] tags = [61, 18]  # optional CWT tag, then optional COSE_Sign1 tag
    cdef int k
    c.p = <const uint8_t*>PyBytes_AS_STRING(data)
    c.end = c.p + PyBytes_GET_SIZE(data)
    if allow_cose_tags:
        for k in range(2):
            mark = c.p
            _head(&c, &major, &arg)
            if major != 6 or arg != tags[k]:
                c.p = mark
    value = _item(&c, 0)
    if c.p != c.end:
        raise _Malformed("trailing bytes")
    return value


def loads_cbor(data):
    """Decode one CBOR item (no tags) as the decoder sees it; for tests and tools.

    Raises ValueError for anything malformed.
    """
    try:
        return _loads(bytes(data), False)
    except _Malformed as exc:
        raise ValueError(str(exc)) from None


# ---------------------------------------------------------------------------
# Dates and small string checks (EU DCC schema 1.3)

cdef inline bint _digit(Py_UCS4 ch):
    return u'0' <= ch <= u'9'


cdef int _num(str s, Py_ssize_t at, Py_ssize_t n) except -2:
    """Decimal value of s[at:at+n], or -1 when not all digits."""
    cdef int v = 0
    cdef Py_ssize_t i
    cdef Py_UCS4 ch
    for i in range(at, at + n):
        ch = s[i]
        if not _digit(ch):
            return -1
        v = v * 10 + (<int>ch - 48)
    return v


cdef int64_t _days_from_civil(int64_t y, int m, int d):
    cdef int64_t era, yoe, doy, doe
    y -= 1 if m <= 2 else 0
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


cdef bint _valid_ymd(int y, int m, int d):
    cdef int dim
    if y < 1 or m < 1 or m > 12 or d < 1:
        return False
    if m == 2:
        dim = 29 if (y % 4 == 0 and (y % 100 != 0 or y % 400 == 0)) else 28
    elif m == 4 or m == 6 or m == 9 or m == 11:
        dim = 30
    else:
        dim = 31
    return d <= dim


cdef bint _parse_date(object obj, int64_t* out):
    """'YYYY-MM-DD' -> epoch seconds of 00:00:00Z that day."""
    cdef str s
    cdef int y, m, d
    if type(obj) is not str:
        return False
    s = <str>obj
    if len(s) != 10 or s[4] != u'-' or s[7] != u'-':
        return False
    y = _num(s, 0, 4)
    m = _num(s, 5, 2)
    d = _num(s, 8, 2)
    if y < 0 or m < 0 or d < 0 or not _valid_ymd(y, m, d):
        return False
    out[0] = _days_from_civil(y, m, d) * 86400
    return True


cdef bint _parse_datetime(object obj, int64_t* out):
    """RFC 3339 date-time with a zone (Z, +HH:MM, +HHMM or +HH) -> epoch seconds."""
    cdef str s
    cdef Py_ssize_t n, i
    cdef int hh, mi, ss, oh = 0, om = 0, sign
    cdef Py_UCS4 ch
    cdef int64_t day
    if type(obj) is not str:
        return False
    s = <str>obj
    n = len(s)
    if n < 20 or n > 40 or not _parse_date(s[:10], &day):
        return False
    if s[10] != u'T' and s[10] != u't':
        return False
    if s[13] != u':' or s[16] != u':':
        return False
    hh = _num(s, 11, 2)
    mi = _num(s, 14, 2)
    ss = _num(s, 17, 2)
    if hh < 0 or mi < 0 or ss < 0 or hh > 23 or mi > 59 or ss > 60:
        return False
    i = 19
    if s[i] == u'.':
        i += 1
        if i >= n or not _digit(s[i]):
            return False
        while i < n and _digit(s[i]):
            i += 1
    if i >= n:
        return False
    ch = s[i]
    if ch == u'Z' or ch == u'z':
        if i + 1 != n:
            return False
    elif ch == u'+' or ch == u'-':
        sign = 1 if ch == u'+' else -1
        if n - i == 3:
            oh = _num(s, i + 1, 2)
        elif n - i == 6 and s[i + 3] == u':':
            oh = _num(s, i + 1, 2)
            om = _num(s, i + 4, 2)
        elif n - i == 5:
            oh = _num(s, i + 1, 2)
            om = _num(s, i + 3, 2)
        else:
            return False
        if oh < 0 or om < 0 or oh > 23 or om > 59:
            return False
        day -= sign * (oh * 3600 + om * 60)
    else:
        return False
    out[0] = day + hh * 3600 + mi * 60 + (59 if ss == 60 else ss)
    return True


cdef inline bint _short_str(object obj):
    return type(obj) is str and len(<str>obj) <= MAX_STR


cdef bint _is_str(object obj):
    return type(obj) is str


cdef bint _latin_name(object obj):
    """fnt / gnt: ^[A-Z<]*$, at most 80 characters."""
    cdef Py_UCS4 ch
    if not _short_str(obj):
        return False
    for ch in <str>obj:
        if not (u'A' <= ch <= u'Z' or ch == u'<'):
            return False
    return True


cdef bint _country(object obj):
    """co: one to ten upper-case letters."""
    cdef Py_UCS4 ch
    if type(obj) is not str or not 1 <= len(<str>obj) <= 10:
        return False
    for ch in <str>obj:
        if not u'A' <= ch <= u'Z':
            return False
    return True


cdef bint _version(object obj):
    """ver: ^\\d+.\\d+.\\d+$ (dots literal)."""
    cdef str s
    cdef Py_UCS4 ch
    cdef int parts = 1, run = 0
    if type(obj) is not str or len(<str>obj) > 20:
        return False
    s = <str>obj
    for ch in s:
        if _digit(ch):
            run += 1
        elif ch == u'.' and run > 0:
            parts += 1
            run = 0
        else:
            return False
    return parts == 3 and run > 0


cdef bint _dob(object obj):
    """dob: ^((19|20)\\d\\d(-\\d\\d){0,2}){0,1}$ : '', YYYY, YYYY-MM or YYYY-MM-DD."""
    cdef str s
    cdef Py_ssize_t n
    if type(obj) is not str:
        return False
    s = <str>obj
    n = len(s)
    if n == 0:
        return True
    if n not in (4, 7, 10) or _num(s, 0, 4) < 1900 or _num(s, 0, 4) > 2099:
        return False
    if n >= 7 and (s[4] != u'-' or _num(s, 5, 2) < 0):
        return False
    if n == 10 and (s[7] != u'-' or _num(s, 8, 2) < 0):
        return False
    return True


cdef bint _posint(object obj):
    return type(obj) is int and <object>obj >= 1 and <object>obj < 1000


cdef bytes _hash16(const uint8_t* a, size_t alen, const uint8_t* b, size_t blen):
    """First 16 bytes of SHA-256(a || b), as the EU revocation lists carry them."""
    cdef uint8_t out[16]
    qrv_sha256_2(a, alen, b, blen, out, 16)
    return PyBytes_FromStringAndSize(<const char*>out, 16)


cdef inline const uint8_t* _utf8(str text, Py_ssize_t* n) except NULL:
    return <const uint8_t*>PyUnicode_AsUTF8AndSize(text, n)


def sha256_16(data, prefix=b""):
    """First 16 bytes of SHA-256(prefix || data) with the built-in C code (for tests)."""
    cdef bytes a = bytes(prefix), b = bytes(data)
    return _hash16(<const uint8_t*>PyBytes_AS_STRING(a), PyBytes_GET_SIZE(a),
                   <const uint8_t*>PyBytes_AS_STRING(b), PyBytes_GET_SIZE(b))


# ---------------------------------------------------------------------------
# The decoded record

cdef class Decoded:
    """What a token says, before anyone has checked the signature (fields: _decode.pxd)."""

    @property
    def country(self):
        """The issuing country for revocation hashes and display: iss, else co."""
        return self.iss if self.iss else self.co


cdef object _ABSENT = object()  # a header or claim that is not there (null is not absent)

# The payload is checked while it is parsed: map keys of the DCC are recognised from their
# bytes (no str objects, no dicts for the claims, hcert, dcc, nam and entry maps), values
# are decoded as usual and checked against EU DCC schema 1.3 on the spot. Parsing goes on
# after a schema failure so that malformed CBOR anywhere is still reported as bad_cwt.
cdef enum:
    K_VER = 0
    K_NAM = 1
    K_DOB = 2
    K_V = 3
    K_T = 4
    K_R = 5
    K_FN = 6
    K_GN = 7
    K_FNT = 8
    K_GNT = 9
    K_TG = 10
    K_VP = 11
    K_MP = 12
    K_MA = 13
    K_DN = 14
    K_SD = 15
    K_DT = 16
    K_CO = 17
    K_IS = 18
    K_CI = 19
    K_TT = 20
    K_NM = 21
    K_SC = 22
    K_TR = 23
    K_TC = 24
    K_FR = 25
    K_DF = 26
    K_DU = 27
    K_COUNT = 28

_KEY_NAMES = ("ver", "nam", "dob", "v", "t", "r", "fn", "gn", "fnt", "gnt", "tg", "vp", "mp",
              "ma", "dn", "sd", "dt", "co", "is", "ci", "tt", "nm", "sc", "tr", "tc", "fr",
              "df", "du")
cdef uint32_t _key_codes[K_COUNT]


cdef inline uint32_t _key_code(const uint8_t* p, Py_ssize_t n):
    cdef uint32_t code = <uint32_t>n
    cdef Py_ssize_t i
    for i in range(n):
        code |= (<uint32_t>p[i]) << (8 * (i + 1))
    return code


cdef void _init_key_codes():
    cdef int i
    cdef bytes b
    for i in range(K_COUNT):
        b = _KEY_NAMES[i].encode("ascii")
        _key_codes[i] = _key_code(<const uint8_t*>PyBytes_AS_STRING(b), len(b))

_init_key_codes()

cdef uint64_t _BIT = 1
cdef uint64_t _REQ_VACCINATION = ((_BIT << K_TG) | (_BIT << K_VP) | (_BIT << K_MP) | (_BIT << K_MA)
                                  | (_BIT << K_DN) | (_BIT << K_SD) | (_BIT << K_DT)
                                  | (_BIT << K_CO) | (_BIT << K_IS) | (_BIT << K_CI))
cdef uint64_t _REQ_TEST = ((_BIT << K_TG) | (_BIT << K_TT) | (_BIT << K_SC) | (_BIT << K_TR)
                           | (_BIT << K_CO) | (_BIT << K_IS) | (_BIT << K_CI))
cdef uint64_t _REQ_RECOVERY = ((_BIT << K_TG) | (_BIT << K_FR) | (_BIT << K_CO) | (_BIT << K_IS)
                               | (_BIT << K_DF) | (_BIT << K_DU) | (_BIT << K_CI))


cdef struct MapState:
    uint64_t seen      # known keys met so far
    int key            # id of the key just read, or -1


cdef object _map_key(Cur* c, int depth, MapState* st):
    """Read one map key: a known DCC key sets st.key to its id (and returns None), any
    other int or text key sets -1 and is returned for `_note_other`. A known key met twice
    is malformed CBOR."""
    cdef int major, i
    cdef uint64_t arg
    cdef const uint8_t* start = c.p
    cdef uint32_t code
    cdef object key
    _head(c, &major, &arg)
    if major == 3 and 1 <= arg <= 3 and arg <= <uint64_t>_remaining(c):
        code = _key_code(c.p, <Py_ssize_t>arg)
        for i in range(K_COUNT):
            if _key_codes[i] == code:
                c.p += arg
                if st.seen & (_BIT << i):
                    raise _Malformed("duplicate map key")
                st.seen |= _BIT << i
                st.key = i
                return None
    c.p = start
    key = _item(c, depth)
    if type(key) is not int and type(key) is not str:
        raise _Malformed("map key must be an integer or text")
    st.key = -1
    return key


cdef set _note_other(set others, object key):
    """Remember a key that is not a known DCC key; a duplicate is malformed CBOR."""
    if others is None:
        others = set()
    elif key in others:
        raise _Malformed("duplicate map key")
    others.add(key)
    return others


cdef int _open_map(Cur* c, int depth, Py_ssize_t* n) except -1:
    """Start a map: 1 and its size in n, or 0 (nothing consumed) when the next item is
    something else."""
    cdef int major
    cdef uint64_t arg
    cdef const uint8_t* start = c.p
    if depth > MAX_DEPTH:
        raise _Malformed("nesting too deep")
    _head(c, &major, &arg)
    if major != 5:
        c.p = start
        return 0
    if arg > <uint64_t>(_remaining(c) // 2):
        raise _Malformed("map longer than input")
    n[0] = <Py_ssize_t>arg
    return 1


cdef bint _names(Cur* c, int depth, Decoded out) except -1:
    cdef Py_ssize_t n, i
    cdef MapState st
    cdef set others = None
    cdef object key, value
    cdef bint ok = True
    if not _open_map(c, depth, &n):
        _item(c, depth)
        return False
    st.seen = 0
    for i in range(n):
        key = _map_key(c, depth + 1, &st)
        if st.key < 0:
            others = _note_other(others, key)
        value = _item(c, depth + 1)
        if st.key == K_FN or st.key == K_GN:
            if not _short_str(value):
                ok = False
            elif st.key == K_FN:
                out.fn = value
            else:
                out.gn = value
        elif st.key == K_FNT or st.key == K_GNT:
            if not _latin_name(value):
                ok = False
            elif st.key == K_FNT:
                out.fnt = value
            else:
                out.gnt = value
    return ok and (st.seen & ((_BIT << K_FNT) | (_BIT << K_GNT))) != 0


cdef bint _entry_field(int kind, int key, object value, Decoded out) except -1:
    """Check one field of a v / t / r entry; fields of other entry types are ignored."""
    if key == K_TG:
        return _is_str(value)
    if key == K_CO:
        if not _country(value):
            return False
        out.co = value
        return True
    if key == K_IS:
        return _short_str(value)
    if key == K_CI:
        if not _short_str(value) or len(<str>value) == 0:
            return False
        out.ci = value
        return True
    if kind == 0:
        if key == K_VP or key == K_MP or key == K_MA:
            return _is_str(value)
        if key == K_DN or key == K_SD:
            if not _posint(value):
                return False
            if key == K_DN:
                out.dn = value
            else:
                out.sd = value
            return True
        if key == K_DT:
            return _parse_date(value, &out.dt)
    elif kind == 1:
        if key == K_TT or key == K_TR:
            if not _is_str(value):
                return False
            if key == K_TT:
                out.tt = value
            else:
                out.tr = value
            return True
        if key == K_SC:
            return _parse_datetime(value, &out.sc)
        if key == K_NM or key == K_TC:
            return _short_str(value)
        if key == K_MA:
            return _is_str(value)
    else:
        if key == K_FR:
            return _parse_date(value, &out.fr)
        if key == K_DF:
            return _parse_date(value, &out.df)
        if key == K_DU:
            return _parse_date(value, &out.du)
    return True


cdef bint _entries(Cur* c, int depth, int kind, Decoded out) except -1:
    """v / t / r: an array holding exactly one entry map."""
    cdef int major
    cdef uint64_t arg
    cdef const uint8_t* start = c.p
    cdef Py_ssize_t n, i
    cdef MapState st
    cdef set others = None
    cdef object key, value
    cdef bint ok = True
    cdef uint64_t required
    _head(c, &major, &arg)
    c.p = start
    if major != 4 or arg != 1:
        _item(c, depth)
        return False
    _head(c, &major, &arg)
    if not _open_map(c, depth + 1, &n):
        _item(c, depth + 1)
        return False
    st.seen = 0
    for i in range(n):
        key = _map_key(c, depth + 2, &st)
        if st.key < 0:
            others = _note_other(others, key)
        value = _item(c, depth + 2)
        if st.key >= 0 and not _entry_field(kind, st.key, value, out):
            ok = False
    required = _REQ_VACCINATION if kind == 0 else _REQ_TEST if kind == 1 else _REQ_RECOVERY
    return ok and (st.seen & required) == required


cdef bint _dcc(Cur* c, int depth, Decoded out) except -1:
    """The DCC map (hcert key 1), checked against EU DCC schema 1.3."""
    cdef Py_ssize_t n, i
    cdef MapState st
    cdef set others = None
    cdef object key, value
    cdef bint ok = True
    cdef int found = -1, kind
    if not _open_map(c, depth, &n):
        _item(c, depth)
        return False
    st.seen = 0
    for i in range(n):
        key = _map_key(c, depth + 1, &st)
        if st.key < 0:
            others = _note_other(others, key)
        if st.key == K_NAM:
            if not _names(c, depth + 1, out):
                ok = False
        elif st.key == K_V or st.key == K_T or st.key == K_R:
            kind = st.key - K_V
            if found >= 0:
                ok = False  # more than one of v, t, r
            found = kind
            if not _entries(c, depth + 1, kind, out):
                ok = False
        else:
            value = _item(c, depth + 1)
            if st.key == K_VER:
                if not _version(value):
                    ok = False
            elif st.key == K_DOB:
                if not _dob(value):
                    ok = False
                else:
                    out.dob = value
    if found < 0 or not ok:
        return False
    if (st.seen & ((_BIT << K_VER) | (_BIT << K_NAM) | (_BIT << K_DOB))) != (
            (_BIT << K_VER) | (_BIT << K_NAM) | (_BIT << K_DOB)):
        return False
    out.type_index = found
    out.cert_type = TYPE_NAMES[found]
    return True


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


cdef int _int_claim(object value, int64_t* out) except -1:
    if type(value) is not int or not -(1 << 62) < value < (1 << 62):
        _fail(E_CWT)
    out[0] = value
    return 0


cdef int _claims(bytes payload, Decoded out) except -1:
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
                        out.payload_ok = _dcc(&c, 2, out)
                    else:
                        _item(&c, 2)
                continue
            value = _item(&c, 1)
            if label == 1:
                if type(value) is not str:
                    _fail(E_CWT)
                out.iss = value
            elif label == 4:
                _int_claim(value, &out.exp)
            else:
                _int_claim(value, &out.iat)
            continue
        if type(key) is not int and type(key) is not str:
            raise _Malformed("map key must be an integer or text")
        if others is None:
            others = set()
        if key in others:
            raise _Malformed("duplicate map key")
        others.add(key)
        _item(&c, 1)
    if c.p != c.end:
        raise _Malformed("trailing bytes")
    if have & 14 != 14 or 1 not in hkeys:
        _fail(E_CWT)
    return 0


cdef Decoded _decode_cose(bytes cose):
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
        _claims(<bytes>payload, out)
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
    if half_signature:
        nsig //= 2
    out.sig_hash = _hash16(<const uint8_t*>PyBytes_AS_STRING(out.signature), 0,
                           <const uint8_t*>PyBytes_AS_STRING(out.signature), nsig)
    return 0


# zlib: called directly through the system libz (the library Python's own zlib module
# uses), found with dlopen at import so that building needs no zlib headers. The struct
# below is zlib's z_stream ABI; inflateInit2_ checks its size and version, so a mismatch
# is refused by zlib itself and we fall back to Python's zlib module.
cdef extern from *:
    """
    typedef struct qrv_z_stream {
        const unsigned char *next_in; unsigned int avail_in; unsigned long total_in;
        unsigned char *next_out; unsigned int avail_out; unsigned long total_out;
        const char *msg; void *state;
        void *zalloc; void *zfree; void *opaque;
        int data_type; unsigned long adler; unsigned long reserved;
    } qrv_z_stream;
    typedef int (*qrv_inflate_init_t)(qrv_z_stream *, int, const char *, int);
    typedef int (*qrv_inflate_t)(qrv_z_stream *, int);
    typedef int (*qrv_inflate_end_t)(qrv_z_stream *);
    """
    ctypedef struct qrv_z_stream:
        const uint8_t* next_in
        unsigned int avail_in
        uint8_t* next_out
        unsigned int avail_out
    ctypedef int (*qrv_inflate_init_t)(qrv_z_stream*, int, const char*, int) nogil
    ctypedef int (*qrv_inflate_t)(qrv_z_stream*, int) nogil
    ctypedef int (*qrv_inflate_end_t)(qrv_z_stream*) nogil

from posix.dlfcn cimport RTLD_LOCAL, RTLD_NOW, dlopen, dlsym
from libc.string cimport memset

cdef qrv_inflate_init_t _z_init = NULL
cdef qrv_inflate_t _z_inflate = NULL
cdef qrv_inflate_end_t _z_end = NULL
cdef bint _use_libz = False


cdef void _load_libz():
    global _z_init, _z_inflate, _z_end, _use_libz
    cdef void* h = dlopen(b"libz.so.1", RTLD_NOW | RTLD_LOCAL)
    if h == NULL:
        return
    _z_init = <qrv_inflate_init_t>dlsym(h, b"inflateInit2_")
    _z_inflate = <qrv_inflate_t>dlsym(h, b"inflate")
    _z_end = <qrv_inflate_end_t>dlsym(h, b"inflateEnd")
    _use_libz = _z_init != NULL and _z_inflate != NULL and _z_end != NULL
    if _use_libz:
        # A one-byte probe: zlib refuses a z_stream of the wrong size or version.
        _use_libz = _inflate_libz(b"x\x9c\x03\x00\x00\x00\x00\x01", 16) == b""

_load_libz()


def zlib_backend(name=None):
    """Which inflate is used: "libz" (direct) or "python" (the zlib module).

    With `name`, switch to it (for tests); "libz" only if it loaded. Returns the backend.
    """
    global _use_libz
    if name == "python":
        _use_libz = False
    elif name == "libz":
        _use_libz = _z_init != NULL
    return "libz" if _use_libz else "python"


cdef object _inflate_libz(bytes raw, Py_ssize_t cap):
    """Inflate into a stack buffer; None means zlib refused to start (ABI mismatch)."""
    cdef qrv_z_stream zs
    cdef uint8_t buf[DEF_MAX_INFLATED + 1]
    cdef int rc
    cdef Py_ssize_t produced
    cdef unsigned int left_in
    if cap > DEF_MAX_INFLATED:
        cap = DEF_MAX_INFLATED
    memset(&zs, 0, sizeof(zs))
    if _z_init(&zs, 15, b"1.2.13", <int>sizeof(zs)) != 0:
        return None
    zs.next_in = <const uint8_t*>PyBytes_AS_STRING(raw)
    zs.avail_in = <unsigned int>PyBytes_GET_SIZE(raw)
    zs.next_out = buf
    zs.avail_out = <unsigned int>(cap + 1)
    rc = _z_inflate(&zs, 4)  # Z_FINISH
    produced = cap + 1 - zs.avail_out
    left_in = zs.avail_in
    _z_end(&zs)
    if rc == 1:  # Z_STREAM_END
        if produced > cap:
            _fail(E_TOO_LARGE)
        if left_in:
            _fail(E_COMPRESSION)  # trailing bytes after the stream
        return PyBytes_FromStringAndSize(<const char*>buf, produced)
    if (rc == 0 or rc == -5) and produced > cap:  # Z_OK / Z_BUF_ERROR: output full
        _fail(E_TOO_LARGE)
    _fail(E_COMPRESSION)


cdef bytes _inflate(bytes raw, Py_ssize_t cap):
    cdef object d, res
    cdef bytes out
    if _use_libz:
        res = _inflate_libz(raw, cap)
        if res is not None:
            return <bytes>res
    d = _decompressobj()
    try:
        out = d.decompress(raw, cap + 1)
    except _ZlibError:
        _fail(E_COMPRESSION)
    if len(out) > cap:
        _fail(E_TOO_LARGE)
    if not d.eof or d.unused_data:
        _fail(E_COMPRESSION)
    return out


def decode(token, Py_ssize_t max_inflated=DEF_MAX_INFLATED):
    """Decode an HC1 token (str or bytes) into a `Decoded`; raise `DecodeError`.

    `max_inflated` caps the decompressed size (at most MAX_INFLATED).
    """
    if not 0 < max_inflated <= DEF_MAX_INFLATED:
        raise ValueError("max_inflated must be between 1 and MAX_INFLATED")
    return decode_token(token, max_inflated)


cdef Decoded decode_token(object token, Py_ssize_t max_inflated):
    """C-level entry for other Cython modules (see _decode.pxd); raises DecodeError."""
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
    return _decode_cose(_inflate(raw, max_inflated))


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
