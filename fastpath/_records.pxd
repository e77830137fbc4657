# C-level interface of fastpath._records, for other Cython modules:
#
#     from fastpath._records cimport RecordTable, rec_view, rt_find
#
# rt_find scans the whole bucket of the key (the same work whether or not the key is
# there) and fills `out` from the matching record, or from a fixed dummy record with a
# ck when there is none (so a caller can do the same constant-time ck compare on both
# paths). A layered table (a base with an overlay of changed records) is looked up in
# both, always, and the answer selected without a branch on the data; a tombstone in
# the overlay reads as a miss. It creates no Python objects and never raises; call it
# with the GIL held.

from libc.stdint cimport int64_t, uint32_t


cdef struct rec_view:
    int found            # 1 when the key is in the table
    int type_index       # 0 vaccination, 1 recovery, 2 test, 3 temporary
    int revoked
    int has_ck
    int64_t valid_from   # epoch seconds, first valid instant
    int64_t valid_until  # epoch seconds, last valid instant
    const unsigned char* ck       # 16 bytes (the dummy's when has_ck is 0)
    const unsigned char* strings  # dob (4 bytes) then name, name_latin, document
    size_t strings_len            # bytes available from `strings` to the data end


cdef struct rt_tab:  # one table's sections (count 0: an empty table)
    const unsigned char* dir
    const unsigned char* index
    const unsigned char* data
    size_t data_len
    size_t count
    unsigned int bits
    uint32_t scan


cdef class RecordTable:
    cdef object _owner
    cdef Py_buffer _view
    cdef bint _held
    cdef const unsigned char* _base
    cdef size_t _len
    cdef rt_tab _t            # this buffer's table
    cdef bint _layered        # an overlay is looked up first
    cdef rt_tab _o            # the overlay's table (when _layered)
    cdef RecordTable _over    # keeps the overlay's buffer alive
    cdef size_t _size         # records in the merged view: len()

    cdef size_t _merged_count(self) noexcept nogil
    cdef const unsigned char* _select(self, const unsigned char* key, int* found,
                                      const unsigned char** end) noexcept


cdef void rt_find(RecordTable t, const unsigned char* key, rec_view* out) noexcept
cdef tuple rt_strings(const rec_view* v)
cdef int link_key(const unsigned char* ident, size_t n, unsigned char* key) noexcept
