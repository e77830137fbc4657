# cython: language_level=3
"""The verification engine: everything a scan does after the bytes arrive.

`Engine.verify(token, at)`:
  1. re-scan cache, keyed on the whole token and on the trust registry object the token
     was proven against (a key change proves it again);
  2. on a miss, prove: decode (fastpath._decode), find the keys for the kid, verify the
     signature (IssuerKey.verify, i.e. cryptography), then payload, key usage and key
     validity; the result (a `_Proof`) is cached, failures included;
  3. on every scan: the clock (with leeway), the revocation and registry sets of the
     store's current replica (C-level HashSet lookups), and the acceptance rules.

The Python package above hands in its Verdict class, its Reason members and the rules'
knobs, so this module imports nothing from it. Reason precedence is the contract's: the
first check that fails is reported.
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

from fastpath._decode import MAX_INFLATED, DecodeError

cdef int64_t DAY = 86400
cdef int64_t HOUR = 3600
cdef str NEGATIVE = "260415000"      # SNOMED CT "Not detected"
_TYPE_BITS = {"vaccination": 1, "test": 2, "recovery": 4}


cdef class _Proof:
    """What one token proved against one trust registry. Immutable once built, but for
    the memo of its last valid-until text."""

    cdef object trust
    cdef Decoded d             # None when the token did not decode
    cdef object failure        # a Reason, or None when everything up to the key held
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


cdef _Proof _proof(object trust, Decoded d, object failure, bint verified):
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


cdef class Engine:
    """The compiled per-scan path of verifier.Verifier (which builds it)."""

    cdef object store
    cdef bint store_has_replica
    cdef object verdict
    cdef dict reasons
    cdef object to_epoch
    cdef object cache
    cdef Py_ssize_t cache_size
    cdef int64_t leeway
    cdef readonly long long hits, misses
    cdef object links                # fastpath._links.LinkChecker, or None
    # rules
    cdef bint technical_only, full_course
    cdef int64_t vaccination_secs, recovery_secs, test_secs
    cdef frozenset test_types
    cdef int registry_types          # bit per type index: 1 vaccination, 2 test, 4 recovery

    def __init__(self, store, rules, *, int leeway, Py_ssize_t cache_size, verdict,
                 reasons, to_epoch, links=None):
        self.store = store
        self.links = links
        self.store_has_replica = hasattr(store, "replica")
        self.verdict = verdict
        self.reasons = dict(reasons)
        self.to_epoch = to_epoch
        self.cache = OrderedDict()
        self.cache_size = cache_size
        self.leeway = leeway
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
        """Verify one token at `at` (None = now, a datetime, or epoch seconds)."""
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
        return self.to_epoch(at)

    cdef object _verify(self, object token, int64_t now):
        if self.links is not None and is_link(token):  # register link (CONTRACT 1b)
            return (<LinkChecker>self.links).check(token, self._records(), now)
        cdef object trust = self.store.trust
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
        return self._judge(proof, now)

    cdef RecordTable _records(self):
        cdef object holder = self.store.replica if self.store_has_replica else self.store
        cdef object records = getattr(holder, "records", None)
        return None if records is None else <RecordTable?>records

    cdef _Proof _prove(self, object token, object trust):
        cdef Decoded d
        cdef object key, types, nb, na
        try:
            d = decode_token(token, MAX_INFLATED)
        except DecodeError as exc:
            return _proof(trust, None, self.reasons[exc.reason], False)
        except Exception:  # fail closed on anything unforeseen
            return _proof(trust, None, self.reasons["bad_cose"], False)
        if d.kid is None:
            return _proof(trust, d, self.reasons["unknown_key"], False)
        candidates = trust.candidates(d.kid)
        if not candidates:
            return _proof(trust, d, self.reasons["unknown_key"], False)
        for key in candidates:  # kids can collide: any key with this kid may verify
            if key.verify(d.alg, d.signature, d.sig_structure):
                break
        else:
            return _proof(trust, d, self.reasons["bad_signature"], False)
        if not d.payload_ok:
            return _proof(trust, d, self.reasons["bad_payload"], False)
        types = key.types
        if types is not None and d.cert_type not in types:
            return _proof(trust, d, self.reasons["key_usage"], True)
        nb = key.not_before
        na = key.not_after
        if (nb is not None and d.iat < nb) or (na is not None and d.exp > na):
            return _proof(trust, d, self.reasons["key_expired"], True)
        return _proof(trust, d, None, True)

    cdef object _judge(self, _Proof p, int64_t now):
        cdef Decoded d = p.d
        cdef object reason = None
        cdef int64_t until
        if p.failure is not None:
            if p.holder is None:
                return self.verdict(p.failure)
            return self.verdict(p.failure, p.holder, (p.ctype, p.issuer, p.iso(d.exp)))
        until = d.exp
        if now > d.exp + self.leeway:
            reason = self.reasons["token_expired"]
        elif d.iat > now + self.leeway:
            reason = self.reasons["token_not_yet_valid"]
        else:
            reason = self._store_checks(d)
            if reason is None:
                reason = self._rules(d, now, &until)
        return self.verdict(reason, p.holder, (p.ctype, p.issuer, p.iso(until)))

    cdef object _store_checks(self, Decoded d):
        """Revocation (UCI, country+UCI, signature) and, where the rules want it, the
        registry set (absent set = not loaded = no requirement)."""
        cdef object replica, registry, found
        cdef HashSet revoked
        cdef bint want_registry = (self.registry_types >> d.type_index) & 1
        if self.store_has_replica:
            replica = self.store.replica
            revoked = <HashSet?>replica.revoked
            if (_has(revoked, d.uci_hash) or _has(revoked, d.cuci_hash)
                    or _has(revoked, d.sig_hash)):
                return self.reasons["revoked"]
            if want_registry:
                registry = replica.registry
                if registry is not None and not _has(<HashSet?>registry, d.uci_hash):
                    return self.reasons["not_in_registry"]
            return None
        if self.store.is_revoked(d.uci_hash, d.cuci_hash, d.sig_hash):
            return self.reasons["revoked"]
        if want_registry:
            found = self.store.in_registry(d.uci_hash)
            if found is not None and not found:
                return self.reasons["not_in_registry"]
        return None

    cdef object _rules(self, Decoded d, int64_t now, int64_t* until):
        """Acceptance rules; windows include both ends, no leeway. Sets the end of
        validity (capped by the token's exp) in until[0]."""
        cdef int64_t start, end
        if self.technical_only:
            return None
        if d.type_index == 0:
            if self.full_course and d.dn < d.sd:
                return self.reasons["vaccination_incomplete"]
            start = d.dt
            end = start + self.vaccination_secs
            until[0] = min(end, d.exp)
            if now < start:
                return self.reasons["vaccination_not_yet_valid"]
            if now > end:
                return self.reasons["vaccination_expired"]
            return None
        if d.type_index == 1:
            if d.tr != NEGATIVE:
                return self.reasons["test_positive"]
            if d.tt not in self.test_types:
                return self.reasons["test_type_not_accepted"]
            start = d.sc
            end = start + self.test_secs
            until[0] = min(end, d.exp)
            if now < start:
                return self.reasons["test_in_future"]
            if now > end:
                return self.reasons["test_expired"]
            return None
        # recovery: recovery_days from fr, and only inside df..du (du is the last valid day)
        start = max(d.fr, d.df)
        end = min(d.fr + self.recovery_secs, d.du + DAY)
        until[0] = min(end, d.exp)
        if now < start:
            return self.reasons["recovery_not_yet_valid"]
        if now > end:
            return self.reasons["recovery_expired"]
        return None
