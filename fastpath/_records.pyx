# cython: language_level=3
"""RecordTable: the register's records (CONTRACT section 4), immutable and buffer-backed.

One contiguous little-endian byte layout, usable straight from `bytes` or a read-only
`mmap` (no per-record Python objects, nothing copied on load):

    header  64 bytes  magic "QRVREC2\\0", count, bucket bits, scan width (the largest
                      bucket), section offsets, total size
    dir     (2**bits + 1) x u32   first index entry of each bucket (a prefix sum)
    index   count x 20 bytes      key (16) + u32 offset of the record in 4-byte units
    data    the records, each 4-byte aligned:
            u8 flags (bits 0-1 type, bit 2 revoked, bit 3 has ck), u32 valid_from,
            u32 valid_until (epoch seconds), [16 bytes ck], u16 year u8 month u8 day of
            birth (0 = absent), then name, name_latin, document: each u8 length + UTF-8
            in which a run of 3..255 '*' is stored as 0xFF <count> (the register masks
            names and documents with asterisks; 0xFF never occurs in UTF-8).

Keys: a 16-digit unrz is 8 zero bytes + its value as big-endian u64; a UUID is its 16
bytes (a UUID whose first 8 bytes are zero is refused: that space belongs to unrz).
A key's bucket is the top `bits` bits of a 64-bit mix of the key; buckets hold about 4
entries. A lookup compares a fixed window of `scan` entries (the largest bucket's size)
from its bucket's start, and reads one record (the match, or the window's first on a
miss): the same work for a present and an absent key, a few adjacent cache lines.

Size: about 20 (index) + 0.5 (dir) + ~60-70 (record) bytes per record with masked names.

Overlay (a machine keeps a large base table and layers the few records changed since
over it, so a changed record does not rewrite the base): `RecordTable(base, overlay=t,
count=n)` looks a key up in the base AND in the overlay `t` (a table of the same format),
always both, and takes the overlay's record, selected by a mask, when the overlay's index
holds the key. A removal is a tombstone in the overlay: a record whose flags have bit 4
(TOMBSTONE, 0x10) set, with a dummy ck and empty fields (32 bytes; `from_packed`'s
`tombstones`), which reads as a miss; the same bit in a base record reads as a miss too.
`len()` is the merged view's count (`count`, or computed from the overlay's keys when
not given); `records()` and `packed()` give the base's records the overlay does not
hold, then the overlay's records (tombstones left out). A plain table's `packed()` gives
its own entries, tombstones included, so an overlay can be read back and extended.
"""

from cpython.buffer cimport PyObject_GetBuffer, PyBuffer_Release, PyBUF_SIMPLE
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from libc.stdint cimport int64_t, uint8_t, uint32_t, uint64_t, uintptr_t
from libc.stdlib cimport free, malloc, qsort, realloc
from libc.string cimport memcmp, memcpy, memset

cdef extern from *:
    """
    #include <stdint.h>
    #include <string.h>
    static inline uint32_t qrr_le32(const unsigned char *p) {
        return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
               ((uint32_t)p[3] << 24);
    }
    static inline uint64_t qrr_le64(const unsigned char *p) {
        return (uint64_t)qrr_le32(p) | ((uint64_t)qrr_le32(p + 4) << 32);
    }
    static inline void qrr_put32(unsigned char *p, uint32_t v) {
        p[0] = v & 0xff; p[1] = (v >> 8) & 0xff; p[2] = (v >> 16) & 0xff; p[3] = v >> 24;
    }
    static inline void qrr_put64(unsigned char *p, uint64_t v) {
        qrr_put32(p, (uint32_t)v); qrr_put32(p + 4, (uint32_t)(v >> 32));
    }
    static inline uint64_t qrr_raw64(const unsigned char *p) {
        uint64_t v; memcpy(&v, p, 8); return v;
    }
    static inline uint64_t qrr_mix(const unsigned char *key) {
        uint64_t h = qrr_raw64(key) * 0x9E3779B97F4A7C15ULL ^ qrr_raw64(key + 8);
        h ^= h >> 33; h *= 0xff51afd7ed558ccdULL;
        h ^= h >> 33; h *= 0xc4ceb9fe1a85ec53ULL;
        h ^= h >> 33;
        return h;
    }
    /* 1 when the 16 bytes are equal; no data-dependent branch. */
    static inline int qrr_eq16(const unsigned char *a, const unsigned char *b) {
        uint64_t d = (qrr_raw64(a) ^ qrr_raw64(b)) | (qrr_raw64(a + 8) ^ qrr_raw64(b + 8));
        return (int)(1 & ((d - 1) >> 63) & ~(d >> 63));
    }
    """
    uint32_t qrr_le32(const unsigned char* p) noexcept nogil
    uint64_t qrr_le64(const unsigned char* p) noexcept nogil
    void qrr_put32(unsigned char* p, uint32_t v) noexcept nogil
    void qrr_put64(unsigned char* p, uint64_t v) noexcept nogil
    uint64_t qrr_mix(const unsigned char* key) noexcept nogil
    int qrr_eq16(const unsigned char* a, const unsigned char* b) noexcept nogil

