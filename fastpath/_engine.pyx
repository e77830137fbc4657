# cython: language_level=3
"""The verification engine: everything a scan does after the bytes arrive.

`Engine.verify(token, at)`:
  0. input hygiene (CONTRACT section 1): size cap, whitespace and BOM, the HC1: prefix in
     any case or percent-encoded; a text starting with http:// or https:// goes to the
     register-link path, anything else to the HC1 decoder;
  1. one snapshot of the store (`snap = store.replica`): trust keys, revoked and registry
     sets all come from it, so one scan never mixes two versions;
  2. re-scan cache, keyed on the cleaned token and on the trust registry object the token
     was proven against (a key change proves it again). It holds VERIFIED tokens only, and
     of them only what the per-scan checks need (`_Proof`: times, hashes, rule window,
     holder, certificate): no signed content, nothing for a token that failed before its
     signature held. Bounded by entries and by (estimated) bytes, LRU;
  3. on a miss, prove: decode (fastpath._decode), find the keys for the kid (a 2-letter
     `iss` must match a key's known country), verify the signature (IssuerKey.verify,
     i.e. cryptography), check the payload, and precompute everything that does not
     depend on the clock (key usage, the rules' fixed outcome and window, valid_until);
  4. on every scan: the signing key's validity at the time of verification, the token's
     exp/iat (with leeway), the revocation and registry sets of the snapshot (C-level
     HashSet lookups), and the acceptance rules' window.

Reasons are small int codes (R_* below) inside this module; `_REASON` is the one table
mapping them to `verifier.reasons.Reason`, and verdicts are `verifier.verdict.Verdict`.
Both are imported when the first Engine is built (importing the `verifier` package from
here at module load would be circular: verifier.core imports this module). Reason
precedence is the contract's: the first check that fails is reported.
"""

from cpython.bytes cimport PyBytes_AS_STRING
from cpython.dict cimport PyDict_GetItem
from cpython.object cimport PyObject
from libc.stdint cimport INT64_MAX, INT64_MIN, int64_t
from libc.time cimport time as c_time

from fastpath._decode cimport Decoded, ValueSets, decode_token_vs, format_iso_utc
from fastpath._hashset cimport HashSet
from fastpath._links cimport LinkChecker
from fastpath._ossl cimport NativeKey
from fastpath._records cimport RecordTable

from collections import OrderedDict
from datetime import datetime, timezone
from urllib.parse import unquote, unquote_to_bytes

from fastpath._decode import MAX_INFLATED, DecodeError
from fastpath._ossl import native_key

cdef int64_t DAY = 86400
cdef int64_t HOUR = 3600
cdef int64_t MIN_TIME = -62135596800     # 0001-01-01T00:00:00Z
cdef int64_t MAX_TIME = 253402300799     # 9999-12-31T23:59:59Z
cdef str NEGATIVE = "260415000"      # SNOMED CT "Not detected"
_TYPE_BITS = {"vaccination": 1, "test": 2, "recovery": 4}
_UTC = timezone.utc

cdef enum:
    MAX_INPUT = 16384      # characters (or bytes) looked at, at most: twice the token cap
    ENTRY_OVERHEAD = 640   # bytes a cache entry costs besides its key and holder strings
# Reason codes: index into _REASON (same order as _CODES).
cdef enum:
    R_BAD_PREFIX
    R_BAD_BASE45
    R_BAD_COMPRESSION
    R_BAD_COSE
    R_BAD_CWT
    R_BAD_PAYLOAD
    R_TOO_LARGE
    R_UNKNOWN_KEY
    R_BAD_SIGNATURE
    R_KEY_USAGE
    R_KEY_EXPIRED
    R_TOKEN_EXPIRED
    R_TOKEN_NOT_YET_VALID
    R_REVOKED
    R_NOT_IN_REGISTRY
    R_BAD_LINK
    R_NOT_FOUND
    R_VACCINE_NOT_ACCEPTED
    R_VACCINATION_INCOMPLETE
    R_VACCINATION_NOT_YET_VALID
    R_VACCINATION_EXPIRED
    R_RECOVERY_NOT_YET_VALID
    R_RECOVERY_EXPIRED
    R_TEST_POSITIVE
    R_TEST_TYPE_NOT_ACCEPTED
    R_TEST_EXPIRED
    R_TEST_IN_FUTURE

