# C-level interface of fastpath._ossl, for the engine:
#
#     from fastpath._ossl cimport NativeKey
#     if (<NativeKey>nk).check(alg, signature, sig_structure): ...
#
# check() never raises and holds the GIL; a NativeKey is built once per issuer key.

cdef extern from "ossl.h":
    ctypedef struct qrv_key:
        pass


cdef class NativeKey:
    cdef qrv_key key
    cdef readonly int alg
    cdef bint ready
    cdef bint check(self, int alg, bytes signature, bytes data)
