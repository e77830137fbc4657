# Included by _decode.pyx: the EU DCC value sets as one C-level hash table.
#
# Built once when the value sets are loaded (verifier.valuesets reads the files); a scan
# looks a code up straight from its UTF-8 bytes: one FNV-1a hash and, almost always, one
# memcmp. No Python objects are made or hashed per scan.

cdef enum:
    VS_CO = 0        # country-2-codes              (co)
    VS_TG = 1        # disease-agent-targeted       (tg)
    VS_VP = 2        # vaccine-prophylaxis          (vp)
    VS_MP = 3        # vaccine-medicinal-product    (mp)
    VS_MA = 4        # vaccine-mah-manf             (ma of a vaccination)
    VS_TT = 5        # test-type                    (tt)
    VS_TR = 6        # test-result                  (tr)
    VS_TEST_MA = 7   # rapid-test devices           (ma of a test; only when loaded)
    VS_COUNT = 8
    VS_MAX_CODES = 200000
    VS_MAX_CODE_LEN = 255

#: value set ids, in VS_* order: the names ValueSets() takes
VALUESET_FIELDS = ("co", "tg", "vp", "mp", "ma", "tt", "tr", "test_ma")
_VS_FILES = ("country-2-codes", "disease-agent-targeted", "vaccine-prophylaxis",
             "vaccine-medicinal-product", "vaccine-mah-manf", "test-type", "test-result",
             "test-manf")


cdef inline uint32_t _fnv1a(int field, const uint8_t* p, Py_ssize_t n):
    cdef uint32_t h = 2166136261u
    cdef Py_ssize_t i
    h = (h ^ <uint32_t>field) * 16777619u
    for i in range(n):
        h = (h ^ p[i]) * 16777619u
    return h


cdef class ValueSets:
    """Codes per value set: `ValueSets({"co": ["RU", ...], ...}, source="...")`.

    Names are those of VALUESET_FIELDS; a value set that is not given is not checked.
    Immutable once built; `contains(name, code)` is for tests and tools.
    """

    def __init__(self, sets, source=""):
        cdef dict seen = {}
        cdef list entries = []
        cdef int field
        cdef int fields = 0
        cdef bytes raw, blob
        cdef bytearray slots
        cdef Py_ssize_t n = 0, cap = 16, off, total = 0
        cdef uint32_t idx, mask
        cdef uint32_t* sp
        cdef const uint8_t* bp
        for name, codes in dict(sets).items():
            if name not in VALUESET_FIELDS:
                raise ValueError(f"unknown value set {name!r}")
            field = VALUESET_FIELDS.index(name)
            fields |= 1 << field
            for code in codes:
                if type(code) is not str:
                    raise ValueError(f"value set {name}: codes must be text")
                raw = (<str>code).encode("utf-8")
                if not 0 < len(raw) <= VS_MAX_CODE_LEN:
                    raise ValueError(f"value set {name}: a code of {len(raw)} bytes")
                if (field, raw) in seen:
                    continue
                seen[(field, raw)] = True
                entries.append((field, raw))
                total += 2 + len(raw)
                n += 1
                if n > VS_MAX_CODES:
                    raise ValueError(f"more than {VS_MAX_CODES} value-set codes")
        while cap < 2 * n:
            cap *= 2
        blob = b"".join([bytes((f, len(r))) + r for f, r in entries])
        slots = bytearray(4 * cap)
        sp = <uint32_t*><char*>slots
        bp = <const uint8_t*>PyBytes_AS_STRING(blob)
        mask = <uint32_t>(cap - 1)
        off = 0
        while off < total:
            idx = _fnv1a(bp[off], bp + off + 2, bp[off + 1]) & mask
            while sp[idx]:
                idx = (idx + 1) & mask
            sp[idx] = <uint32_t>(off + 1)
            off += 2 + bp[off + 1]
        self._blob = blob
        self._slotbuf = bytes(slots)
        self._slots = <const uint32_t*>PyBytes_AS_STRING(self._slotbuf)
        self._mask = mask
        self.fields = fields
        self.size = n
        self.source = str(source)

    cdef bint has(self, int field, const uint8_t* p, Py_ssize_t n):
        cdef uint32_t idx = _fnv1a(field, p, n) & self._mask
        cdef uint32_t slot
        cdef const uint8_t* e
        cdef const uint8_t* blob = <const uint8_t*>PyBytes_AS_STRING(self._blob)
        while True:
            slot = self._slots[idx]
            if slot == 0:
                return False
            e = blob + slot - 1
            if e[0] == field and e[1] == n and memcmp(e + 2, p, n) == 0:
                return True
            idx = (idx + 1) & self._mask

    def contains(self, name, code):
        """True when `code` is in value set `name` (or that set is not loaded)."""
        cdef int field = VALUESET_FIELDS.index(name)
        cdef bytes raw = str(code).encode("utf-8")
        if not (self.fields >> field) & 1:
            return True
        return self.has(field, <const uint8_t*>PyBytes_AS_STRING(raw), PyBytes_GET_SIZE(raw))

    @property
    def loaded(self):
        """Names of the value sets that are checked."""
        return tuple(name for i, name in enumerate(VALUESET_FIELDS) if (self.fields >> i) & 1)

    def __len__(self):
        return self.size

    def __repr__(self):
        return f"<ValueSets {self.size} codes in {len(self.loaded)} sets>"
