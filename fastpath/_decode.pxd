# C-level interface of fastpath._decode, for other Cython modules:
#
#     from fastpath._decode cimport Decoded, decode_token
#
# decode_token raises DecodeError (reason = a contract code) like the def `decode`.

from libc.stdint cimport int64_t, uint8_t, uint32_t


cdef class ValueSets:
    """The EU value sets as one C-level hash table, built once (see _valuesets.pxi)."""
    cdef bytes _blob                   # entries: field id, length, code bytes
    cdef bytes _slotbuf                # uint32 slots: 0 empty, else entry offset + 1
    cdef const uint32_t* _slots
    cdef uint32_t _mask
    cdef readonly int fields           # bit per value set that is loaded
    cdef readonly Py_ssize_t size      # number of codes
    cdef readonly str source           # where they came from (for status pages)
    cdef bint has(self, int field, const uint8_t* p, Py_ssize_t n)


cdef class Decoded:
    cdef readonly int alg
    cdef readonly bytes kid
    cdef readonly bytes signature
    cdef readonly bytes sig_structure
    cdef readonly str iss
    cdef readonly int64_t exp
    cdef readonly int64_t iat
    # Payload: only meaningful when payload_ok is True.
    cdef readonly bint payload_ok
    # When payload_ok is False: the first field that failed ("" for the whole payload)
    # and an English sentence naming it; None when the payload was not reached.
    cdef readonly str payload_field, payload_detail
    cdef readonly int type_index       # 0 vaccination, 1 test, 2 recovery
    cdef readonly str cert_type
    cdef readonly str fn, gn, fnt, gnt, dob
    cdef readonly str ci, co
    cdef readonly int dn, sd
    cdef readonly int64_t dt, fr, df, du, sc
    cdef readonly str tt, tr
    cdef readonly str mp               # vaccine product (vaccination only)
    # Revocation hashes: cuci_hash uses iss (else co); cuci_co_hash uses co. When iss is
    # absent or equal to co, cuci_co_hash IS cuci_hash (the same object).
    cdef readonly bytes uci_hash, cuci_hash, cuci_co_hash, sig_hash


cdef Decoded decode_token(object token, Py_ssize_t max_inflated)
cdef Decoded decode_token_vs(object token, Py_ssize_t max_inflated, ValueSets vs)
cdef str format_iso_utc(int64_t ts)