_CODES = (
    "bad_prefix", "bad_base45", "bad_compression", "bad_cose", "bad_cwt", "bad_payload",
    "too_large", "unknown_key", "bad_signature", "key_usage", "key_expired",
    "token_expired", "token_not_yet_valid", "revoked", "not_in_registry", "bad_link",
    "not_found", "vaccine_not_accepted", "vaccination_incomplete",
    "vaccination_not_yet_valid", "vaccination_expired", "recovery_not_yet_valid",
    "recovery_expired", "test_positive", "test_type_not_accepted", "test_expired",
    "test_in_future",
)

cdef dict _CODE_OF = {code: i for i, code in enumerate(_CODES)}  # DecodeError.reason -> R_*
cdef tuple _REASON = None       # R_* -> Reason, filled by _bind_api()
cdef object _Verdict = None


cdef int _bind_api() except -1:
    """Import Reason and Verdict (leaf modules of the verifier package) once."""
    global _REASON, _Verdict
    if _Verdict is not None:
        return 0
    from verifier.reasons import Reason
    from verifier.verdict import Verdict
    table = tuple([Reason(code) for code in _CODES])
    if len(table) != R_TEST_IN_FUTURE + 1 or set(table) != set(Reason):
        raise RuntimeError("fastpath._engine reason table does not match verifier.Reason")
    _REASON = table
    _Verdict = Verdict
    return 0


cdef inline object _invalid(int code, object detail=None):
    """An invalid verdict with no holder; `detail` is a more specific English sentence
    (what the decoder found wrong) or None for the reason's own."""
    return _Verdict(<object>_REASON[code], None, None, detail)



# -- input hygiene (CONTRACT section 1) ----------------------------------------------------

cdef enum:
    K_HC1 = 0       # the cleaned text starts with "HC1:" (str or bytes)
    K_LINK = 1      # it starts with http:// or https:// (any case)
    K_OTHER = 2     # anything else: the decoder names the reason (bad_prefix)

cdef str _WS = " \t\r\n"
cdef bytes _WS_B = b" \t\r\n"


cdef inline bint _ws(Py_UCS4 c):
    return c == 32 or c == 9 or c == 13 or c == 10


cdef int _kind_str(str text) except -1:
    cdef str head = text[:8].lower()
    if head.startswith("hc1:"):
        return K_HC1
    if head.startswith("http://") or head == "https://":
        return K_LINK
    return K_OTHER


cdef object _clean_str(str text):
    """Surrounding whitespace and a BOM removed; `hc1:` and `HC1%3A` made `HC1:`."""
    cdef Py_ssize_t n = len(text)
    if n and (_ws(text[0]) or _ws(text[n - 1]) or text[0] == u"\ufeff"):
        text = text.strip(_WS)
        if text.startswith(u"\ufeff"):
            text = text[1:].strip(_WS)
    if text.startswith("HC1:"):
        return text
    if text[:4].upper() == "HC1:":
        return "HC1:" + text[4:]
    if text[:6].upper() == "HC1%3A":  # a scanner app percent-encoded the whole text
        text = unquote(text, "utf-8", "replace")  # bad UTF-8: U+FFFD, then bad_base45
        if text[:4].upper() == "HC1:":
            return "HC1:" + text[4:]
    return text


cdef object _clean_bytes(bytes raw):
    cdef Py_ssize_t n = len(raw)
    if n and (raw[0] in _WS_B or raw[n - 1] in _WS_B or raw[0] == 0xEF):
        raw = raw.strip(_WS_B)
        if raw.startswith(b"\xef\xbb\xbf"):
            raw = raw[3:].strip(_WS_B)
    if raw.startswith(b"HC1:"):
        return raw
    if raw[:4].upper() == b"HC1:":
        return b"HC1:" + raw[4:]
    if raw[:6].upper() == b"HC1%3A":
        raw = unquote_to_bytes(raw)
        if raw[:4].upper() == b"HC1:":
            return b"HC1:" + raw[4:]
    return raw