cdef enum:
    HEADER = 64
    ENTRY = 20
    KEY = 16
    MAX_STR = 255
    MAX_BITS = 28
    STAR_ESC = 0xFF
    TOMB = 0x10
    TOMB_SIZE = 32

cdef bytes _MAGIC = b"QRVREC2\x00"
MAGIC = _MAGIC
TYPE_NAMES = ("vaccination", "recovery", "test", "temporary")
MAX_TIME = 0xFFFFFFFF
TOMBSTONE = TOMB  # the flag of an overlay's tombstone record (first byte of a packed record)

# A record used on a miss, so that a miss does the same reads and the same ck compare as
# a hit. Flags: vaccination, has ck; the ck is not all zero and never compared equal on
# purpose (the caller ignores its result when `found` is 0).
cdef unsigned char DUMMY[64]
memset(DUMMY, 0, 64)
DUMMY[0] = 8
for _i in range(16):
    DUMMY[9 + _i] = 0xA5


cdef int _hexval(unsigned char c) noexcept nogil:
    if 48 <= c <= 57:
        return c - 48
    c |= 0x20
    if 97 <= c <= 102:
        return c - 87
    return -1


cdef int link_key(const unsigned char* ident, size_t n, unsigned char* key) noexcept:
    """The 16-byte key of an identifier: 1 for a 16-digit unrz, 2 for a UUID
    (8-4-4-4-12 hex, any case), 0 when it is neither (or a UUID in unrz space)."""
    cdef uint64_t v = 0
    cdef size_t i, k = 0
    cdef int hi, lo
    if n == 16:
        for i in range(16):
            if not 48 <= ident[i] <= 57:
                return 0
            v = v * 10 + (ident[i] - 48)
        memset(key, 0, 8)
        for i in range(8):
            key[8 + i] = (v >> (56 - 8 * i)) & 0xFF
        return 1
    if n != 36:
        return 0
    i = 0
    while i < 36:
        if i == 8 or i == 13 or i == 18 or i == 23:
            if ident[i] != 45:  # '-'
                return 0
            i += 1
            continue
        hi = _hexval(ident[i])
        lo = _hexval(ident[i + 1]) if i + 1 < 36 else -1
        if hi < 0 or lo < 0 or i + 1 in (8, 13, 18, 23):
            return 0
        key[k] = <unsigned char>(hi * 16 + lo)
        k += 1
        i += 2
    if k != 16:
        return 0
    for i in range(8):
        if key[i]:
            return 2
    return 0


def record_key(str ident):
    """The 16-byte table key of an unrz or UUID (ValueError when it is neither)."""
    cdef bytes raw = ident.encode("ascii", "replace")
    cdef unsigned char key[16]
    if link_key(<const unsigned char*>PyBytes_AS_STRING(raw), len(raw), key) == 0:
        raise ValueError("not a 16-digit unrz or a UUID")
    return PyBytes_FromStringAndSize(<char*>key, 16)


cdef inline const unsigned char* _tab_find(const rt_tab* t, const unsigned char* key,
                                           int* found_out,
                                           const unsigned char** end_out) noexcept nogil:
    """One table's lookup: the record of `key` and *found_out 1 when the index holds the
    key (a tombstone included); on a miss the window's first record (a decoy, so that
    both paths read the same kinds of memory), or DUMMY for an empty or damaged table.
    *end_out is the end of the data region the record lies in."""
    cdef uint64_t b
    cdef uint32_t start, end, j, unit = 0, decoy, mask
    cdef int found = 0, eq
    cdef const unsigned char* e
    cdef const unsigned char* rec = DUMMY
    cdef size_t off, need
    end_out[0] = DUMMY + 64
    if t.count:
        b = qrr_mix(key) >> (64 - t.bits)
        start = qrr_le32(t.dir + 4 * b)
        # A fixed window of `scan` entries (clamped into the index), whatever matches:
        # keys are unique, so a match anywhere in it is the key's entry.
        if <size_t>start + t.scan > t.count:
            start = <uint32_t>(t.count - t.scan) if t.count > t.scan else 0
        end = start + t.scan
        if end > t.count:
            end = <uint32_t>t.count
        j = start
        while j < end:
            e = t.index + <size_t>j * ENTRY
            eq = qrr_eq16(e, key)
            found |= eq
            unit |= <uint32_t>(-eq) & qrr_le32(e + KEY)
            j += 1
        decoy = qrr_le32(t.index + <size_t>start * ENTRY + KEY)
        mask = <uint32_t>(-found)
        unit = (unit & mask) | (decoy & ~mask)
        off = <size_t>unit * 4
        if off + 9 <= t.data_len:
            rec = t.data + off
            need = off + 9 + (16 if rec[0] & 8 else 0) + 4
            if need > t.data_len:  # damaged table: fail closed as a miss
                rec = DUMMY
                found = 0
            else:
                end_out[0] = t.data + t.data_len
        else:
            found = 0
    found_out[0] = found
    return rec


