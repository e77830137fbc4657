# Included by _decode.pyx: the 16-byte SHA-256 prefixes of the EU revocation lists.

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
