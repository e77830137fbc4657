# cython: language_level=3
"""The verification engine: everything a scan does after the bytes arrive.

`Engine.verify(token, at)`:
  0. one snapshot of the store (`snap = store.replica`): trust keys, revoked and registry
     sets all come from it, so one scan never mixes two versions;
  1. re-scan cache, keyed on the whole token and on the trust registry object the token
     was proven against (a key change proves it again);
  2. on a miss, prove: decode (fastpath._decode), find the keys for the kid, verify the
     signature (IssuerKey.verify, i.e. cryptography), then payload, key usage and key
     validity; the result (a `_Proof`) is cached, failures included;
  3. on every scan: the clock (with leeway), the revocation and registry sets of the
     snapshot (C-level HashSet lookups), and the acceptance rules.

Reasons are small int codes (R_* below) inside this module; `_REASON` is the one table
mapping them to `verifier.reasons.Reason`, and verdicts are `verifier.verdict.Verdict`.
Both are imported when the first Engine is built (importing the `verifier` package from
here at module load would be circular: verifier.core imports this module). Reason
precedence is the contract's: the first check that fails is reported.
"""

from cpython.bytes cimport PyBytes_AS_STRING
from cpython.dict cimport PyDict_GetItem
from cpython.object cimport PyObject
from libc.stdint cimport int64_t
from libc.time cimport time as c_time

from fastpath._decode cimport Decoded, decode_token, format_iso_utc
from fastpath._hashset cimport HashSet
from fastpath._links cimport LinkChecker, is_link
from fastpath._records cimport RecordTable

from collections import OrderedDict
from datetime import datetime, timezone

from fastpath._decode import MAX_INFLATED, DecodeError

cdef int64_t DAY = 86400
cdef int64_t HOUR = 3600
cdef str NEGATIVE = "260415000"      # SNOMED CT "Not detected"
_TYPE_BITS = {"vaccination": 1, "test": 2, "recovery": 4}
_UTC = timezone.utc

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


cdef inline object _invalid(int code):
    return _Verdict(<object>_REASON[code])


cdef class _Proof:
    """What one token proved against one trust registry. Immutable once built, but for
    the memo of its last valid-until text."""

    cdef object trust
    cdef Decoded d             # None when the token did not decode
    cdef int failure           # an R_* code, or -1 when everything up to the key held
    cdef tuple holder          # set only once the signature verified
    cdef str ctype
    cdef str issuer
    cdef int64_t iso_ts
    cdef str iso_text

    cdef str iso(self, int64_t ts):
        if self.iso_text is None or self.iso_ts != ts:
            self.iso_text = format_iso_utc(ts)
            self.iso_ts = ts
        return self.iso_text


cdef _Proof _proof(object trust, Decoded d, int failure, bint verified):
    cdef _Proof p = _Proof.__new__(_Proof)
    cdef str fn, gn, fnt, gnt, name, latin
    p.trust = trust
    p.d = d
    p.failure = failure
    if verified:  # signature checked and payload well-formed: safe to show
        fn, gn, fnt, gnt = d.fn, d.gn, d.fnt, d.gnt
        name = (fn + " " + gn) if fn and gn else (fn or gn or "")
        latin = (fnt + "<" + gnt) if fnt and gnt else (fnt or gnt or "")
        p.holder = (name or latin.replace("<", " "), latin, d.dob)
        p.ctype = d.cert_type
        p.issuer = d.iss if d.iss else d.co
    return p