cdef object _clean(object token, int* kind):
    """The text to verify, and its kind; None with kind = an R_* code when there is
    nothing to verify. Input is capped before any work."""
    cdef Py_ssize_t n
    cdef object text
    if type(token) is str:
        n = len(<str>token)
        if n > MAX_INPUT:
            kind[0] = R_TOO_LARGE
            return None
        if n > 4 and (<str>token).startswith("HC1:") and not _ws((<str>token)[n - 1]):
            kind[0] = K_HC1  # the common case: nothing to clean, nothing allocated
            return token
        text = _clean_str(<str>token)
        kind[0] = _kind_str(<str>text)
        return text
    if isinstance(token, (bytes, bytearray, memoryview)):
        try:
            n = len(token)
            if n > MAX_INPUT:
                kind[0] = R_TOO_LARGE
                return None
            text = _clean_bytes(token if type(token) is bytes else bytes(token))
        except (TypeError, ValueError, BufferError):  # e.g. a non-byte memoryview
            kind[0] = R_BAD_PREFIX
            return None
        if (<bytes>text)[:4] == b"HC1:":
            kind[0] = K_HC1
        elif (<bytes>text)[:8].lower().startswith(b"http://") or \
                (<bytes>text)[:8].lower() == b"https://":
            kind[0] = K_LINK
        else:
            kind[0] = K_OTHER
        return text
    kind[0] = R_BAD_PREFIX
    return None


# -- what a verified token proved ----------------------------------------------------------

cdef class _Proof:
    """What one VERIFIED token proved against one trust registry: only what the per-scan
    checks need. Immutable once built."""

    cdef object trust
    cdef object vs                 # the ValueSets its codes were checked against
    cdef Py_ssize_t cost           # bytes charged to the cache for this entry
    cdef int failure               # R_KEY_USAGE, or -1
    cdef tuple holder
    cdef tuple certificate         # (type, issuer, valid_until text)
    cdef int64_t exp, iat
    cdef int64_t key_nb, key_na    # the signing key's validity (INT64_MIN/MAX: open)
    cdef bytes uci, cuci, cuci_co, sig   # revocation hashes; cuci_co None unless it differs
    cdef bytes kid                 # for the kid-scoped revocation list (snap.drl)
    cdef bint want_registry
    cdef int rule                  # the rules' outcome that needs no clock, or -1
    cdef int early, late           # R_* before start / after end; -1: no window
    cdef int64_t start, end


cdef inline bint _has(HashSet s, bytes key):
    return s.contains_ptr(<const unsigned char*>PyBytes_AS_STRING(key))


cdef bint _drl_revoked(tuple entry, _Proof p, int64_t now) except -1:
    """One kid's DRL entry (type mask, expiry epoch, HashSet): only the hash types it
    declared are looked up (1 UCI, 2 COUNTRYCODEUCI, 4 SIGNATURE), and only until it
    expires (verifier.revocations.parse_drl)."""
    cdef int mask = entry[0]
    cdef int64_t expires = entry[1]
    cdef HashSet hashes = <HashSet?>entry[2]
    if now > expires:
        return False
    return ((mask & 1 and _has(hashes, p.uci))
            or (mask & 2 and (_has(hashes, p.cuci)
                              or (p.cuci_co is not None and _has(hashes, p.cuci_co))))
            or (mask & 4 and _has(hashes, p.sig)))


cdef inline int64_t _clamp_time(int64_t t):
    return MIN_TIME if t < MIN_TIME else MAX_TIME if t > MAX_TIME else t


cdef inline bint _country_code(str iss):
    """A 2-letter ASCII code (a country), as opposed to a ministry's name."""
    cdef Py_UCS4 a, b
    if iss is None or len(iss) != 2:
        return False
    a = iss[0]
    b = iss[1]
    return ((65 <= a <= 90 or 97 <= a <= 122) and (65 <= b <= 90 or 97 <= b <= 122))


cdef int64_t _epoch(object at) except? -1:
    """Epoch seconds of `at`: a datetime (naive = UTC) or a number of seconds."""
    if isinstance(at, datetime):
        if at.tzinfo is None:
            at = at.replace(tzinfo=_UTC)
        return <int64_t>at.timestamp()
    if isinstance(at, (int, float)) and not isinstance(at, bool):
        return <int64_t>at
    raise TypeError("at must be a datetime, epoch seconds or None")


cdef RecordTable _records(object snap):
    """The snapshot's register records (None: no records loaded)."""
    cdef object records = getattr(snap, "records", None)
    return None if records is None else <RecordTable?>records


