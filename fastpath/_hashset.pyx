# cython: language_level=3
"""A compact set of 16-byte keys (truncated SHA-256 hashes).

Layout: one flat array of 16-byte slots, ordered linear probing ("a sorted array with
gaps"). Keys are not placed by their own bytes (a revocation list is operator input, and
hashes chosen to share a prefix would all land on one home slot and build one long probe
chain): each key is first passed through a keyed 128-bit permutation, a 4-round Feistel
network over the two 64-bit halves whose round function is a keyed multiply-xorshift, with
round keys drawn from os.urandom when the module is imported (a set mapped from a snapshot
file carries the round keys it was built with). The table stores the permuted value ``t``;
``t``'s home slot is ``(t.hi * cap) >> 64`` and, because that map is monotone, the table is
a sorted array of ``t`` values with gaps. That gives:

- membership: start at the home slot, walk while the slot holds a smaller key; stop at an
  empty slot or a key >= the target (a miss costs as little as a hit);
- insertion: shift the rest of the cluster right by one (memmove);
- deletion: backward shift, so no tombstones;
- bulk build and merge in one sequential pass over sorted input; `to_packed()` inverts the
  permutation and sorts, so it still returns the keys in ascending byte order.

The capacity is not a power of two, so the table can run at 70-90 % load: about 18-23
bytes per entry. The all-zero slot marks empty slots, so the key whose permuted value is
zero is kept in a flag.

A set can also be a read-only view of a table kept elsewhere (`table_view`: the per-machine
snapshot file mapped by every worker); mutating methods then raise TypeError.

Every method holds the GIL for its whole run and never calls back into Python code, so
each call (and each `apply_changes` call) is atomic for other Python threads.
"""

import os

from cpython.buffer cimport PyObject_GetBuffer, PyBuffer_Release, PyBUF_SIMPLE
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize
from libc.stdint cimport uint64_t
from libc.stdlib cimport calloc, free, malloc, qsort
from libc.string cimport memcmp, memcpy, memmove, memset

cdef extern from *:
    """
    #include <stdint.h>
    #include <string.h>
    static inline uint64_t qrv_load_be64(const unsigned char *p) {
        uint64_t v;
        memcpy(&v, p, 8);
    #if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
        v = __builtin_bswap64(v);
    #elif !(defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__)
        v = ((uint64_t)p[0] << 56) | ((uint64_t)p[1] << 48) | ((uint64_t)p[2] << 40) |
            ((uint64_t)p[3] << 32) | ((uint64_t)p[4] << 24) | ((uint64_t)p[5] << 16) |
            ((uint64_t)p[6] << 8) | (uint64_t)p[7];
    #endif
        return v;
    }
    /* Keyed 128-bit permutation: 4 Feistel rounds, round function a keyed
       multiply-xorshift (the splitmix64 finaliser on x ^ k). */
    static inline uint64_t qrv_round(uint64_t x, uint64_t k) {
        x ^= k;
        x ^= x >> 30;
        x *= 0xBF58476D1CE4E5B9ULL;
        x ^= x >> 27;
        x *= 0x94D049BB133111EBULL;
        x ^= x >> 31;
        return x;
    }
    static inline void qrv_perm(const uint64_t *k, uint64_t *hi, uint64_t *lo) {
        uint64_t l = *hi, r = *lo, t;
        int i;
        for (i = 0; i < 4; i++) { t = r; r = l ^ qrv_round(r, k[i]); l = t; }
        *hi = l; *lo = r;
    }
    static inline void qrv_unperm(const uint64_t *k, uint64_t *hi, uint64_t *lo) {
        uint64_t l = *hi, r = *lo, t;
        int i;
        for (i = 3; i >= 0; i--) { t = l; l = r ^ qrv_round(l, k[i]); r = t; }
        *hi = l; *lo = r;
    }
    static inline void qrv_store_be64(unsigned char *p, uint64_t v) {
        int i;
        for (i = 7; i >= 0; i--) { p[i] = (unsigned char)(v & 0xff); v >>= 8; }
    }
    static inline size_t qrv_home(uint64_t h, size_t cap) {
    #if defined(__SIZEOF_INT128__)
        return (size_t)(((unsigned __int128)h * (unsigned __int128)cap) >> 64);
    #else
        /* portable fallback: 32x32 high product, still monotone in h */
        return (size_t)(((h >> 32) * (uint64_t)cap) >> 32);
    #endif
    }
    """
    uint64_t qrv_load_be64(const unsigned char* p) noexcept nogil
    void qrv_store_be64(unsigned char* p, uint64_t v) noexcept nogil
    void qrv_perm(const uint64_t* k, uint64_t* hi, uint64_t* lo) noexcept nogil
    void qrv_unperm(const uint64_t* k, uint64_t* hi, uint64_t* lo) noexcept nogil
    size_t qrv_home(uint64_t h, size_t cap) noexcept nogil


cdef enum:
    KEY_SIZE = 16
    MIN_CAP = 8
# Load factors: grow when an insert would pass MAX_LOAD, to GROW_LOAD; bulk builds target
# BULK_LOAD; shrink below MIN_LOAD.
cdef double MAX_LOAD = 0.90
cdef double GROW_LOAD = 0.72
cdef double BULK_LOAD = 0.85
cdef double MIN_LOAD = 0.25

