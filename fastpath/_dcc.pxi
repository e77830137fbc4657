# Included by _decode.pyx: the EU DCC schema 1.3 check, done while the payload is parsed.

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


cdef bint _parse_day(object obj, int64_t* out):
    """A schema "date" field (dt, fr, df, du): 'YYYY-MM-DD', or an RFC 3339 date-time
    whose date part counts (as the EU's verifiers read it: the date as written)."""
    cdef int64_t ignored
    if type(obj) is not str:
        return False
    if len(<str>obj) == 10:
        return _parse_date(obj, out)
    return _parse_datetime(obj, &ignored) and _parse_date((<str>obj)[:10], out)


cdef bint _tagged_time(object value, int tag, bint day, int64_t* out):
    """A date / date-time field: untagged text, tag 0 (RFC 3339 date-time text) or tag 1
    (epoch seconds, integer or float, rounded down). A date field (`day`) keeps the date
    part: the written date of a date-time text, the UTC date of an epoch."""
    if tag < 0:
        return _parse_day(value, out) if day else _parse_datetime(value, out)
    if tag == 0:
        if not _parse_datetime(value, out):
            return False
        return _parse_date((<str>value)[:10], out) if day else True
    if tag == 1:
        if _time_value(value, False, out) < 0:
            return False
        if day:  # floor to 00:00Z of that day (C division: mind negative times)
            rem = out[0] % 86400
            out[0] -= rem + 86400 if rem < 0 else rem
        return True
    return False


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


cdef inline bint _unsafe_char(Py_UCS4 ch):
    """C0/C1 controls, DEL, and the bidirectional marks, embeddings, overrides and
    isolates (plus line/paragraph separators): what could spoof a gate display."""
    return (ch < 0x20 or 0x7F <= ch <= 0x9F or ch == 0x061C or ch == 0x200E or ch == 0x200F
            or 0x2028 <= ch <= 0x202E or 0x2066 <= ch <= 0x2069)


cdef str _display_name(str s):
    """fn / gn as shown to the holder: unsafe characters replaced by U+FFFD."""
    cdef Py_UCS4 ch
    for ch in s:
        if _unsafe_char(ch):
            break
    else:
        return s
    return "".join([u"\ufffd" if _unsafe_char(ch) else ch for ch in s])


cdef object _field_value(Cur* c, int depth, int* tag):
    """The value of a known field, with at most one tag in front (its number in tag, else
    -1): which tags a field allows is the schema check's business."""
    cdef int major
    cdef uint64_t arg
    tag[0] = -1
    if c.p < c.end and (c.p[0] >> 5) == 6:
        _head(c, &major, &arg)
        tag[0] = <int>arg if arg < 0x7FFFFFFF else 0x7FFFFFFF
        if c.p < c.end and (c.p[0] >> 5) == 6:  # a tag on a tag: no field allows that
            tag[0] = 0x7FFFFFFF
            return _ignored(c, depth + 1)
        return _item(c, depth + 1)
    return _item(c, depth)


cdef int _fail_field(Decoded out, int key, int why) except -1:
    """Remember the first field of the payload that failed (for the verdict's detail)."""
    if out.payload_field is None:
        out.payload_field = _KEY_NAMES[key]
        out.payload_detail = (
            f"The certificate's {_KEY_NAMES[key]} is not a code of the EU value set "
            f"{_VS_FILES[why - 2]}." if why >= 2 else
            f"The certificate's {_KEY_NAMES[key]} does not match the EU DCC schema.")
    return 0


cdef bint _names(Cur* c, int depth, Decoded out) except -1:
    cdef Py_ssize_t n, i
    cdef MapState st
    cdef set others = None
    cdef object key, value
    cdef bint ok = True
    cdef int tag
    if not _open_map(c, depth, &n):
        _item(c, depth)
        _fail_field(out, K_NAM, 1)
        return False
    st.seen = 0
    for i in range(n):
        key = _map_key(c, depth + 1, &st)
        if st.key < 0:
            others = _note_other(others, key)
            _ignored(c, depth + 1)
            continue
        value = _field_value(c, depth + 1, &tag)
        if st.key == K_FN or st.key == K_GN:
            if tag >= 0 or not _short_str(value):
                ok = False
                _fail_field(out, st.key, 1)
            elif st.key == K_FN:
                out.fn = _display_name(value)
            else:
                out.gn = _display_name(value)
        elif st.key == K_FNT or st.key == K_GNT:
            if tag >= 0 or not _latin_name(value):
                ok = False
                _fail_field(out, st.key, 1)
            elif st.key == K_FNT:
                out.fnt = value
            else:
                out.gnt = value
    if (st.seen & ((_BIT << K_FNT) | (_BIT << K_GNT))) == 0:
        _fail_field(out, K_FNT, 1)
        return False
    return ok


cdef inline int _code(ValueSets vs, int field, object value) except -1:
    """0 when `value` (a str) is in the loaded value set for `field` (or none is loaded),
    else 2 + field (an unknown code)."""
    cdef Py_ssize_t n
    cdef const uint8_t* p
    if vs is None or not (vs.fields >> field) & 1:
        return 0
    p = _utf8(<str>value, &n)
    return 0 if vs.has(field, p, n) else 2 + field


