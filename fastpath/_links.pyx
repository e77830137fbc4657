# cython: language_level=3
"""Register links (CONTRACT section 1b): parse a link, look it up, judge the record.

Recognised paths, on a recognised origin (gosuslugi.ru, with or without `www.`, http or
https, plus the configured ones):

    /covid-cert/verify/<unrz: 16 digits>?...ck=<32 hex>...
    /covid-cert/status/<UUID>
    /vaccine/cert/verify/<UUID or 16 digits>

Parsing is strict and byte-level. The authority (between `//` and the first `/`, `?` or
`#`) must equal an origin's exactly after ASCII lower-casing: any `@` (userinfo), `:`
(port, unless the origin names it), `\\`, `%`, non-ASCII letter (a Cyrillic look-alike),
trailing dot, punycode or other host is a foreign site: `bad_link` with a detail that
says so. On a recognised origin, anything but the three paths, or a query parameter
that is not plain `name=value` of [A-Za-z0-9_.-] (so no URL hidden in the query), a
fragment, percent-encoding, or a second `ck`, is `bad_link`.

Enumeration resistance: a missing record and a wrong `ck` give the same verdict object,
after the same work (the whole bucket is scanned, and a miss compares the `ck` against
a dummy record's in constant time). An unrz link without `ck` is `bad_link` both when
its record carries a ck and when there is no record, so that form does not tell them
apart either.
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE
from libc.stdint cimport int64_t, uint64_t
from libc.string cimport memcmp, memcpy, memset

from fastpath._decode cimport format_iso_utc
from fastpath._records cimport RecordTable, rec_view, rt_find, rt_strings, link_key

MAX_LINK = 1024          # bytes; longer is too_large
DEFAULT_ORIGIN = "https://www.gosuslugi.ru"
FOREIGN_DETAIL = ("This QR code points to a foreign site, not to the state register "
                  "(gosuslugi.ru): it may be a fake certificate.")
TYPE_NAMES = ("vaccination", "recovery", "test", "temporary")

cdef enum:
    P_OK = 0
    P_BAD = 1
    P_FOREIGN = 2
    MAX_PARAMS = 16
    MAX_NAME = 32
    MAX_VALUE = 64
    MAX_AUTH = 253

cdef bytes FORM_A = b"/covid-cert/verify/"
cdef bytes FORM_B = b"/covid-cert/status/"
cdef bytes FORM_C = b"/vaccine/cert/verify/"


cdef inline int _lower(int c) noexcept nogil:
    return c + 32 if 65 <= c <= 90 else c


cdef inline bint _host_char(int c) noexcept nogil:
    return (97 <= c <= 122) or (48 <= c <= 57) or c == 45 or c == 46 or c == 58


cdef inline bint _param_char(int c) noexcept nogil:
    return ((97 <= c <= 122) or (65 <= c <= 90) or (48 <= c <= 57) or c == 45 or c == 46
            or c == 95)


cdef inline int _ct_eq16(const unsigned char* a, const unsigned char* b) noexcept nogil:
    cdef unsigned int d = 0
    cdef int i
    for i in range(16):
        d |= a[i] ^ b[i]
    return <int>((d - 1) >> 31) & 1


cdef int _hexval(unsigned char c) noexcept nogil:
    if 48 <= c <= 57:
        return c - 48
    c |= 0x20
    if 97 <= c <= 102:
        return c - 87
    return -1


cdef bint is_link(object token) noexcept:
    """Starts with http:// or https://, any case (str or bytes)."""
    cdef str s
    cdef bytes b
    cdef Py_ssize_t n, i
    cdef int c, k
    if type(token) is str:
        s = <str>token
        n = len(s)
        if n < 7:
            return False
        c = s[1]
        if c != 116 and c != 84:  # 't' / 'T' (an HC1 token has 'C' there)
            return False
        k = 4
        for i in range(4):
            if _lower(s[i]) != b"http"[i]:
                return False
        if _lower(s[4]) == 115:
            k = 5
        return n >= k + 3 and s[k] == u":" and s[k + 1] == u"/" and s[k + 2] == u"/"
    if type(token) is bytes:
        b = <bytes>token
        n = len(b)
        if n < 7 or (b[1] != 116 and b[1] != 84):
            return False
        for i in range(4):
            if _lower(b[i]) != b"http"[i]:
                return False
        k = 5 if _lower(b[4]) == 115 else 4
        return n >= k + 3 and b[k] == 58 and b[k + 1] == 47 and b[k + 2] == 47
    return False