cdef void rt_find(RecordTable t, const unsigned char* key, rec_view* out) noexcept:
    cdef int found = 0, fo = 0, flags
    cdef const unsigned char* rec = DUMMY
    cdef const unsigned char* end = DUMMY + 64
    cdef const unsigned char* orec
    cdef const unsigned char* oend
    cdef uintptr_t m
    if t is not None:
        rec = _tab_find(&t._t, key, &found, &end)
        if t._layered:
            # Both lookups, always; the overlay's record wins when its index holds the
            # key, selected by a mask (no branch on the data).
            orec = _tab_find(&t._o, key, &fo, &oend)
            m = (<uintptr_t>0) - <uintptr_t>fo
            rec = <const unsigned char*>((<uintptr_t>orec & m) | (<uintptr_t>rec & ~m))
            end = <const unsigned char*>((<uintptr_t>oend & m) | (<uintptr_t>end & ~m))
            found |= fo
    flags = rec[0]
    found &= 1 ^ ((flags >> 4) & 1)  # a tombstone reads as a miss
    out.found = found
    out.type_index = flags & 3
    out.revoked = (flags >> 2) & 1
    out.has_ck = (flags >> 3) & 1
    out.valid_from = qrr_le32(rec + 1)
    out.valid_until = qrr_le32(rec + 5)
    out.ck = rec + 9 if out.has_ck else DUMMY + 9
    out.strings = rec + 9 + (16 if out.has_ck else 0)
    if rec == DUMMY or not found:
        out.strings = DUMMY + 25
        out.strings_len = 64 - 25
    else:
        out.strings_len = <size_t>(end - out.strings)


cdef size_t _rec_size(const unsigned char* p, size_t avail) noexcept nogil:
    """The size of the packed record at `p` (4-byte aligned) from its own fields, or 0
    when it does not fit in `avail` bytes."""
    cdef size_t pos
    cdef int i
    if avail < 9:
        return 0
    pos = 9 + (16 if p[0] & 8 else 0) + 4
    for i in range(3):
        if pos >= avail:
            return 0
        pos += 1 + p[pos]
    pos = (pos + 3) & ~(<size_t>3)
    return pos if pos <= avail else 0


cdef object _unpack_str(const unsigned char* p, size_t n):
    """Expand star runs of one stored string into str (None when damaged)."""
    cdef unsigned char buf[2 * MAX_STR + 256]
    cdef size_t i = 0, k = 0, r
    while i < n:
        if p[i] == STAR_ESC:
            if i + 1 >= n:
                return None
            r = p[i + 1]
            if k + r > sizeof(buf):
                return None
            memset(buf + k, 42, r)
            k += r
            i += 2
        else:
            if k >= sizeof(buf):
                return None
            buf[k] = p[i]
            k += 1
            i += 1
    try:
        return (<bytes>PyBytes_FromStringAndSize(<char*>buf, k)).decode("utf-8")
    except UnicodeDecodeError:
        return None


cdef tuple rt_strings(const rec_view* v):
    """(name, name_latin, dob, document) of a found record, or None when damaged."""
    cdef const unsigned char* p = v.strings
    cdef size_t avail = v.strings_len, pos = 4, n
    cdef int year, month, day, i
    cdef list out = []
    cdef object s
    if avail < 4:
        return None
    year = p[0] | (p[1] << 8)
    month = p[2]
    day = p[3]
    if year == 0:
        dob = ""
    elif month == 0:
        dob = f"{year:04d}"
    elif day == 0:
        dob = f"{year:04d}-{month:02d}"
    else:
        dob = f"{year:04d}-{month:02d}-{day:02d}"
    for i in range(3):
        if pos >= avail:
            return None
        n = p[pos]
        if pos + 1 + n > avail:
            return None
        s = _unpack_str(p + pos + 1, n)
        if s is None:
            return None
        out.append(s)
        pos += 1 + n
    return (out[0], out[1], dob, out[2])


# -- building ---------------------------------------------------------------------------