cdef int _entry_field(int kind, int key, object value, int tag, Decoded out,
                      ValueSets vs) except -1:
    """Check one field of a v / t / r entry: 0 when it holds, 1 when it breaks the schema,
    2 + value-set id for an unknown code. Fields of other entry types are ignored."""
    if tag >= 0 and not (key == K_SC or key == K_DT or key == K_FR or key == K_DF
                         or key == K_DU):
        return 1  # a tag on a field that is not a date or date-time
    if key == K_TG:
        return _code(vs, VS_TG, value) if _is_str(value) else 1
    if key == K_CO:
        if not _country(value):
            return 1
        out.co = value
        return _code(vs, VS_CO, value)
    if key == K_IS:
        return 0 if _short_str(value) else 1
    if key == K_CI:
        if not _short_str(value) or len(<str>value) == 0:
            return 1
        out.ci = value
        return 0
    if kind == 0:
        if key == K_MP:
            if not _is_str(value):
                return 1
            out.mp = value
            return _code(vs, VS_MP, value)
        if key == K_VP:
            return _code(vs, VS_VP, value) if _is_str(value) else 1
        if key == K_MA:
            return _code(vs, VS_MA, value) if _is_str(value) else 1
        if key == K_DN or key == K_SD:
            if not _posint(value):
                return 1
            if key == K_DN:
                out.dn = value
            else:
                out.sd = value
            return 0
        if key == K_DT:
            return 0 if _tagged_time(value, tag, True, &out.dt) else 1
    elif kind == 1:
        if key == K_TT or key == K_TR:
            if not _is_str(value):
                return 1
            if key == K_TT:
                out.tt = value
                return _code(vs, VS_TT, value)
            out.tr = value
            return _code(vs, VS_TR, value)
        if key == K_SC:
            return 0 if _tagged_time(value, tag, False, &out.sc) else 1
        if key == K_NM or key == K_TC:
            return 0 if _short_str(value) else 1
        if key == K_MA:
            return _code(vs, VS_TEST_MA, value) if _is_str(value) else 1
    else:
        if key == K_FR:
            return 0 if _tagged_time(value, tag, True, &out.fr) else 1
        if key == K_DF:
            return 0 if _tagged_time(value, tag, True, &out.df) else 1
        if key == K_DU:
            return 0 if _tagged_time(value, tag, True, &out.du) else 1
    return 0


cdef bint _entries(Cur* c, int depth, int kind, Decoded out, ValueSets vs) except -1:
    """v / t / r: an array holding exactly one entry map."""
    cdef int major, tag, why
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
        _fail_field(out, K_V + kind, 1)
        return False
    _head(c, &major, &arg)
    if not _open_map(c, depth + 1, &n):
        _item(c, depth + 1)
        _fail_field(out, K_V + kind, 1)
        return False
    st.seen = 0
    for i in range(n):
        key = _map_key(c, depth + 2, &st)
        if st.key < 0:
            others = _note_other(others, key)
            _ignored(c, depth + 2)
            continue
        value = _field_value(c, depth + 2, &tag)
        why = _entry_field(kind, st.key, value, tag, out, vs)
        if why:
            ok = False
            _fail_field(out, st.key, why)
    required = _REQ_VACCINATION if kind == 0 else _REQ_TEST if kind == 1 else _REQ_RECOVERY
    if (st.seen & required) != required:
        for i in range(K_COUNT):
            if (required >> i) & 1 and not (st.seen >> i) & 1:
                _fail_field(out, i, 1)
                break
        return False
    return ok


cdef bint _dcc(Cur* c, int depth, Decoded out, ValueSets vs) except -1:
    """The DCC map (hcert key 1), checked against EU DCC schema 1.3 and the value sets."""
    cdef Py_ssize_t n, i
    cdef MapState st
    cdef set others = None
    cdef object key, value
    cdef bint ok = True
    cdef int found = -1, kind, tag
    cdef uint64_t top = (_BIT << K_VER) | (_BIT << K_NAM) | (_BIT << K_DOB)
    if not _open_map(c, depth, &n):
        _item(c, depth)
        out.payload_field = ""
        out.payload_detail = "The certificate payload is not a map."
        return False
    st.seen = 0
    for i in range(n):
        key = _map_key(c, depth + 1, &st)
        if st.key < 0:
            others = _note_other(others, key)
            _ignored(c, depth + 1)
        elif st.key == K_NAM:
            if not _names(c, depth + 1, out):
                ok = False
        elif st.key == K_V or st.key == K_T or st.key == K_R:
            kind = st.key - K_V
            if found >= 0:
                ok = False  # more than one of v, t, r
                _fail_field(out, st.key, 1)
            found = kind
            if not _entries(c, depth + 1, kind, out, vs):
                ok = False
        else:
            value = _field_value(c, depth + 1, &tag)
            if st.key == K_VER:
                if tag >= 0 or not _version(value):
                    ok = False
                    _fail_field(out, st.key, 1)
            elif st.key == K_DOB:
                if tag >= 0 or not _dob(value):
                    ok = False
                    _fail_field(out, st.key, 1)
                else:
                    out.dob = value
            # any other known key at this level (a field of an entry) is not ours: ignored
    if found < 0:
        if out.payload_field is None:
            out.payload_field = "v"
            out.payload_detail = "The certificate holds none of v, t, r."
        return False
    if (st.seen & top) != top:
        for i in (K_VER, K_NAM, K_DOB):
            if not (st.seen >> i) & 1:
                _fail_field(out, i, 1)
                break
        return False
    if not ok:
        return False
    out.type_index = found
    out.cert_type = TYPE_NAMES[found]
    return True