def parse_origin(str url):
    """(authority, path prefix) of a configured origin URL such as
    https://www.gosuslugi.ru or https://reg.example.ru:8443/gu; ValueError if malformed.
    A leading `www.` is dropped (links count the same with or without it)."""
    cdef str low = url.strip()
    cdef str rest, auth, prefix
    if low.lower().startswith("https://"):
        rest = low[8:]
    elif low.lower().startswith("http://"):
        rest = low[7:]
    else:
        raise ValueError(f"link origin must start with http:// or https://: {url!r}")
    auth, sep, prefix = rest.partition("/")
    auth = auth.lower()
    prefix = ("/" + prefix).rstrip("/") if sep else ""
    if not auth or len(auth) > MAX_AUTH or not auth.isascii() or any(
            not _host_char(ord(c)) for c in auth):
        raise ValueError(f"link origin has a malformed host: {url!r}")
    if auth.count(":") > 1 or auth.endswith(":") or auth.startswith(".") \
            or auth.endswith(".") or ".." in auth:
        raise ValueError(f"link origin has a malformed host: {url!r}")
    if ":" in auth and not auth.partition(":")[2].isdigit():
        raise ValueError(f"link origin has a malformed port: {url!r}")
    if prefix and (not prefix.isascii() or len(prefix) > 128
                   or any(not (_param_char(ord(c)) or c == "/") for c in prefix)
                   or "//" in prefix):
        raise ValueError(f"link origin has a malformed path: {url!r}")
    if auth.startswith("www."):
        auth = auth[4:]
    return auth.encode("ascii"), prefix.encode("ascii")