cdef struct _entry:
    unsigned char key[16]
    uint32_t unit
    uint32_t bucket


cdef int _cmp_entry(const void* a, const void* b) noexcept nogil:
    return memcmp((<const _entry*>a).key, (<const _entry*>b).key, 16)


cdef bytes _pack_str(str s, str field):
    cdef bytes raw = s.encode("utf-8")
    cdef const unsigned char* p = <const unsigned char*>PyBytes_AS_STRING(raw)
    cdef size_t n = PyBytes_GET_SIZE(raw), i = 0, r, k = 0
    cdef unsigned char buf[MAX_STR + 2]
    while i < n:
        if k + 2 > MAX_STR:
            raise ValueError(f"{field} is too long")
        if p[i] == 42:
            r = 1
            while i + r < n and p[i + r] == 42 and r < 255:
                r += 1
            if r >= 3:
                buf[k] = STAR_ESC
                buf[k + 1] = <unsigned char>r
                k += 2
                i += r
                continue
        buf[k] = p[i]
        k += 1
        i += 1
    return PyBytes_FromStringAndSize(<char*>buf, k)


cdef inline int _digits(const unsigned char* p, int n) noexcept:
    cdef int v = 0, i
    for i in range(n):
        if not 48 <= p[i] <= 57:
            return -1
        v = v * 10 + p[i] - 48
    return v


cdef int _pack_dob(str dob, unsigned char* out) except -1:
    """YYYY, YYYY-MM or YYYY-MM-DD (or empty) as u16 year, u8 month, u8 day."""
    cdef bytes raw
    cdef const unsigned char* p
    cdef Py_ssize_t n
    cdef int y = 0, m = 0, d = 0
    if dob:
        raw = dob.encode("utf-8")
        p = <const unsigned char*>PyBytes_AS_STRING(raw)
        n = PyBytes_GET_SIZE(raw)
        if n not in (4, 7, 10) or (n >= 7 and p[4] != 45) or (n == 10 and p[7] != 45):
            raise ValueError("dob must be YYYY, YYYY-MM or YYYY-MM-DD")
        y = _digits(p, 4)
        m = _digits(p + 5, 2) if n >= 7 else 0
        d = _digits(p + 8, 2) if n == 10 else 0
        if y < 1 or m < 0 or d < 0 or (n >= 7 and not 1 <= m <= 12) or (
                n == 10 and not 1 <= d <= 31):
            raise ValueError("dob is out of range")
    out[0] = y & 0xFF
    out[1] = (y >> 8) & 0xFF
    out[2] = m
    out[3] = d
    return 0


cdef class _Growable:
    cdef unsigned char* buf
    cdef size_t len, cap

    def __cinit__(self):
        self.buf = NULL
        self.len = 0
        self.cap = 0

    def __dealloc__(self):
        free(self.buf)

    cdef unsigned char* extend(self, size_t n) except NULL:
        cdef size_t cap = self.cap
        cdef unsigned char* nb
        if self.len + n > cap:
            cap = cap * 2 if cap else 1 << 16
            while cap < self.len + n:
                cap *= 2
            nb = <unsigned char*>realloc(self.buf, cap)
            if nb == NULL:
                raise MemoryError()
            self.buf = nb
            self.cap = cap
        nb = self.buf + self.len
        self.len += n
        return nb


cdef int _check_time(object value, str field) except -1:
    if type(value) is not int or not 0 <= value <= MAX_TIME:
        raise ValueError(f"{field} must be epoch seconds from 1970 to 2106")
    return 0


cdef dict _as_dict(str ident, rec_view* v):
    strings = rt_strings(v)
    if strings is None:
        raise ValueError("record table: damaged record")
    return {
        "id": ident,
        "ck": PyBytes_FromStringAndSize(<const char*>v.ck, 16).hex() if v.has_ck else None,
        "type": TYPE_NAMES[v.type_index],
        "status": "revoked" if v.revoked else "valid",
        "valid_from": v.valid_from,
        "valid_until": v.valid_until,
        "name": strings[0],
        "name_latin": strings[1],
        "dob": strings[2],
        "document": strings[3],
    }



