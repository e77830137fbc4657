# Included by _decode.pyx: Base45 decoding (RFC 9285).

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