cdef class LinkChecker:
    """Verifies register links against a RecordTable; see the module docstring."""

    def __init__(self, origins=(), *, verdict, reasons, issuer="RU"):
        cdef list parsed = [parse_origin(DEFAULT_ORIGIN)]
        for url in origins:
            item = parse_origin(url)
            if item not in parsed:
                parsed.append(item)
        self._origins = parsed
        self.origins = tuple(origins)
        self.verdict = verdict
        self.issuer = issuer
        self.r_bad_link = reasons["bad_link"]
        self.r_not_found = reasons["not_found"]
        self.r_revoked = reasons["revoked"]
        self.r_expired = reasons["token_expired"]
        self.r_not_yet = reasons["token_not_yet_valid"]
        self.r_too_large = reasons["too_large"]
        self.v_bad_link = verdict(self.r_bad_link)
        self.v_not_found = verdict(self.r_not_found)
        self.v_too_large = verdict(self.r_too_large)
        self.v_foreign = verdict(self.r_bad_link, detail=FOREIGN_DETAIL)

    def verify(self, token, RecordTable table, int64_t now):
        """The verdict for one link at epoch seconds `now` (table None = no records)."""
        return self.check(token, table, now)

    def parse(self, token):
        """(\"ok\" | \"bad\" | \"foreign\", kind, key hex, ck hex or None): for tests."""
        cdef bytes raw = self._raw(token)
        cdef unsigned char key[16]
        cdef unsigned char ck[16]
        cdef int kind = 0, has_ck = 0, r
        if raw is None:
            return ("bad", 0, None, None)
        r = self._parse(<const unsigned char*>PyBytes_AS_STRING(raw),
                        PyBytes_GET_SIZE(raw), key, &kind, ck, &has_ck)
        if r != P_OK:
            return ("bad" if r == P_BAD else "foreign", 0, None, None)
        return ("ok", kind, (<bytes>key[:16]).hex(), (<bytes>ck[:16]).hex() if has_ck else None)

    cdef bytes _raw(self, object token):
        if type(token) is bytes:
            return <bytes>token
        if type(token) is str:
            try:
                return (<str>token).encode("utf-8")
            except UnicodeEncodeError:  # lone surrogates
                return None
        return None

    cdef object check(self, object token, RecordTable table, int64_t now):
        cdef bytes raw = self._raw(token)
        cdef unsigned char key[16]
        cdef unsigned char ck[16]
        cdef int kind = 0, has_ck = 0, r, ck_ok
        cdef rec_view v
        cdef tuple strings
        if raw is None:
            return self.v_bad_link
        if PyBytes_GET_SIZE(raw) > MAX_LINK:
            return self.v_too_large
        r = self._parse(<const unsigned char*>PyBytes_AS_STRING(raw),
                        PyBytes_GET_SIZE(raw), key, &kind, ck, &has_ck)
        if r == P_FOREIGN:
            return self.v_foreign
        if r != P_OK:
            return self.v_bad_link
        rt_find(table, key, &v)
        # The same compare on both paths: against the record's ck, or the dummy's.
        ck_ok = _ct_eq16(ck, v.ck)
        if not v.found:
            if not has_ck and kind == 1:
                return self.v_bad_link
            return self.v_not_found
        if v.has_ck:
            if not has_ck:
                return self.v_bad_link
            if not ck_ok:
                return self.v_not_found
        strings = rt_strings(&v)
        if strings is None:  # damaged table: fail closed, as a miss
            return self.v_not_found
        cert = (TYPE_NAMES[v.type_index], self.issuer, format_iso_utc(v.valid_until))
        if v.revoked:
            return self.verdict(self.r_revoked, strings, cert)
        if now < v.valid_from:
            return self.verdict(self.r_not_yet, strings, cert)
        if now > v.valid_until:
            return self.verdict(self.r_expired, strings, cert)
        return self.verdict(None, strings, cert)

    cdef int _parse(self, const unsigned char* p, size_t n, unsigned char* key, int* kind,
                    unsigned char* ck, int* has_ck) except -1:
        cdef size_t i, a0, alen, j, pos, idlen, seg, nlen, vlen, eq, nparams = 0
        cdef unsigned char auth[MAX_AUTH + 1]
        cdef const unsigned char* o
        cdef size_t olen, plen
        cdef bytes oa, op
        cdef bint matched = False, host_known = False
        cdef int hi, lo
        memset(ck, 0, 16)
        # scheme (the caller checked it; check again, cheaply)
        if n >= 8 and _lower(p[4]) == 115:
            i = 8
        else:
            i = 7
        if n < i or p[i - 1] != 47 or p[i - 2] != 47 or p[i - 3] != 58:
            return P_BAD
        a0 = i
        while i < n and p[i] != 47 and p[i] != 63 and p[i] != 35:
            i += 1
        alen = i - a0
        if alen == 0 or alen > MAX_AUTH:
            return P_FOREIGN
        for j in range(alen):
            auth[j] = _lower(p[a0 + j])
            if not _host_char(auth[j]):
                return P_FOREIGN
        for item in self._origins:
            oa, op = item
            o = <const unsigned char*>PyBytes_AS_STRING(oa)
            olen = PyBytes_GET_SIZE(oa)
            if (alen == olen and memcmp(auth, o, olen) == 0) or (
                    alen == olen + 4 and memcmp(auth, b"www.", 4) == 0
                    and memcmp(auth + 4, o, olen) == 0):
                host_known = True
                plen = PyBytes_GET_SIZE(op)
                if n - i >= plen and memcmp(p + i, PyBytes_AS_STRING(op), plen) == 0:
                    matched = True
                    i += plen
                    break
        if not matched:
            return P_BAD if host_known else P_FOREIGN
        # path
        if n - i > 19 and memcmp(p + i, PyBytes_AS_STRING(FORM_A), 19) == 0:
            pos = i + 19
            j = pos
            while j < n and p[j] != 63:
                j += 1
            idlen = j - pos
            if idlen != 16:
                return P_BAD
        elif n - i > 19 and memcmp(p + i, PyBytes_AS_STRING(FORM_B), 19) == 0:
            pos = i + 19
            j = pos
            while j < n and p[j] != 63:
                j += 1
            idlen = j - pos
            if idlen != 36:
                return P_BAD
        elif n - i > 21 and memcmp(p + i, PyBytes_AS_STRING(FORM_C), 21) == 0:
            pos = i + 21
            j = pos
            while j < n and p[j] != 63:
                j += 1
            idlen = j - pos
        else:
            return P_BAD
        kind[0] = link_key(p + pos, idlen, key)
        if kind[0] == 0:
            return P_BAD
        has_ck[0] = 0
        i = j
        if i == n:
            return P_OK
        i += 1  # '?'
        while i <= n:
            seg = i
            while i < n and p[i] != 38:  # '&'
                i += 1
            if i > seg:
                nparams += 1
                if nparams > MAX_PARAMS:
                    return P_BAD
                eq = seg
                while eq < i and p[eq] != 61:  # '='
                    eq += 1
                nlen = eq - seg
                vlen = i - eq - 1 if eq < i else 0
                if nlen == 0 or nlen > MAX_NAME or vlen > MAX_VALUE:
                    return P_BAD
                for j in range(seg, i):
                    if j != eq and not _param_char(p[j]):
                        return P_BAD
                if nlen == 2 and p[seg] == 99 and p[seg + 1] == 107:  # "ck"
                    if has_ck[0] or vlen != 32:
                        return P_BAD
                    for j in range(16):
                        hi = _hexval(p[eq + 1 + 2 * j])
                        lo = _hexval(p[eq + 2 + 2 * j])
                        if hi < 0 or lo < 0:
                            return P_BAD
                        ck[j] = <unsigned char>(hi * 16 + lo)
                    has_ck[0] = 1
            i += 1
        return P_OK