cdef inline bint _has(HashSet s, bytes key):
    return s.contains_ptr(<const unsigned char*>PyBytes_AS_STRING(key))


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
    cdef object cache
    cdef Py_ssize_t cache_size
    cdef int64_t _leeway
    cdef readonly long long hits, misses
    cdef LinkChecker _links          # register links (fastpath._links)
    # rules
    cdef bint technical_only, full_course
    cdef int64_t vaccination_secs, recovery_secs, test_secs
    cdef frozenset test_types
    cdef int registry_types          # bit per type index: 1 vaccination, 2 test, 4 recovery

    def __init__(self, store, rules, *, int leeway, Py_ssize_t cache_size, link_origins=()):
        _bind_api()
        if not hasattr(store, "replica"):
            raise TypeError("the store must expose a `replica` snapshot")
        # ValueError for a malformed origin URL
        self._links = LinkChecker(tuple(link_origins), verdict=_Verdict,
                                  reasons={c: _REASON[i] for i, c in enumerate(_CODES)})
        self._store = store
        self.cache = OrderedDict()
        self.cache_size = cache_size
        self._leeway = leeway
        self.technical_only = rules.technical_only
        self.full_course = rules.require_full_course
        self.vaccination_secs = rules.vaccination_days * DAY
        self.recovery_secs = rules.recovery_days * DAY
        self.test_secs = rules.test_hours * HOUR
        self.test_types = frozenset(rules.accepted_test_types)
        self.registry_types = 0
        for name in rules.registry_types:
            self.registry_types |= _TYPE_BITS[name]

    @property
    def cache_entries(self):
        return len(self.cache)

    def clear_cache(self):
        self.cache.clear()

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
        cdef object snap = self._store.replica    # the one snapshot of this scan
        if is_link(token):  # a register link (CONTRACT 1b): looked up, never decoded
            return self._links.check(token, _records(snap), now)
        cdef object trust = snap.trust
        cdef PyObject* hit = NULL
        cdef _Proof proof
        cdef bint cacheable = type(token) is str or type(token) is bytes
        if cacheable and self.cache_size:
            hit = PyDict_GetItem(self.cache, token)
        if hit != NULL and (<_Proof>hit).trust is trust:
            proof = <_Proof>hit
            self.hits += 1
            try:
                self.cache.move_to_end(token)
            except KeyError:  # evicted meanwhile by another thread
                pass
        else:
            self.misses += 1
            proof = self._prove(token, trust)
            if cacheable and self.cache_size and proof.d is not None:
                self.cache[token] = proof
                if len(self.cache) > self.cache_size:
                    self.cache.popitem(last=False)
        return self._judge(proof, snap, now)

    cdef _Proof _prove(self, object token, object trust):
        cdef Decoded d
        cdef object key, types, nb, na
        try:
            d = decode_token(token, MAX_INFLATED)
        except DecodeError as exc:
            return _proof(trust, None, _CODE_OF.get(exc.reason, R_BAD_COSE), False)
        except Exception:  # fail closed on anything unforeseen
            return _proof(trust, None, R_BAD_COSE, False)
        if d.kid is None:
            return _proof(trust, d, R_UNKNOWN_KEY, False)
        candidates = trust.candidates(d.kid)
        if not candidates:
            return _proof(trust, d, R_UNKNOWN_KEY, False)
        for key in candidates:  # kids can collide: any key with this kid may verify
            if key.verify(d.alg, d.signature, d.sig_structure):
                break
        else:
            return _proof(trust, d, R_BAD_SIGNATURE, False)
        if not d.payload_ok:
            return _proof(trust, d, R_BAD_PAYLOAD, False)
        types = key.types
        if types is not None and d.cert_type not in types:
            return _proof(trust, d, R_KEY_USAGE, True)
        nb = key.not_before
        na = key.not_after
        if (nb is not None and d.iat < nb) or (na is not None and d.exp > na):
            return _proof(trust, d, R_KEY_EXPIRED, True)
        return _proof(trust, d, -1, True)

    cdef object _judge(self, _Proof p, object snap, int64_t now):
        cdef Decoded d = p.d
        cdef int reason = -1
        cdef int64_t until
        if p.failure >= 0:
            if p.holder is None:
                return _invalid(p.failure)
            return _Verdict(<object>_REASON[p.failure], p.holder,
                            (p.ctype, p.issuer, p.iso(d.exp)))
        until = d.exp
        if now > d.exp + self._leeway:
            reason = R_TOKEN_EXPIRED
        elif d.iat > now + self._leeway:
            reason = R_TOKEN_NOT_YET_VALID
        else:
            reason = self._store_checks(d, snap)
            if reason < 0:
                reason = self._rules(d, now, &until)
        return _Verdict(None if reason < 0 else <object>_REASON[reason], p.holder,
                        (p.ctype, p.issuer, p.iso(until)))

    cdef int _store_checks(self, Decoded d, object snap) except -2:
        """Revocation (UCI, country+UCI, signature) and, where the rules want it, the
        registry set (absent set = not loaded = no requirement)."""
        cdef object registry
        cdef HashSet revoked = <HashSet?>snap.revoked
        if (_has(revoked, d.uci_hash) or _has(revoked, d.cuci_hash)
                or _has(revoked, d.sig_hash)):
            return R_REVOKED
        if (self.registry_types >> d.type_index) & 1:
            registry = snap.registry
            if registry is not None and not _has(<HashSet?>registry, d.uci_hash):
                return R_NOT_IN_REGISTRY
        return -1

    cdef int _rules(self, Decoded d, int64_t now, int64_t* until):
        """Acceptance rules; windows include both ends, no leeway. Sets the end of
        validity (capped by the token's exp) in until[0]."""
        cdef int64_t start, end
        if self.technical_only:
            return -1
        if d.type_index == 0:
            if self.full_course and d.dn < d.sd:
                return R_VACCINATION_INCOMPLETE
            start = d.dt
            end = start + self.vaccination_secs
            until[0] = min(end, d.exp)
            if now < start:
                return R_VACCINATION_NOT_YET_VALID
            if now > end:
                return R_VACCINATION_EXPIRED
            return -1
        if d.type_index == 1:
            if d.tr != NEGATIVE:
                return R_TEST_POSITIVE
            if d.tt not in self.test_types:
                return R_TEST_TYPE_NOT_ACCEPTED
            start = d.sc
            end = start + self.test_secs
            until[0] = min(end, d.exp)
            if now < start:
                return R_TEST_IN_FUTURE
            if now > end:
                return R_TEST_EXPIRED
            return -1
        # recovery: recovery_days from fr, and only inside df..du (du is the last valid day)
        start = max(d.fr, d.df)
        end = min(d.fr + self.recovery_secs, d.du + DAY)
        until[0] = min(end, d.exp)
        if now < start:
            return R_RECOVERY_NOT_YET_VALID
        if now > end:
            return R_RECOVERY_EXPIRED
        return -1
