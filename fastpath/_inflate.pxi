# Included by _decode.pyx: zlib inflate with a hard output cap.

from zlib import decompressobj as _decompressobj
from zlib import error as _ZlibError

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
