# C-level interface of fastpath._hashset, for other Cython modules:
#
#     from fastpath._hashset cimport HashSet
#     if (<HashSet>store_set).contains_ptr(digest16): ...
#
# A layered view (layered_view: a mapped table plus an overlay of added and removed keys)
# is a HashSet too: contains_ptr answers for the merged set.
#
# contains_ptr reads exactly 16 bytes at `key`, creates no Python objects and never
# raises. Call it with the GIL held: HashSet mutations run under the GIL, so holding
# it is what makes a lookup see either the old or the new table, never a torn one.

from libc.stdint cimport uint64_t


cdef struct hs_slot:
    uint64_t hi   # high half of the key's keyed permutation; places the key
    uint64_t lo   # low half


cdef class HashSet:
    cdef hs_slot* _slots
    cdef size_t _cap        # number of home positions (any value >= 1)
    cdef size_t _nslots     # physical slots: _cap + overflow slack; the last is always empty
    cdef size_t _count      # stored non-zero keys
    cdef bint _has_zero     # the key permuted to zero lives outside the table (zero = empty)
    cdef uint64_t _key[4]   # Feistel round keys (process-wide, or the mapped file's)
    cdef object _owner      # holder of the buffer when the table is a mapped view
    cdef bint _readonly     # a view: mutations raise TypeError
    cdef HashSet _over_add  # layered view (layered_view): keys added over the table, or None
    cdef HashSet _over_del  # layered view: keys of the table removed, or None
    cdef size_t _merged     # layered view: len() of the merged set

    cdef bint contains_ptr(self, const unsigned char* key) noexcept
    cdef bint _contains(self, uint64_t hi, uint64_t lo) noexcept
    cdef bint _table_contains_ptr(self, const unsigned char* key) noexcept
    cdef int _insert(self, uint64_t hi, uint64_t lo) except -1
    cdef bint _remove(self, uint64_t hi, uint64_t lo) noexcept
    cdef int _rebuild(self, size_t cap, const hs_slot* extra, size_t nextra, bint subtract) except -1
    cdef int _reserve(self, size_t total) except -1
    cdef int _maybe_shrink(self) except -1
    cdef int _check_writable(self) except -1
    cdef int _check_plain(self, str what) except -1
    cdef inline void _permuted(self, const unsigned char* key, uint64_t* hi, uint64_t* lo) noexcept


cdef bint hashset_contains(HashSet s, const unsigned char* key) noexcept