cdef inline bint _is_empty(const hs_slot* s) noexcept nogil:
    return s.hi == 0 and s.lo == 0

cdef inline bint _less(uint64_t ahi, uint64_t alo, uint64_t bhi, uint64_t blo) noexcept nogil:
    return ahi < bhi or (ahi == bhi and alo < blo)


cdef inline size_t _walk(const hs_slot* slots, size_t cap, uint64_t hi,
                         uint64_t lo) noexcept nogil:
    """The slot of a permuted value, or where it would go: from its home slot, past every
    smaller key (the keys of a cluster are sorted). The last physical slot is always
    empty, so the walk ends inside the array."""
    cdef size_t i = qrv_home(hi, cap)
    while not _is_empty(&slots[i]) and _less(slots[i].hi, slots[i].lo, hi, lo):
        i += 1
    return i


cdef int _cmp_slot(const void* a, const void* b) noexcept nogil:
    cdef const hs_slot* x = <const hs_slot*>a
    cdef const hs_slot* y = <const hs_slot*>b
    if x.hi != y.hi:
        return -1 if x.hi < y.hi else 1
    if x.lo != y.lo:
        return -1 if x.lo < y.lo else 1
    return 0

cdef inline size_t _next_full(const hs_slot* slots, size_t i, size_t n) noexcept nogil:
    while i < n and _is_empty(&slots[i]):
        i += 1
    return i

cdef inline size_t _slack_for(size_t cap) noexcept nogil:
    return 64 + (cap >> 8)

cdef size_t _cap_for(size_t n, double load):
    cdef size_t cap = <size_t>(<double>n / load) + 1
    return cap if cap > MIN_CAP else MIN_CAP


cdef hs_slot* _sort_slots_c(hs_slot* arr, size_t n) noexcept nogil:
    """Sort n slots ascending; returns the sorted array (maybe a new one: `arr` is then
    freed), or NULL when out of memory (`arr` freed too). Needs no GIL."""
    cdef hs_slot* tmp
    cdef size_t* counts
    cdef size_t i, b, nb, start
    cdef int bits
    cdef bint ordered = True
    for i in range(1, n):
        if _less(arr[i].hi, arr[i].lo, arr[i - 1].hi, arr[i - 1].lo):
            ordered = False
            break
    if ordered or n < 2:
        return arr
    if n < 4096:
        qsort(arr, n, sizeof(hs_slot), _cmp_slot)
        return arr
    # One counting-sort pass on the top bits, then qsort each bucket (qsort keeps the
    # worst case at n log n for input that is not uniform).
    bits = 1
    while bits < 20 and (<size_t>1 << bits) * 16 < n:
        bits += 1
    nb = <size_t>1 << bits
    tmp = <hs_slot*>malloc(n * sizeof(hs_slot))
    counts = <size_t*>calloc(nb + 1, sizeof(size_t))
    if tmp == NULL or counts == NULL:
        free(tmp)
        free(counts)
        free(arr)
        return NULL
    for i in range(n):
        counts[(arr[i].hi >> (64 - bits)) + 1] += 1
    for b in range(nb):
        counts[b + 1] += counts[b]
    for i in range(n):
        b = arr[i].hi >> (64 - bits)
        tmp[counts[b]] = arr[i]
        counts[b] += 1
    start = 0
    for b in range(nb):
        if counts[b] - start > 1:
            qsort(tmp + start, counts[b] - start, sizeof(hs_slot), _cmp_slot)
        start = counts[b]
    free(counts)
    free(arr)
    return tmp


cdef hs_slot* _sort_slots(hs_slot* arr, size_t n) except? NULL:
    cdef hs_slot* out = _sort_slots_c(arr, n)
    if out == NULL:
        raise MemoryError()
    return out


cdef hs_slot* _sorted_copy_c(const unsigned char* data, size_t n,
                             const uint64_t* k) noexcept nogil:
    """Decode n packed keys, permute them with round keys `k`, and return them as a new
    array sorted by permuted value (caller frees), or NULL when out of memory."""
    cdef hs_slot* out = <hs_slot*>malloc(n * sizeof(hs_slot) if n else 1)
    cdef size_t i
    if out == NULL:
        return NULL
    for i in range(n):
        out[i].hi = qrv_load_be64(data + i * KEY_SIZE)
        out[i].lo = qrv_load_be64(data + i * KEY_SIZE + 8)
        qrv_perm(k, &out[i].hi, &out[i].lo)
    return _sort_slots_c(out, n)


cdef hs_slot* _sorted_copy(const unsigned char* data, size_t n,
                           const uint64_t* k) except? NULL:
    cdef hs_slot* out = _sorted_copy_c(data, n, k)
    if out == NULL:
        raise MemoryError()
    return out


