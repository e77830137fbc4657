# cython: language_level=3
"""Compact set of 16-byte hashes (placeholder; full implementation follows)."""

cdef class HashSet:
    cdef set _s

    def __cinit__(self):
        self._s = set()

    def add(self, bytes key):
        if len(key) != 16:
            raise ValueError("HashSet keys are exactly 16 bytes")
        self._s.add(key)

    def __contains__(self, key):
        return key in self._s

    def __len__(self):
        return len(self._s)