cdef class Engine:
    """The compiled per-scan path; verifier.Verifier is this class with its Python API.

    `store` must expose `replica` (one consistent snapshot: `trust`, `revoked`,
    `registry`); `rules` is a verifier.rules.Rules.
    """

    cdef object _store
    cdef object _detail              # the decoder's sentence for the failure being reported
    cdef object cache                # OrderedDict: cleaned token -> _Proof (LRU order)
    cdef Py_ssize_t cache_size, cache_bytes
    cdef readonly Py_ssize_t cache_used   # estimated bytes held by the cache
    cdef int64_t _leeway
    cdef readonly long long hits, misses
    cdef LinkChecker _links          # register links (fastpath._links)
    cdef readonly ValueSets valuesets  # the EU value sets codes are checked against
    cdef tuple _drl_of               # (snapshot, its `drl` or None): read once per snapshot
    cdef tuple _vs_of                # (snapshot, the value sets for it): read once per snapshot
    cdef bint _vs_fixed              # the configured value sets win over a snapshot's
    # rules
    cdef bint technical_only, full_course
    cdef int64_t vaccination_secs, recovery_secs, test_secs
    cdef frozenset test_types
    cdef frozenset vaccines          # accepted `mp` codes; None accepts any product
    cdef int registry_types          # bit per type index: 1 vaccination, 2 test, 4 recovery
    # signatures: libcrypto keys per issuer key (by id, valid for `natives_trust` only)
    cdef bint native
    cdef dict natives
    cdef object natives_trust

    def __init__(self, store, rules, *, int leeway, Py_ssize_t cache_size,
                 Py_ssize_t cache_bytes=32 * 1024 * 1024, link_origins=(),
                 ValueSets valuesets=None, bint native=False, bint fixed_valuesets=True):
        _bind_api()
        if not hasattr(store, "replica"):
            raise TypeError("the store must expose a `replica` snapshot")
        # ValueError for a malformed origin URL
        self._links = LinkChecker(tuple(link_origins), verdict=_Verdict,
                                  reasons={c: _REASON[i] for i, c in enumerate(_CODES)})
        self._store = store
        self.valuesets = valuesets  # None: coded fields are not checked
        self._drl_of = (None, None)
        self._vs_of = (None, valuesets)
        self._vs_fixed = fixed_valuesets
        self.cache = OrderedDict()
        self.cache_size = cache_size
        self.cache_bytes = cache_bytes
        self.cache_used = 0
        self._leeway = leeway
        self.native = native
        self.natives = {}
        self.technical_only = rules.technical_only
        self.full_course = rules.require_full_course
        self.vaccination_secs = rules.vaccination_days * DAY
        self.recovery_secs = rules.recovery_days * DAY
        self.test_secs = rules.test_hours * HOUR
        self.test_types = frozenset(rules.accepted_test_types)
        accepted = getattr(rules, "accepted_vaccines", None)
        self.vaccines = None if accepted is None else frozenset(accepted)
        self.registry_types = 0
        for name in rules.registry_types:
            self.registry_types |= _TYPE_BITS[name]

    @property
    def cache_entries(self):
        return len(self.cache)

    def clear_cache(self):
        self.cache.clear()
        self.cache_used = 0

    # -- entry points -----------------------------------------------------------------

    def verify(self, token, at=None):
        """Verify one token at time `at` (default now). Never raises for bad tokens."""
        return self._verify(token, self._now(at))

    def verify_many(self, tokens, at=None):
        """Verify tokens in order, all at the same instant."""
        cdef int64_t now = self._now(at)
        return [self._verify(t, now) for t in tokens]

    # -- internals --------------------------------------------------------------------

    cdef int64_t _now(self, object at) except? -1:
        if at is None:
            return <int64_t>c_time(NULL)
        if type(at) is int:
            return at
        return _epoch(at)

    cdef object _verify(self, object token, int64_t now):
        cdef int kind = K_OTHER, code = -1
        cdef object text = _clean(token, &kind)
        cdef object snap, trust, vs
        cdef PyObject* hit = NULL
        cdef _Proof proof
        cdef object detail
        if text is None:
            return _invalid(kind)
        snap = self._store.replica    # the one snapshot of this scan
        if kind == K_LINK:
            return self._link(text, snap, now)
        trust = snap.trust
        vs = self._valuesets_for(snap)
        if self.cache_size and kind == K_HC1:
            hit = PyDict_GetItem(self.cache, text)
        if hit != NULL and (<_Proof>hit).trust is trust and (<_Proof>hit).vs is vs:
            proof = <_Proof>hit
            self.hits += 1
            try:
                self.cache.move_to_end(text)
            except KeyError:  # evicted meanwhile by another thread
                pass
            return self._judge(proof, snap, now)
        self.misses += 1
        proof = self._prove(text, trust, <ValueSets>vs, &code)
        if proof is None:
            detail = self._detail
            self._detail = None
            return _invalid(code, detail)
        if self.cache_size:
            self._remember(text, proof)
        return self._judge(proof, snap, now)

    cdef object _link(self, object text, object snap, int64_t now):
        """A register link (CONTRACT section 1b): looked up in the snapshot's records,
        never decoded (fastpath._links)."""
        return self._links.check(text, _records(snap), now)

    cdef int _remember(self, object key, _Proof p) except -1:
        cdef object old
        cdef Py_ssize_t cost = p.cost + key.__sizeof__()
        if cost > self.cache_bytes:
            return 0
        p.cost = cost
        old = self.cache.pop(key, None)
        if old is not None:
            self.cache_used -= (<_Proof>old).cost
        self.cache[key] = p
        self.cache_used += cost
        while self.cache and (len(self.cache) > self.cache_size
                              or self.cache_used > self.cache_bytes):
            old = self.cache.popitem(last=False)[1]
            self.cache_used -= (<_Proof>old).cost
        return 0

    cdef object _valuesets_for(self, object snap):
        """The value sets a scan of `snap` checks codes against: the snapshot's own (a Redis
        version that carries them) unless the verifier was given fixed ones."""
        cdef tuple seen = self._vs_of
        cdef object vs
        if self._vs_fixed:
            return self.valuesets
        if seen[0] is snap:
            return seen[1]
        vs = getattr(snap, "valuesets", None)
        if vs is None:
            vs = self.valuesets
        else:
            vs = <ValueSets?>vs
        self._vs_of = (snap, vs)  # one tuple: atomic for other threads
        return vs

    cdef _Proof _prove(self, object text, object trust, ValueSets vs, int* code):
        """Decode and verify; None (with code[0] set) unless the signature held."""
        cdef Decoded d
        cdef object key, verified = None
        cdef str country = None
        cdef bint any_candidate = False
        try:
            d = decode_token_vs(text, MAX_INFLATED, vs)
        except DecodeError as exc:
            code[0] = _CODE_OF.get(exc.reason, R_BAD_COSE)
            self._detail = exc.detail
            return None
        except Exception:  # fail closed on anything unforeseen
            code[0] = R_BAD_COSE
            return None
        if not (MIN_TIME <= d.iat <= MAX_TIME and MIN_TIME <= d.exp <= MAX_TIME) \
                or d.iat > d.exp:
            code[0] = R_BAD_CWT
            return None
        if d.kid is None:
            code[0] = R_UNKNOWN_KEY
            return None
        if _country_code(d.iss):
            country = d.iss.upper()
        for key in trust.candidates(d.kid):  # kids can collide: any key may verify
            if country is not None and key.country is not None and key.country != country:
                continue  # a key listed for one country does not issue for another
            any_candidate = True
            if self._signature_ok(key, d, trust):
                verified = key
                break
        if not any_candidate:
            code[0] = R_UNKNOWN_KEY
            return None
        if verified is None:
            code[0] = R_BAD_SIGNATURE
            return None
        if not d.payload_ok:
            code[0] = R_BAD_PAYLOAD
            self._detail = d.payload_detail
            return None
        return self._proof(d, verified, trust, vs)

    cdef _Proof _proof(self, Decoded d, object key, object trust, object vs):
        """Everything about a verified token that does not depend on the clock."""
        cdef _Proof p = _Proof.__new__(_Proof)
        cdef str fn = d.fn, gn = d.gn, fnt = d.fnt, gnt = d.gnt, name, latin
        cdef object types = key.types, nb = key.not_before, na = key.not_after
        cdef int64_t until
        p.trust = trust
        p.vs = vs
        p.failure = R_KEY_USAGE if types is not None and d.cert_type not in types else -1
        p.exp = d.exp
        p.iat = d.iat
        p.key_nb = INT64_MIN if nb is None else nb
        p.key_na = INT64_MAX if na is None else na
        p.uci = d.uci_hash
        p.cuci = d.cuci_hash
        p.cuci_co = None if d.cuci_co_hash is d.cuci_hash else d.cuci_co_hash
        p.sig = d.sig_hash
        p.kid = d.kid
        p.want_registry = (self.registry_types >> d.type_index) & 1
        self._rules(d, p)
        # valid_until: the last instant this certificate admits its holder (CONTRACT
        # section 2), whatever the verdict: rule window, token exp, signing key's end.
        until = min(p.exp, p.key_na)
        if p.early >= 0:
            until = min(until, p.end)
        name = (fn + " " + gn) if fn and gn else (fn or gn or "")
        latin = (fnt + "<" + gnt) if fnt and gnt else (fnt or gnt or "")
        p.holder = (name or latin.replace("<", " "), latin, d.dob)
        p.certificate = (d.cert_type, d.issuer_display,
                         format_iso_utc(_clamp_time(until)))
        p.cost = (ENTRY_OVERHEAD + p.holder[0].__sizeof__() + latin.__sizeof__()
                  + p.certificate[1].__sizeof__())
        return p

    cdef int _rules(self, Decoded d, _Proof p) except -1:
        """The acceptance rules' fixed outcome (p.rule) and their window: valid from
        p.start to p.end, both included, no leeway (p.early / p.late name the failure
        before / after it)."""
        p.rule = -1
        p.early = -1
        p.late = -1
        if self.technical_only:
            return 0
        if d.type_index == 0:
            if self.vaccines is not None and d.mp not in self.vaccines:
                p.rule = R_VACCINE_NOT_ACCEPTED
            elif self.full_course and d.dn < d.sd:
                p.rule = R_VACCINATION_INCOMPLETE
            p.start = d.dt
            p.end = d.dt + self.vaccination_secs
            p.early = R_VACCINATION_NOT_YET_VALID
            p.late = R_VACCINATION_EXPIRED
        elif d.type_index == 1:
            if d.tr != NEGATIVE:
                p.rule = R_TEST_POSITIVE
            elif d.tt not in self.test_types:
                p.rule = R_TEST_TYPE_NOT_ACCEPTED
            p.start = d.sc
            p.end = d.sc + self.test_secs
            p.early = R_TEST_IN_FUTURE
            p.late = R_TEST_EXPIRED
        else:  # recovery_days from fr, and only inside df..du (du is the last valid day)
            p.start = max(d.fr, d.df)
            p.end = min(d.fr + self.recovery_secs, d.du + DAY)
            p.early = R_RECOVERY_NOT_YET_VALID
            p.late = R_RECOVERY_EXPIRED
        return 0

    cdef bint _signature_ok(self, object key, Decoded d, object trust):
        """The signature check: libcrypto through the key's NativeKey when the verifier
        chose it (self-tested at start) and the key has one, else cryptography."""
        cdef PyObject* hit
        cdef object nk
        if self.native:
            if self.natives_trust is not trust:  # keys changed: parse them anew, lazily
                self.natives = {}
                self.natives_trust = trust
            hit = PyDict_GetItem(self.natives, id(key))
            if hit == NULL:
                nk = native_key(key)
                self.natives[id(key)] = nk
            else:
                nk = <object>hit
            if nk is not None:
                return (<NativeKey>nk).check(d.alg, d.signature, d.sig_structure)
        return key.verify(d.alg, d.signature, d.sig_structure)

    cdef object _judge(self, _Proof p, object snap, int64_t now):
        """The checks that depend on the clock or on the store, in contract order."""
        cdef int r = p.failure
        if r < 0:
            if now < p.key_nb or now > p.key_na:
                r = R_KEY_EXPIRED
            elif now > p.exp + self._leeway:
                r = R_TOKEN_EXPIRED
            elif p.iat > now + self._leeway:
                r = R_TOKEN_NOT_YET_VALID
            else:
                r = self._store_checks(p, snap, now)
                if r < 0:
                    r = p.rule
                    if r < 0 and p.early >= 0:
                        if now < p.start:
                            r = p.early
                        elif now > p.end:
                            r = p.late
        return _Verdict(None if r < 0 else <object>_REASON[r], p.holder, p.certificate)

    cdef int _store_checks(self, _Proof p, object snap, int64_t now) except -2:
        """Revocation (UCI, country+UCI with iss and with co, signature), the kid-scoped
        list (snap.drl) and, where the rules want it, the registry set (absent set = not
        loaded = no requirement)."""
        cdef object registry, drl, entry
        cdef tuple seen = self._drl_of
        cdef HashSet revoked = <HashSet?>snap.revoked
        if (_has(revoked, p.uci) or _has(revoked, p.cuci) or _has(revoked, p.sig)
                or (p.cuci_co is not None and _has(revoked, p.cuci_co))):
            return R_REVOKED
        if seen[0] is snap:
            drl = seen[1]
        else:  # a new snapshot: look its drl up once (one tuple: atomic for other threads)
            drl = getattr(snap, "drl", None) or None
            self._drl_of = (snap, drl)
        if drl is not None:
            entry = (<dict?>drl).get(p.kid)
            if entry is not None and _drl_revoked(<tuple?>entry, p, now):
                return R_REVOKED
        if p.want_registry:
            registry = snap.registry
            if registry is not None and not _has(<HashSet?>registry, p.uci):
                return R_NOT_IN_REGISTRY
        return -1