cdef int _fresh_table_c(const hs_slot* keys, size_t n, size_t cap, hs_slot** out,
                        size_t* out_nslots, size_t* out_count,
                        bint* out_zero) noexcept nogil:
    """Lay the sorted permuted values `keys` (duplicates allowed) into a new table of
    `cap` homes; 0, or -1 when out of memory. Needs no GIL."""
    cdef size_t slack = _slack_for(cap)
    cdef size_t nslots, pos, p, b, count
    cdef bint has_zero, overflow
    cdef hs_slot* new
    cdef hs_slot k
    while True:
        nslots = cap + slack + 1
        new = <hs_slot*>calloc(nslots, sizeof(hs_slot))
        if new == NULL:
            return -1
        pos = 0
        count = 0
        has_zero = False
        overflow = False
        b = 0
        while b < n:
            k = keys[b]
            b += 1
            while b < n and keys[b].hi == k.hi and keys[b].lo == k.lo:
                b += 1
            if k.hi == 0 and k.lo == 0:
                has_zero = True
                continue
            p = qrv_home(k.hi, cap)
            if p < pos:
                p = pos
            if p + 1 >= nslots:
                overflow = True
                break
            new[p] = k
            pos = p + 1
            count += 1
        if overflow:
            free(new)
            slack *= 2
            continue
        out[0] = new
        out_nslots[0] = nslots
        out_count[0] = count
        out_zero[0] = has_zero
        return 0


# Round keys for every set this process builds (a mapped set brings its own).
cdef uint64_t _SEED[4]


def _init_seed(bytes seed):
    """Set the process-wide round keys (32 bytes); done once at import from os.urandom."""
    cdef int i
    if len(seed) != 32:
        raise ValueError("seed: 32 bytes")
    for i in range(4):
        _SEED[i] = qrv_load_be64(<const unsigned char*>PyBytes_AS_STRING(seed) + 8 * i)


_init_seed(os.urandom(32))


