# C-level interface of fastpath._links for the engine:
#
#     from fastpath._links cimport LinkChecker, is_link
#     if links is not None and is_link(token):
#         return (<LinkChecker>links).check(token, records, now)

from libc.stdint cimport int64_t

from fastpath._records cimport RecordTable


cdef class LinkChecker:
    cdef list _origins          # [(authority bytes, path prefix bytes)]
    cdef readonly tuple origins  # the configured origins as given (for status pages)
    cdef object verdict
    cdef object r_bad_link, r_not_found, r_revoked, r_expired, r_not_yet, r_too_large
    cdef object v_bad_link, v_not_found, v_foreign, v_too_large
    cdef str issuer

    cdef object check(self, object token, RecordTable table, int64_t now)
    cdef bytes _raw(self, object token)
    cdef int _parse(self, const unsigned char* p, size_t n, unsigned char* key, int* kind,
                    unsigned char* ck, int* has_ck) except -1


cdef bint is_link(object token) noexcept