cdef object _assemble(_Growable data, _Growable ents, size_t n):
    """The RecordTable of `n` entries (keys and data units in `ents`) over `data`:
    buckets by the key mix, each sorted by key; ValueError for a duplicate key."""
    cdef unsigned int bits
    cdef size_t nb, total, i, j, off, scan
    cdef uint32_t* counts
    cdef _entry* sorted_ents
    cdef _entry* ent
    cdef unsigned char* p
    if n > 0xFFFFFFFF:
        raise ValueError("record table: too many records")
    bits = 1
    while bits < MAX_BITS and ((<size_t>1) << bits) * 4 < n:
        bits += 1
    nb = (<size_t>1) << bits
    total = HEADER + 4 * (nb + 1) + ENTRY * n + data.len
    counts = <uint32_t*>malloc((nb + 1) * sizeof(uint32_t))
    sorted_ents = <_entry*>malloc(n * sizeof(_entry) if n else 1)
    if counts == NULL or sorted_ents == NULL:
        free(counts)
        free(sorted_ents)
        raise MemoryError()
    try:
        memset(counts, 0, (nb + 1) * sizeof(uint32_t))
        ent = <_entry*>ents.buf
        for i in range(n):
            ent[i].bucket = <uint32_t>(qrr_mix(ent[i].key) >> (64 - bits))
            counts[ent[i].bucket + 1] += 1
        for i in range(nb):
            counts[i + 1] += counts[i]
        for i in range(n):  # counting sort by bucket (counts[b] = next free slot)
            sorted_ents[counts[ent[i].bucket]] = ent[i]
            counts[ent[i].bucket] += 1
        # counts[b] is now the end of bucket b; sort each bucket by key for the
        # duplicate check (and a deterministic layout).
        off = 0
        scan = 1
        for i in range(nb):
            if counts[i] - off > scan:
                scan = counts[i] - off
            if counts[i] - off > 1:
                qsort(sorted_ents + off, counts[i] - off, sizeof(_entry), _cmp_entry)
                for j in range(off + 1, counts[i]):
                    if memcmp(sorted_ents[j - 1].key, sorted_ents[j].key, 16) == 0:
                        raise ValueError("two records have the same id")
            off = counts[i]
        if scan > 4096:
            raise ValueError("record table: too many ids share one bucket")
        out = PyBytes_FromStringAndSize(NULL, total)
        p = <unsigned char*>PyBytes_AS_STRING(out)
        memset(p, 0, HEADER)
        memcpy(p, <const char*>_MAGIC, 8)
        qrr_put64(p + 8, n)
        qrr_put32(p + 16, bits)
        qrr_put32(p + 20, scan if n else 0)
        qrr_put64(p + 24, HEADER)
        qrr_put64(p + 32, HEADER + 4 * (nb + 1))
        qrr_put64(p + 40, HEADER + 4 * (nb + 1) + ENTRY * n)
        qrr_put64(p + 48, data.len)
        qrr_put64(p + 56, total)
        p += HEADER
        qrr_put32(p, 0)
        for i in range(nb):
            qrr_put32(p + 4 * (i + 1), counts[i])
        p += 4 * (nb + 1)
        for i in range(n):
            memcpy(p, sorted_ents[i].key, 16)
            qrr_put32(p + 16, sorted_ents[i].unit)
            p += ENTRY
        if data.len:
            memcpy(p, data.buf, data.len)
    finally:
        free(counts)
        free(sorted_ents)
    return RecordTable(out)


cdef int _add_entry(_Growable data, _Growable ents, const unsigned char* key,
                    const unsigned char* packed, size_t size) except -1:
    cdef _entry* ent
    cdef size_t off = data.len
    if (off >> 2) > 0xFFFFFFFF:
        raise ValueError("record table: more than 16 GiB of records")
    memcpy(data.extend(size), packed, size)
    ent = <_entry*>ents.extend(sizeof(_entry))
    memcpy(ent.key, key, 16)
    ent.unit = <uint32_t>(off >> 2)
    return 0