cdef class _Buffer:
    """Holds a PyBUF_SIMPLE view of a bytes-like object of whole 16-byte keys."""
    cdef Py_buffer view
    cdef bint held
    cdef const unsigned char* ptr
    cdef size_t n

    def __cinit__(self, obj):
        self.held = False
        PyObject_GetBuffer(obj, &self.view, PyBUF_SIMPLE)
        self.held = True
        if self.view.len % KEY_SIZE:
            raise ValueError(
                f"packed keys: buffer length {self.view.len} is not a multiple of {KEY_SIZE}")
        self.ptr = <const unsigned char*>self.view.buf
        self.n = <size_t>(self.view.len // KEY_SIZE)

    def __dealloc__(self):
        if self.held:
            PyBuffer_Release(&self.view)


cdef bytes _as_key(object key):
    """The key as a bytes object of exactly 16 bytes, else TypeError / ValueError."""
    if type(key) is not bytes:
        if isinstance(key, (bytes, bytearray, memoryview)):
            key = bytes(key)
        else:
            raise TypeError(f"HashSet keys are bytes, not {type(key).__name__}")
    if len(<bytes>key) != KEY_SIZE:
        raise ValueError(f"HashSet keys are exactly {KEY_SIZE} bytes, got {len(<bytes>key)}")
    return <bytes>key


cdef inline const unsigned char* _ptr(bytes key) noexcept:
    return <const unsigned char*>PyBytes_AS_STRING(key)


cdef class HashSet:
    """Set of 16-byte keys; see the module docstring and _hashset.pyi."""

    def __cinit__(self):
        self._slots = NULL
        self._cap = 0
        self._nslots = 0
        self._count = 0
        self._has_zero = False
        self._owner = None
        self._readonly = False
        self._over_add = None
        self._over_del = None
        self._merged = 0
        self._key[0] = _SEED[0]
        self._key[1] = _SEED[1]
        self._key[2] = _SEED[2]
        self._key[3] = _SEED[3]
        self._rebuild(MIN_CAP, NULL, 0, False)

    def __init__(self, packed=None):
        if packed is not None:
            if self._count == 0 and not self._has_zero and self._owner is None:
                _build_fresh(self, _Buffer(packed))
            else:
                self.add_packed(packed)

    def __dealloc__(self):
        if self._owner is None:
            free(self._slots)
        self._slots = NULL

    # ---- C level -----------------------------------------------------------------------

    cdef bint contains_ptr(self, const unsigned char* key) noexcept:
        if self._over_add is not None:
            # layered: added, or in the table and not removed (the overlays are plain sets)
            if self._over_add._table_contains_ptr(key):
                return True
            return self._table_contains_ptr(key) and not self._over_del._table_contains_ptr(key)
        return self._table_contains_ptr(key)

    cdef bint _table_contains_ptr(self, const unsigned char* key) noexcept:
        """Membership in this object's own table (without any overlay)."""
        cdef uint64_t hi = qrv_load_be64(key)
        cdef uint64_t lo = qrv_load_be64(key + 8)
        qrv_perm(self._key, &hi, &lo)
        return self._contains(hi, lo)

    cdef bint _contains(self, uint64_t hi, uint64_t lo) noexcept:
        """Membership of a permuted value."""
        cdef const hs_slot* s
        if hi == 0 and lo == 0:
            return self._has_zero
        s = self._slots + _walk(self._slots, self._cap, hi, lo)
        return s.hi == hi and s.lo == lo

    cdef int _check_writable(self) except -1:
        if self._readonly:
            raise TypeError("this HashSet is a read-only view of a mapped table")
        return 0

    cdef int _insert(self, uint64_t hi, uint64_t lo) except -1:
        """Insert one permuted value; 1 if added, 0 if present. Grows the table when needed."""
        cdef size_t i, j
        cdef hs_slot one
        if hi == 0 and lo == 0:
            if self._has_zero:
                return 0
            self._has_zero = True
            return 1
        if <double>(self._count + 1) > <double>self._cap * MAX_LOAD:
            self._rebuild(_cap_for(self._count + 1, GROW_LOAD), NULL, 0, False)
        while True:
            i = _walk(self._slots, self._cap, hi, lo)
            if self._slots[i].hi == hi and self._slots[i].lo == lo:
                return 0
            j = i
            while not _is_empty(&self._slots[j]):
                j += 1
            if j + 1 < self._nslots:
                break
            # The cluster would reach the sentinel slot: rebuild with more room.
            one.hi = hi
            one.lo = lo
            self._rebuild(_cap_for(self._count + 1, GROW_LOAD), &one, 1, False)
            return 1
        if j > i:
            memmove(&self._slots[i + 1], &self._slots[i], (j - i) * sizeof(hs_slot))
        self._slots[i].hi = hi
        self._slots[i].lo = lo
        self._count += 1
        return 1

    cdef bint _remove(self, uint64_t hi, uint64_t lo) noexcept:
        """Remove one permuted value; True if it was there."""
        cdef size_t i, j
        if hi == 0 and lo == 0:
            if self._has_zero:
                self._has_zero = False
                return True
            return False
        i = _walk(self._slots, self._cap, hi, lo)
        if self._slots[i].hi != hi or self._slots[i].lo != lo:
            return False
        # Backward shift: pull left every following key that sits past its home slot.
        j = i + 1
        while not _is_empty(&self._slots[j]) and qrv_home(self._slots[j].hi, self._cap) < j:
            j += 1
        if j - i > 1:
            memmove(&self._slots[i], &self._slots[i + 1], (j - i - 1) * sizeof(hs_slot))
        self._slots[j - 1].hi = 0
        self._slots[j - 1].lo = 0
        self._count -= 1
        return True

    cdef int _rebuild(self, size_t cap, const hs_slot* extra, size_t nextra,
                      bint subtract) except -1:
        """Rebuild into a new table of `cap` homes from the current values merged with
        (or, if `subtract`, minus) the sorted array of permuted values `extra`. The old
        table stays intact until the new one is complete, so a MemoryError changes
        nothing."""
        cdef size_t slack = _slack_for(cap)
        cdef hs_slot* new
        cdef size_t nslots, pos, p, a, b, count
        cdef bint has_zero
        cdef hs_slot k
        cdef bint take_a, take_b, overflow
        while True:
            nslots = cap + slack + 1
            new = <hs_slot*>calloc(nslots, sizeof(hs_slot))
            if new == NULL:
                raise MemoryError()
            pos = 0
            count = 0
            has_zero = self._has_zero
            overflow = False
            a = _next_full(self._slots, 0, self._nslots)
            b = 0
            while a < self._nslots or b < nextra:
                if b < nextra and extra[b].hi == 0 and extra[b].lo == 0:
                    has_zero = not subtract
                    b += 1
                    continue
                take_a = a < self._nslots
                take_b = b < nextra
                if take_a and take_b:
                    if _less(self._slots[a].hi, self._slots[a].lo, extra[b].hi, extra[b].lo):
                        take_b = False
                    elif _less(extra[b].hi, extra[b].lo, self._slots[a].hi, self._slots[a].lo):
                        take_a = False
                k = self._slots[a] if take_a else extra[b]
                if take_a:
                    a = _next_full(self._slots, a + 1, self._nslots)
                if take_b:
                    b += 1
                    while b < nextra and extra[b].hi == k.hi and extra[b].lo == k.lo:
                        b += 1                 # duplicates inside `extra`
                if subtract and take_b:
                    continue                   # removed (or removing an absent key)
                p = qrv_home(k.hi, cap)
                if p < pos:
                    p = pos
                if p + 1 >= nslots:
                    overflow = True            # would use the sentinel: retry, more slack
                    break
                new[p] = k
                pos = p + 1
                count += 1
            if overflow:
                free(new)
                slack *= 2
                continue
            if self._owner is None:
                free(self._slots)
            self._owner = None
            self._slots = new
            self._cap = cap
            self._nslots = nslots
            self._count = count
            self._has_zero = has_zero
            return 0

    cdef int _reserve(self, size_t total) except -1:
        if <double>total > <double>self._cap * MAX_LOAD:
            self._rebuild(_cap_for(total, GROW_LOAD), NULL, 0, False)
        return 0

    cdef inline void _permuted(self, const unsigned char* key, uint64_t* hi,
                               uint64_t* lo) noexcept:
        hi[0] = qrv_load_be64(key)
        lo[0] = qrv_load_be64(key + 8)
        qrv_perm(self._key, hi, lo)

    # ---- Python level ------------------------------------------------------------------

    def contains(self, key):
        cdef bytes k = _as_key(key)
        return self.contains_ptr(_ptr(k))

    def __contains__(self, key):
        cdef bytes k = _as_key(key)
        return self.contains_ptr(_ptr(k))

    def contains_any(self, a, b, c):
        """True when any of three keys is present (the revocation check in one call)."""
        cdef bytes ka = _as_key(a)
        cdef bytes kb = _as_key(b)
        cdef bytes kc = _as_key(c)
        return self.contains_ptr(_ptr(ka)) or self.contains_ptr(_ptr(kb)) or \
            self.contains_ptr(_ptr(kc))

    def add(self, key):
        cdef bytes k = _as_key(key)
        cdef uint64_t hi, lo
        self._check_writable()
        self._permuted(_ptr(k), &hi, &lo)
        return self._insert(hi, lo) == 1

    def discard(self, key):
        cdef bytes k = _as_key(key)
        cdef uint64_t hi, lo
        self._check_writable()
        self._permuted(_ptr(k), &hi, &lo)
        cdef bint removed = self._remove(hi, lo)
        self._maybe_shrink()
        return removed

    def add_packed(self, buffer):
        cdef _Buffer buf = _Buffer(buffer)
        cdef size_t before = self._count + self._has_zero
        self._check_writable()
        _add_packed(self, buf)
        return self._count + self._has_zero - before

    def discard_packed(self, buffer):
        cdef _Buffer buf = _Buffer(buffer)
        cdef size_t before = self._count + self._has_zero
        self._check_writable()
        _discard_packed(self, buf)
        return before - self._count - self._has_zero

    cdef int _maybe_shrink(self) except -1:
        if self._cap > 1024 and <double>self._count < <double>self._cap * MIN_LOAD:
            self._rebuild(_cap_for(self._count, GROW_LOAD), NULL, 0, False)
        return 0

    def missing_packed(self, buffer):
        """The keys of a packed buffer that are not in this set, packed, in input order."""
        cdef _Buffer buf = _Buffer(buffer)
        cdef bytearray out = bytearray(buf.n * KEY_SIZE)
        cdef unsigned char* w = out
        cdef size_t i, m = 0
        cdef const unsigned char* p
        for i in range(buf.n):
            p = buf.ptr + i * KEY_SIZE
            if not self.contains_ptr(p):
                memcpy(w + m * KEY_SIZE, p, KEY_SIZE)
                m += 1
        return bytes(out[:m * KEY_SIZE])

    def __len__(self):
        if self._over_add is not None:
            return self._merged
        return self._count + self._has_zero

    def __bool__(self):
        if self._over_add is not None:
            return self._merged > 0
        return self._count > 0 or self._has_zero

    @property
    def layered(self):
        """True for a layered view (layered_view)."""
        return self._over_add is not None

    def layers(self):
        """(table, added, removed) of a layered view: the read-only table it lies over
        and the plain sets of keys added and removed; None for any other set."""
        if self._over_add is None:
            return None
        return self._owner, self._over_add, self._over_del

    cdef int _check_plain(self, str what) except -1:
        if self._over_add is not None:
            raise TypeError(f"{what}: a layered HashSet has no single table (use its layers)")
        return 0

    def to_packed(self):
        """All keys in ascending byte order (the permutation undone, then sorted)."""
        if self._over_add is not None:
            return _merge_layers(self._table_packed(), self._over_add._table_packed(),
                                 self._over_del._table_packed())
        return self._table_packed()

    def _table_packed(self):
        cdef size_t n = self._count + self._has_zero
        cdef hs_slot* keys = <hs_slot*>malloc(n * sizeof(hs_slot) if n else 1)
        cdef size_t i, m = 0
        cdef bytes out
        cdef unsigned char* w
        if keys == NULL:
            raise MemoryError()
        if self._has_zero:
            keys[0].hi = 0
            keys[0].lo = 0
            qrv_unperm(self._key, &keys[0].hi, &keys[0].lo)
            m = 1
        for i in range(self._nslots):
            if not _is_empty(&self._slots[i]) and m < n:
                keys[m] = self._slots[i]
                qrv_unperm(self._key, &keys[m].hi, &keys[m].lo)
                m += 1
        keys = _sort_slots(keys, m)
        try:
            out = PyBytes_FromStringAndSize(NULL, m * KEY_SIZE)
            w = <unsigned char*>PyBytes_AS_STRING(out)
            for i in range(m):
                qrv_store_be64(w + i * KEY_SIZE, keys[i].hi)
                qrv_store_be64(w + i * KEY_SIZE + 8, keys[i].lo)
        finally:
            free(keys)
        return out

    def __iter__(self):
        data = self.to_packed()
        return (data[i:i + KEY_SIZE] for i in range(0, len(data), KEY_SIZE))

    def copy(self):
        """An independent, writable copy (same round keys; one memcpy of the table)."""
        cdef HashSet other = HashSet.__new__(HashSet)
        cdef hs_slot* table = <hs_slot*>malloc(self._nslots * sizeof(hs_slot))
        if table == NULL:
            raise MemoryError()
        if self._readonly:          # a mapped table cannot change: copy without the GIL
            with nogil:
                memcpy(table, self._slots, self._nslots * sizeof(hs_slot))
        else:
            memcpy(table, self._slots, self._nslots * sizeof(hs_slot))
        free(other._slots)
        other._slots = table
        _same_shape(other, self)
        if self._over_add is not None:   # the merged set: table minus removed plus added
            _discard_packed(other, _Buffer(self._over_del._table_packed()))
            _add_packed(other, _Buffer(self._over_add._table_packed()))
        return other

    def __copy__(self):
        return self.copy()

    @property
    def nbytes(self):
        """Bytes of the table (malloc'd, or mapped for a view; object header not included;
        a layered view adds its overlays' tables)."""
        cdef size_t n = self._nslots * sizeof(hs_slot)
        if self._over_add is not None:
            n += self._over_add._nslots * sizeof(hs_slot) + self._over_del._nslots * sizeof(hs_slot)
        return n

    @property
    def capacity(self):
        return self._cap

    @property
    def readonly(self):
        return bool(self._readonly)

    def probe_stats(self):
        """(longest, mean) distance of a stored value from its home slot: what a lookup
        of a present key walks past. A linear pass over the table."""
        cdef size_t i, d, longest = 0
        cdef double total = 0
        self._check_plain("probe_stats")
        for i in range(self._nslots):
            if not _is_empty(&self._slots[i]):
                d = i - qrv_home(self._slots[i].hi, self._cap)
                total += d
                if d > longest:
                    longest = d
        return longest, (total / self._count if self._count else 0.0)

    def table_info(self):
        """What `table_view` needs besides the table bytes: a dict of cap, nslots, count,
        has_zero and the 32-byte round keys."""
        cdef bytearray seed = bytearray(32)
        cdef int i
        self._check_plain("table_info")
        for i in range(4):
            qrv_store_be64(<unsigned char*>seed + 8 * i, self._key[i])
        return {"cap": self._cap, "nslots": self._nslots, "count": self._count,
                "has_zero": bool(self._has_zero), "seed": bytes(seed)}

    def write_table(self, fileobj, size_t block=8 << 20):
        """Write the slot array (native byte order, 16 bytes a slot) to `fileobj` in
        blocks; returns the number of bytes written."""
        cdef size_t total = self._nslots * sizeof(hs_slot)
        cdef size_t off = 0, step
        cdef const char* base = <const char*>self._slots
        self._check_plain("write_table")
        while off < total:
            step = total - off if total - off < block else block
            fileobj.write(PyBytes_FromStringAndSize(base + off, step))
            off += step
        return total

    def __eq__(self, other):
        if not isinstance(other, HashSet):
            return NotImplemented
        return len(self) == len(other) and self.to_packed() == other.to_packed()

    __hash__ = None

    def __repr__(self):
        if self._over_add is not None:
            return (f"HashSet(len={len(self)}, capacity={self._cap}, "
                    f"added={len(self._over_add)}, removed={len(self._over_del)})")
        return f"HashSet(len={len(self)}, capacity={self._cap})"

    def __reduce__(self):
        return (HashSet, (self.to_packed(),))


cdef unsigned char _touched = 0  # prefault reads end here (so they are not optimised away)


def table_view(buffer, size_t cap, size_t count, bint has_zero, bytes seed,
               bint check_count=True):
    """A read-only HashSet over a slot table written by `write_table` (for example a
    slice of a mapped snapshot file), built with round keys `seed`. The buffer stays
    referenced by the set. Checks the shape (length, alignment, the closing empty slot:
    a lookup stops there, so it cannot read past the end) and, with `check_count`, the
    count of full slots, reading the whole table; without it, only one byte of every
    4096 is read (the pages are faulted in here, not by the first lookups) and `count`
    is taken as given. Both loops run with the GIL released."""
    global _touched
    cdef _Buffer buf = _Buffer(buffer)
    cdef HashSet s
    cdef const hs_slot* slots = <const hs_slot*>buf.ptr
    cdef const unsigned char* raw = buf.ptr
    cdef size_t nslots = buf.n, i, full = 0, nbytes
    cdef unsigned char acc = 0
    cdef int j
    if len(seed) != 32:
        raise ValueError("table_view: seed must be 32 bytes")
    if (<size_t>buf.ptr) % 8:
        raise ValueError("table_view: table is not 8-byte aligned")
    if cap < 1 or nslots < cap + 1 or not _is_empty(&slots[nslots - 1]):
        raise ValueError("table_view: table shape does not match its header")
    if check_count:
        with nogil:
            for i in range(nslots):
                if not _is_empty(&slots[i]):
                    full += 1
        if full != count:
            raise ValueError("table_view: entry count does not match its header")
    else:
        nbytes = nslots * sizeof(hs_slot)
        with nogil:
            i = 0
            while i < nbytes:
                acc ^= raw[i]
                i += 4096
            acc ^= raw[nbytes - 1]
        _touched = acc
    s = HashSet.__new__(HashSet)
    free(s._slots)
    s._slots = <hs_slot*>buf.ptr
    s._owner = buf
    s._readonly = True
    s._cap = cap
    s._nslots = nslots
    s._count = count
    s._has_zero = has_zero
    for j in range(4):
        s._key[j] = qrv_load_be64(<const unsigned char*>PyBytes_AS_STRING(seed) + 8 * j)
    return s


cdef inline bint _table_has(const hs_slot* slots, size_t cap, bint has_zero,
                            const uint64_t* k, const unsigned char* key) noexcept nogil:
    """Membership of a raw key in a table (slots, cap, zero flag, round keys `k`)."""
    cdef uint64_t hi = qrv_load_be64(key)
    cdef uint64_t lo = qrv_load_be64(key + 8)
    cdef const hs_slot* s
    qrv_perm(k, &hi, &lo)
    if hi == 0 and lo == 0:
        return has_zero
    s = slots + _walk(slots, cap, hi, lo)
    return s.hi == hi and s.lo == lo


cdef inline void _same_shape(HashSet dst, HashSet src) noexcept:
    """dst takes src's table shape, count and round keys (not its slots or owner)."""
    dst._cap = src._cap
    dst._nslots = src._nslots
    dst._count = src._count
    dst._has_zero = src._has_zero
    memcpy(dst._key, src._key, sizeof(dst._key))


LAYER_MAX = 1 << 22  # keys per overlay side a layered view accepts (callers cap lower)


def layered_view(HashSet table, added, removed, count=None):
    """A read-only HashSet answering for (table - removed) | added: `table` a read-only
    view (table_view) and `added` / `removed` packed 16-byte keys (any order). Lookups
    (contains_ptr, so also the engine's) check the added keys, then the table and the
    removed keys, at C level. len() is the merged set's size, counted here (one lookup
    per overlay key, with the GIL released); ValueError if `count` is given and differs,
    or if an overlay holds more than LAYER_MAX keys. Iteration, to_packed() and copy()
    give the merged set (copy(): writable, a plain set)."""
    cdef HashSet add_set, del_set, s
    cdef _Buffer a = _Buffer(added)
    cdef _Buffer d = _Buffer(removed)
    cdef size_t merged, i, n_a, n_d
    cdef const unsigned char* p
    cdef const hs_slot* tslots
    cdef size_t tcap
    cdef bint tzero
    cdef uint64_t tkey[4]
    cdef const hs_slot* dslots
    cdef size_t dcap
    cdef bint dzero
    cdef uint64_t dkey[4]
    if not table._readonly or table._over_add is not None:
        raise TypeError("layered_view: the table must be a plain read-only view (table_view)")
    if a.n > LAYER_MAX or d.n > LAYER_MAX:
        raise ValueError("layered_view: overlay too large")
    add_set = HashSet(added)
    del_set = HashSet(removed)
    tslots = table._slots
    tcap = table._cap
    tzero = table._has_zero
    memcpy(tkey, table._key, sizeof(tkey))
    merged = table._count + table._has_zero
    n_a = a.n
    n_d = d.n
    dslots, dcap, dzero = del_set._slots, del_set._cap, del_set._has_zero
    memcpy(dkey, del_set._key, sizeof(dkey))
    with nogil:
        # |(table - removed) | added| = |table| - |removed & table|
        #                               + |added - (table - removed)|
        for i in range(n_d):
            if _table_has(tslots, tcap, tzero, tkey, d.ptr + i * KEY_SIZE):
                merged -= 1
        for i in range(n_a):
            p = a.ptr + i * KEY_SIZE
            if (not _table_has(tslots, tcap, tzero, tkey, p)
                    or _table_has(dslots, dcap, dzero, dkey, p)):
                merged += 1
    # (duplicates inside `added` or `removed` are counted once: the sets are unique)
    if len(add_set) != n_a or len(del_set) != n_d:
        raise ValueError("layered_view: an overlay holds a key twice")
    if count is not None and merged != <size_t>count:
        raise ValueError("layered_view: merged count does not match its header")
    s = HashSet.__new__(HashSet)
    free(s._slots)
    s._slots = table._slots
    s._owner = table            # keeps the table (and its buffer) alive
    s._readonly = True
    _same_shape(s, table)
    s._over_add = add_set
    s._over_del = del_set
    s._merged = merged
    return s


def _merge_layers(base, add, rem):
    """(base - rem) | add over packed ascending unique keys (two sorted merges)."""
    return union_sorted(difference_sorted(base, rem), add)


cdef int _build_fresh(HashSet s, _Buffer buf) except -1:
    """Fill an empty set from packed keys with the GIL released for the whole build
    (sorting and laying out the table): the set is not shared yet, so other threads,
    such as a server's request handlers, keep running meanwhile."""
    cdef size_t n = buf.n
    cdef size_t cap, nslots = 0, count = 0
    cdef bint has_zero = False
    cdef hs_slot* keys
    cdef hs_slot* table = NULL
    cdef int rc = -1
    if n == 0:
        return 0
    cap = _cap_for(n, BULK_LOAD if n > 64 else GROW_LOAD)
    with nogil:
        keys = _sorted_copy_c(buf.ptr, n, s._key)
        if keys != NULL:
            rc = _fresh_table_c(keys, n, cap, &table, &nslots, &count, &has_zero)
            free(keys)
    if rc != 0:
        raise MemoryError()
    free(s._slots)
    s._slots = table
    s._cap = cap
    s._nslots = nslots
    s._count = count
    s._has_zero = has_zero
    return 0


cdef int _add_packed(HashSet s, _Buffer buf) except -1:
    cdef size_t n = buf.n
    cdef size_t i
    cdef hs_slot* sorted_keys
    cdef size_t total
    cdef uint64_t hi, lo
    if n == 0:
        return 0
    if n * 8 >= s._count:
        # Large relative to the set: one sequential merge into a fresh table.
        sorted_keys = _sorted_copy(buf.ptr, n, s._key)
        try:
            total = s._count + n
            s._rebuild(_cap_for(total, BULK_LOAD if total > 64 else GROW_LOAD),
                       sorted_keys, n, False)
        finally:
            free(sorted_keys)
        return 0
    s._reserve(s._count + n)
    for i in range(n):
        s._permuted(buf.ptr + i * KEY_SIZE, &hi, &lo)
        s._insert(hi, lo)
    return 0


cdef int _discard_packed(HashSet s, _Buffer buf) except -1:
    cdef size_t n = buf.n
    cdef size_t i
    cdef hs_slot* sorted_keys
    cdef uint64_t hi, lo
    if n == 0:
        return 0
    if n * 8 >= s._count:
        sorted_keys = _sorted_copy(buf.ptr, n, s._key)
        try:
            s._rebuild(s._cap, sorted_keys, n, True)
        finally:
            free(sorted_keys)
    else:
        for i in range(n):
            s._permuted(buf.ptr + i * KEY_SIZE, &hi, &lo)
            s._remove(hi, lo)
    s._maybe_shrink()
    return 0


cdef bint hashset_contains(HashSet s, const unsigned char* key) noexcept:
    return s.contains_ptr(key)


def apply_changes(ops):
    """Apply [(HashSet, add_buffer | None, discard_buffer | None), ...] as one step.

    Every buffer is checked first (a bad one raises ValueError with nothing changed); then
    all discards and adds run without releasing the GIL, so other Python threads see all
    of the changes or none of them.
    """
    cdef list checked = []
    cdef HashSet s
    for op in ops:
        target, add, discard = op
        if not isinstance(target, HashSet):
            raise TypeError("apply_changes: targets must be HashSet objects")
        (<HashSet>target)._check_writable()
        checked.append((target,
                        None if add is None else _Buffer(add),
                        None if discard is None else _Buffer(discard)))
    for target, add, discard in checked:
        s = <HashSet>target
        if discard is not None:
            _discard_packed(s, <_Buffer>discard)
        if add is not None:
            _add_packed(s, <_Buffer>add)


cdef int _check_sorted(_Buffer b, str name) except -1:
    cdef size_t i
    for i in range(1, b.n):
        if _cmp_keys(b.ptr + (i - 1) * KEY_SIZE, b.ptr + i * KEY_SIZE) >= 0:
            raise ValueError(f"{name}: packed keys must be sorted ascending and unique")
    return 0


cdef inline int _cmp_keys(const unsigned char* x, const unsigned char* y) noexcept:
    return memcmp(x, y, KEY_SIZE)


def union_sorted(a, b):
    """Union of two packed buffers of ascending unique keys, as one (ValueError if unsorted).

    Sorted merges suit one bucket of a sorted list (keys sharing a prefix) without the
    cost of building a table."""
    cdef _Buffer x = _Buffer(a)
    cdef _Buffer y = _Buffer(b)
    _check_sorted(x, "union_sorted")
    _check_sorted(y, "union_sorted")
    cdef bytearray out = bytearray((x.n + y.n) * KEY_SIZE)
    cdef unsigned char* w = out
    cdef size_t i = 0, j = 0, m = 0
    cdef int c
    while i < x.n or j < y.n:
        if i == x.n:
            c = 1
        elif j == y.n:
            c = -1
        else:
            c = _cmp_keys(x.ptr + i * KEY_SIZE, y.ptr + j * KEY_SIZE)
        if c <= 0:
            memcpy(w + m * KEY_SIZE, x.ptr + i * KEY_SIZE, KEY_SIZE)
            i += 1
            if c == 0:
                j += 1
        else:
            memcpy(w + m * KEY_SIZE, y.ptr + j * KEY_SIZE, KEY_SIZE)
            j += 1
        m += 1
    return bytes(out[:m * KEY_SIZE])


def difference_sorted(a, b):
    """Keys of `a` not in `b`, both packed ascending and unique (ValueError if unsorted)."""
    cdef _Buffer x = _Buffer(a)
    cdef _Buffer y = _Buffer(b)
    _check_sorted(x, "difference_sorted")
    _check_sorted(y, "difference_sorted")
    cdef bytearray out = bytearray(x.n * KEY_SIZE)
    cdef unsigned char* w = out
    cdef size_t i = 0, j = 0, m = 0
    cdef int c
    while i < x.n:
        c = -1 if j == y.n else _cmp_keys(x.ptr + i * KEY_SIZE, y.ptr + j * KEY_SIZE)
        if c < 0:
            memcpy(w + m * KEY_SIZE, x.ptr + i * KEY_SIZE, KEY_SIZE)
            m += 1
            i += 1
        elif c == 0:
            i += 1
            j += 1
        else:
            j += 1
    return bytes(out[:m * KEY_SIZE])
