# Included by _decode.pyx: a CBOR reader (RFC 8949) for hostile input: definite
# lengths only, every length checked against the bytes left, nesting capped, unique map keys.

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


cdef inline object _item(Cur* c, int depth):
    """One CBOR item; a tag anywhere in it is malformed."""
    return _item_any(c, depth, False)


cdef inline object _ignored(Cur* c, int depth):
    """One CBOR item whose value is not used (a field the schema does not name): tags are
    allowed in it and dropped; lengths, nesting, UTF-8 and unique keys are still checked."""
    return _item_any(c, depth, True)


cdef object _item_any(Cur* c, int depth, bint tags):
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
            value = _item_any(c, depth + 1, tags)
            Py_INCREF(value)
            PyList_SET_ITEM(lst, i, value)
        return lst
    if major == 5:
        if arg > <uint64_t>(_remaining(c) // 2):
            raise _Malformed("map longer than input")
        n = <Py_ssize_t>arg
        dct = _PyDict_NewPresized(n)
        for i in range(n):
            key = _item_any(c, depth + 1, tags)
            if type(key) is not int and type(key) is not str:
                raise _Malformed("map key must be an integer or text")
            value = _item_any(c, depth + 1, tags)
            PyDict_SetDefault(dct, key, value)
            if len(dct) != i + 1:  # the key was there already
                raise _Malformed("duplicate map key")
        return dct
    if major == 6:
        if not tags:
            raise _Malformed("unexpected tag")
        return _item_any(c, depth + 1, True)  # the tag counts as one level of nesting
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