cdef class RecordTable:
    """Immutable table of register records; see the module docstring and _records.pyi."""

    def __cinit__(self, *args, **kwargs):
        self._held = False
        self._owner = None
        self._layered = False
        self._over = None
        self._size = 0
        memset(&self._t, 0, sizeof(rt_tab))
        memset(&self._o, 0, sizeof(rt_tab))

    def __init__(self, buffer, overlay=None, count=None):
        cdef const unsigned char* h
        cdef uint64_t n, total, dir_off, index_off, data_off, data_len, nb, i
        cdef uint32_t prev, cur, scan
        cdef unsigned int bits
        cdef bint bad
        cdef RecordTable over
        PyObject_GetBuffer(buffer, &self._view, PyBUF_SIMPLE)
        self._held = True
        self._owner = buffer
        h = <const unsigned char*>self._view.buf
        if self._view.len < HEADER or memcmp(h, <const char*>_MAGIC, 8) != 0:
            raise ValueError("not a record table (bad header)")
        n = qrr_le64(h + 8)
        bits = qrr_le32(h + 16)
        scan = qrr_le32(h + 20)
        dir_off = qrr_le64(h + 24)
        index_off = qrr_le64(h + 32)
        data_off = qrr_le64(h + 40)
        data_len = qrr_le64(h + 48)
        total = qrr_le64(h + 56)
        if not 1 <= bits <= MAX_BITS or n > 0xFFFFFFFF or scan > 4096 or (
                n and scan == 0):
            raise ValueError("record table: bad bucket count or record count")
        nb = (<uint64_t>1) << bits
        if (dir_off != HEADER or index_off != dir_off + 4 * (nb + 1)
                or data_off != index_off + ENTRY * n or data_len > (<uint64_t>1 << 40)
                or total != data_off + data_len or total > <uint64_t>self._view.len):
            raise ValueError("record table: sections do not fit the buffer")
        self._base = h
        self._len = total
        self._t.count = n
        self._t.bits = bits
        self._t.scan = scan
        self._t.dir = h + dir_off
        self._t.index = h + index_off
        self._t.data = h + data_off
        self._t.data_len = data_len
        prev = 0
        bad = False
        with nogil:  # a worker maps a new table while its other threads answer requests
            for i in range(nb + 1):  # the directory must be a prefix sum ending at count
                cur = qrr_le32(self._t.dir + 4 * i)
                if cur < prev or cur > n or (i == 0 and cur != 0) or cur - prev > scan:
                    bad = True
                    break
                prev = cur
        if bad or prev != n:
            raise ValueError("record table: damaged bucket directory")
        self._size = n
        if overlay is None:
            if count is not None and count != n:
                raise ValueError("record table: count does not match")
            return
        if not isinstance(overlay, RecordTable):
            raise TypeError("overlay must be a RecordTable")
        over = <RecordTable>overlay
        if over._layered:
            raise ValueError("an overlay cannot have an overlay")
        self._over = over
        self._o = over._t
        self._layered = over._t.count > 0
        if count is None:
            with nogil:
                self._size = self._merged_count()
        else:
            if type(count) is not int or not (
                    0 <= count <= n + over._t.count and count + over._t.count >= n):
                raise ValueError("record table: count does not fit the overlay")
            self._size = count

    cdef size_t _merged_count(self) noexcept nogil:
        """Records the merged view holds: the base's, plus the overlay's records the base
        lacks, minus the base's records the overlay tombstones (the lookup's rules)."""
        cdef int64_t total = <int64_t>self._t.count
        cdef size_t j
        cdef int fo, fb
        cdef const unsigned char* e
        cdef const unsigned char* orec
        cdef const unsigned char* brec
        cdef const unsigned char* end
        if not self._layered:
            return self._t.count
        for j in range(self._o.count):
            e = self._o.index + j * ENTRY
            orec = _tab_find(&self._o, e, &fo, &end)
            if not fo:  # a damaged overlay record: the base answers for its key
                continue
            brec = _tab_find(&self._t, e, &fb, &end)
            fb &= 1 ^ ((brec[0] >> 4) & 1)
            total += (1 ^ ((orec[0] >> 4) & 1)) - fb
        return <size_t>total if total > 0 else 0

    def __dealloc__(self):
        if self._held:
            PyBuffer_Release(&self._view)

    def __len__(self):
        return self._size

    @property
    def nbytes(self):
        return self._len + (self._over._len if self._over is not None else 0)

    @property
    def overlay(self):
        """The overlay table (changed records and tombstones) or None."""
        return self._over

    @property
    def base_count(self):
        """Entries of this buffer's own index (for a plain table: len())."""
        return self._t.count

    def to_bytes(self):
        """The table's bytes (a layered table: a plain table of the merged view, built)."""
        if self._over is not None:
            return RecordTable.from_packed(self.packed()).to_bytes()
        if type(self._owner) is bytes and <size_t>len(self._owner) == self._len:
            return self._owner
        return PyBytes_FromStringAndSize(<const char*>self._base, self._len)

    def __contains__(self, ident):
        return self.get(ident) is not None

    def get(self, ident):
        """The record of an unrz or UUID as a dict of the contract's fields (ck as hex),
        or None. For tools and tests; the link path uses the C-level lookup."""
        cdef bytes raw
        cdef unsigned char key[16]
        cdef rec_view v
        if not isinstance(ident, str):
            raise TypeError("record ids are str")
        raw = (<str>ident).encode("ascii", "replace")
        if link_key(<const unsigned char*>PyBytes_AS_STRING(raw), len(raw), key) == 0:
            return None
        rt_find(self, key, &v)
        if not v.found:
            return None
        return _as_dict(ident, &v)

    def count_present(self, keys):
        """How many of the packed 16-byte keys are in the table: the C-level lookup
        over a buffer, for benchmarks and tests."""
        cdef const unsigned char[::1] view = keys
        cdef size_t i, n = view.shape[0] // 16, hits = 0
        cdef rec_view v
        if view.shape[0] % 16:
            raise ValueError("packed keys: length is not a multiple of 16")
        for i in range(n):
            rt_find(self, &view[i * 16], &v)
            hits += v.found
        return hits

    def packed_of(self, key):
        """The packed record of a 16-byte table key as the lookup finds it (None for a
        miss or a tombstone)."""
        cdef const unsigned char[::1] k = key
        cdef const unsigned char* rec
        cdef const unsigned char* end
        cdef int found = 0, fo = 0
        cdef size_t size
        if k.shape[0] != 16:
            raise ValueError("a table key is 16 bytes")
        rec = self._select(&k[0], &found, &end)
        if not found or rec[0] & TOMB:
            return None
        size = _rec_size(rec, <size_t>(end - rec))
        if size == 0:
            raise ValueError("record table: damaged record")
        return PyBytes_FromStringAndSize(<const char*>rec, size)

    cdef const unsigned char* _select(self, const unsigned char* key, int* found,
                                      const unsigned char** end) noexcept:
        """The record the lookup takes for `key` (overlay first), tombstones included."""
        cdef const unsigned char* rec
        cdef int fo = 0
        cdef const unsigned char* oend
        if self._layered:
            rec = _tab_find(&self._o, key, &fo, &oend)
            if fo:
                found[0] = 1
                end[0] = oend
                return rec
        return _tab_find(&self._t, key, found, end)

    def _merged(self):
        """(key, record pointer as int, data end as int) of the merged view, tombstones
        left out: the base's records the overlay does not hold, then the overlay's."""
        cdef size_t j
        cdef int f = 0
        cdef const unsigned char* e
        cdef const unsigned char* rec
        cdef const unsigned char* end
        for j in range(self._t.count):
            e = self._t.index + j * ENTRY
            if self._layered:
                _tab_find(&self._o, e, &f, &end)
                if f:
                    continue  # shadowed by the overlay
            rec = _tab_find(&self._t, e, &f, &end)
            if not f:
                raise ValueError("record table: damaged record")
            if rec[0] & TOMB and self._layered:
                continue
            yield (PyBytes_FromStringAndSize(<const char*>e, 16),
                   <uintptr_t>rec, <uintptr_t>end)
        if not self._layered:
            return
        for j in range(self._o.count):
            e = self._o.index + j * ENTRY
            rec = _tab_find(&self._o, e, &f, &end)
            if not f:
                raise ValueError("record table: damaged record")
            if rec[0] & TOMB:
                continue
            yield (PyBytes_FromStringAndSize(<const char*>e, 16),
                   <uintptr_t>rec, <uintptr_t>end)

    def packed(self):
        """(16-byte key, packed record bytes) of every record: a plain table's entries in
        index order (an overlay table's tombstones included: first byte & TOMBSTONE); a
        layered table's merged view (tombstones left out), base records first."""
        cdef const unsigned char* rec
        cdef size_t size
        for key, prec, pend in self._merged():
            rec = <const unsigned char*><uintptr_t>prec
            size = _rec_size(rec, <size_t>(<uintptr_t>pend - <uintptr_t>prec))
            if size == 0:
                raise ValueError("record table: damaged record")
            yield key, PyBytes_FromStringAndSize(<const char*>rec, size)

    def records(self):
        """Every record as a normalised tuple (the form `from_records` takes): a plain
        table's in index order, a layered table's base records not shadowed by the
        overlay, then the overlay's (tombstones left out): (key, ck or None, type index,
        revoked, valid_from, valid_until, name, name_latin, dob, document), `key` being
        the 16-byte table key."""
        cdef rec_view v
        cdef bytes key
        for key, prec, _ in self._merged():
            if (<const unsigned char*><uintptr_t>prec)[0] & TOMB:
                continue  # an overlay table's own tombstones are not records
            rt_find(self, <const unsigned char*>PyBytes_AS_STRING(key), &v)
            strings = rt_strings(&v)
            if not v.found or strings is None:
                raise ValueError("record table: damaged record")
            yield (key,
                   PyBytes_FromStringAndSize(<const char*>v.ck, 16) if v.has_ck else None,
                   v.type_index, bool(v.revoked), v.valid_from, v.valid_until,
                   strings[0], strings[1], strings[2], strings[3])

    @staticmethod
    def from_packed(entries, tombstones=b""):
        """Build a table from (16-byte key, packed record) pairs (the bytes `packed()`
        yields; checked for shape: ValueError naming the pair's position) and tombstone
        records for the packed 16-byte keys `tombstones` (an overlay's removals).
        ValueError for a duplicate key."""
        cdef _Growable data = _Growable()
        cdef _Growable ents = _Growable()
        cdef const unsigned char[::1] kv
        cdef const unsigned char[::1] rv
        cdef const unsigned char[::1] tv = tombstones
        cdef unsigned char tomb[TOMB_SIZE]
        cdef size_t pos = 0, size, i, n
        for item in entries:
            pos += 1
            try:
                key, rec = item
                kv = key
                rv = rec
                if kv.shape[0] != 16:
                    raise ValueError("key must be 16 bytes")
                n = rv.shape[0]
                size = _rec_size(&rv[0], n) if n else 0
                if size == 0 or size != n:
                    raise ValueError("packed record has a bad size")
                if rv[0] & 0xF0:
                    raise ValueError("packed record has unknown flags")
                if qrr_le32(&rv[5]) < qrr_le32(&rv[1]):
                    raise ValueError("valid_until is before valid_from")
            except (ValueError, TypeError) as exc:
                raise ValueError(f"record {pos}: {exc}") from None
            _add_entry(data, ents, &kv[0], &rv[0], size)
        if tv.shape[0] % 16:
            raise ValueError("tombstones: length is not a multiple of 16")
        memset(tomb, 0, TOMB_SIZE)
        tomb[0] = TOMB | 8
        memset(tomb + 9, 0xA5, 16)
        for i in range(tv.shape[0] // 16):
            _add_entry(data, ents, &tv[i * 16], tomb, TOMB_SIZE)
        return _assemble(data, ents, ents.len // sizeof(_entry))

    @staticmethod
    def from_records(records):
        """Build a table from normalised records: tuples (id, ck, type index, revoked,
        valid_from, valid_until, name, name_latin, dob, document) where id is the unrz
        or UUID text or its 16-byte key, ck 16 bytes or None, type index 0..3
        (vaccination, recovery, test, temporary), times epoch seconds (0..2**32-1).
        Raises ValueError (naming the record's position, never its content) for a bad
        record or a duplicate id; nothing is built then."""
        cdef _Growable data = _Growable()
        cdef _Growable ents = _Growable()
        cdef _entry* ent
        cdef unsigned char* p
        cdef unsigned char key[16]
        cdef size_t pos = 0, off, size, n
        cdef bytes ident_raw, ckb, s_name, s_latin, s_doc
        cdef int flags, t
        for rec in records:
            pos += 1
            try:
                (ident, ck, t, revoked, vfrom, vuntil, name, latin, dob, doc) = rec
                if isinstance(ident, bytes) and len(<bytes>ident) == 16:
                    memcpy(key, PyBytes_AS_STRING(<bytes>ident), 16)
                else:
                    if not isinstance(ident, str):
                        raise ValueError("id must be a str")
                    ident_raw = (<str>ident).encode("ascii", "replace")
                    if link_key(<const unsigned char*>PyBytes_AS_STRING(ident_raw),
                                len(ident_raw), key) == 0:
                        raise ValueError("id is not a 16-digit unrz or a UUID")
                if not 0 <= t <= 3:
                    raise ValueError("type index must be 0..3")
                _check_time(vfrom, "valid_from")
                _check_time(vuntil, "valid_until")
                if vuntil < vfrom:
                    raise ValueError("valid_until is before valid_from")
                if ck is not None and (type(ck) is not bytes or len(<bytes>ck) != 16):
                    raise ValueError("ck must be 16 bytes or None")
                s_name = _pack_str(name, "name")
                s_latin = _pack_str(latin, "name_latin")
                s_doc = _pack_str(doc, "document")
                flags = t | (4 if revoked else 0) | (8 if ck is not None else 0)
                size = 9 + (16 if ck is not None else 0) + 4 + 3 + len(s_name) \
                    + len(s_latin) + len(s_doc)
                size = (size + 3) & ~(<size_t>3)
                off = data.len
                if (off >> 2) > 0xFFFFFFFF:
                    raise ValueError("record table: more than 16 GiB of records")
                p = data.extend(size)
                memset(p, 0, size)
                p[0] = flags
                qrr_put32(p + 1, vfrom)
                qrr_put32(p + 5, vuntil)
                p += 9
                if ck is not None:
                    memcpy(p, PyBytes_AS_STRING(<bytes>ck), 16)
                    p += 16
                _pack_dob(dob, p)
                p += 4
                for sb in (s_name, s_latin, s_doc):
                    n = len(<bytes>sb)
                    p[0] = n
                    memcpy(p + 1, PyBytes_AS_STRING(<bytes>sb), n)
                    p += 1 + n
            except (ValueError, TypeError) as exc:
                raise ValueError(f"record {pos}: {exc}") from None
            ent = <_entry*>ents.extend(sizeof(_entry))
            memcpy(ent.key, key, 16)
            ent.unit = <uint32_t>(off >> 2)
        return _assemble(data, ents, pos)
