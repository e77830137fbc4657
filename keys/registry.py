"""Trust registry: the issuer public keys a verifier accepts, indexed by kid.

Loaded once from the contract's trust file (section 4) into ``cryptography`` key
objects; :meth:`IssuerKey.verify` is the hot path of every verification. Registries and
keys are immutable.

Leniency, as real issuers need it (CONTRACT section 4):
- An entry without ``country`` takes the certificate's subject ``C=``; where there is
  none (or no certificate), the key has no country.
- A certificate that is not strict DER (``cryptography`` loads it but refuses its
  extensions) still loads: the EU key-usage OIDs are read by the lenient reader of
  keys/_der.py. If that extension cannot be read either, the entry is unusable (never
  fail open: an unreadable key usage must not become "all types").
- An unusable entry is skipped: :attr:`TrustRegistry.skipped` lists one line per skipped
  entry (its index and kid, never personal data) for the caller to warn about and count.
  ``strict=True`` makes the first unusable entry raise :class:`TrustFileError`, as does a
  file whose every entry is unusable. A malformed file (not JSON, no "keys" list, too
  large) always raises.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, NoReturn

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.x509.oid import NameOID

from fastpath import ecdsa_der as _ecdsa_der
from keys._files import read_capped
from keys._x509 import CERT_TYPES, cert_kid, eku_types, validity
from verifier.errors import QrverifyError

__all__ = ["MAX_FILE_BYTES", "MAX_KEYS", "IssuerKey", "TrustFileError", "TrustRegistry"]

MAX_FILE_BYTES = 16 * 1024 * 1024
MAX_KEYS = 100_000
MAX_KID_BYTES = 64
MIN_RSA_BITS = 2048

ALG_ES256 = -7
ALG_EDDSA = -8
ALG_ES384 = -35
ALG_ES512 = -36
ALG_PS256 = -37

_ECDSA = {
    ALG_ES256: ec.ECDSA(hashes.SHA256()),
    ALG_ES384: ec.ECDSA(hashes.SHA384()),
    ALG_ES512: ec.ECDSA(hashes.SHA512()),
}
# curve name -> (COSE alg, size of r and of s in bytes)
_CURVES = {"secp256r1": (ALG_ES256, 32), "secp384r1": (ALG_ES384, 48), "secp521r1": (ALG_ES512, 66)}
_PSS = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
_SHA256 = hashes.SHA256()

_KIND_EC, _KIND_RSA, _KIND_ED25519 = 1, 2, 3

_COUNTRY = re.compile(r"[A-Z]{2}")
_ISO_Z = re.compile(r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.\d{1,9})?Z")
_TYPES = frozenset(CERT_TYPES)
_CERT_FIELDS = frozenset({"certificate", "country"})
_PK_FIELDS = frozenset({"public_key", "kid", "country", "types", "not_before", "not_after"})

PublicKey = ec.EllipticCurvePublicKey | rsa.RSAPublicKey | ed25519.Ed25519PublicKey


class TrustFileError(QrverifyError, ValueError):
    """The trust registry input is invalid; the message names the entry and the problem."""


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _iso(ts: int) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class IssuerKey:
    """One trusted issuer public key.

    Attributes (read-only): ``kid``, ``country``, ``types`` (None = all types),
    ``not_before``/``not_after`` (epoch seconds or None), ``alg`` (the COSE alg this
    key verifies), ``public_key``, ``certificate_der`` (None for a bare public key).
    """

    __slots__ = (
        "kid",
        "country",
        "types",
        "not_before",
        "not_after",
        "alg",
        "public_key",
        "certificate_der",
        "_kind",
        "_half",
        "_ecdsa",
        "_pub",
    )

    kid: bytes
    country: str | None
    types: frozenset[str] | None
    not_before: int | None
    not_after: int | None
    alg: int
    public_key: PublicKey
    certificate_der: bytes | None
    _kind: int
    _half: int
    _ecdsa: Any
    _pub: Any  # the same object as public_key, untyped for the dispatch in verify()

    def __init__(
        self,
        public_key: PublicKey,
        kid: bytes,
        *,
        country: str | None = None,
        types: Iterable[str] | None = None,
        not_before: int | None = None,
        not_after: int | None = None,
        certificate_der: bytes | None = None,
    ) -> None:
        """Wrap a ``cryptography`` public key. Raises ValueError for unsupported keys."""
        if not isinstance(kid, bytes) or not kid or len(kid) > MAX_KID_BYTES:
            raise ValueError(f"kid must be 1 to {MAX_KID_BYTES} bytes")
        half = 0
        ecdsa = None
        if isinstance(public_key, ec.EllipticCurvePublicKey):
            curve = _CURVES.get(public_key.curve.name)
            if curve is None:
                raise ValueError(f"unsupported EC curve {public_key.curve.name}")
            alg, half = curve
            kind = _KIND_EC
            ecdsa = _ECDSA[alg]
        elif isinstance(public_key, rsa.RSAPublicKey):
            if public_key.key_size < MIN_RSA_BITS:
                raise ValueError(
                    f"RSA key too small ({public_key.key_size} bits, need >= {MIN_RSA_BITS})"
                )
            alg, kind = ALG_PS256, _KIND_RSA
        elif isinstance(public_key, ed25519.Ed25519PublicKey):
            alg, kind = ALG_EDDSA, _KIND_ED25519
        else:
            raise ValueError(f"unsupported public key type {type(public_key).__name__}")
        type_set = None if types is None else frozenset(types)
        if type_set is not None and not type_set <= _TYPES:
            raise ValueError(f"unknown types {sorted(type_set - _TYPES)}")
        if not_before is not None and not_after is not None and not_before > not_after:
            raise ValueError("not_before is after not_after")
        setattr_ = object.__setattr__
        setattr_(self, "kid", kid)
        setattr_(self, "country", country)
        setattr_(self, "types", type_set)
        setattr_(self, "not_before", not_before)
        setattr_(self, "not_after", not_after)
        setattr_(self, "alg", alg)
        setattr_(self, "public_key", public_key)
        setattr_(self, "certificate_der", certificate_der)
        setattr_(self, "_kind", kind)
        setattr_(self, "_half", half)
        setattr_(self, "_ecdsa", ecdsa)
        setattr_(self, "_pub", public_key)

    def __setattr__(self, name: str, value: object) -> NoReturn:
        raise AttributeError("IssuerKey is immutable")

    def __delattr__(self, name: str) -> NoReturn:
        raise AttributeError("IssuerKey is immutable")

    def __repr__(self) -> str:
        types = "all" if self.types is None else ",".join(t for t in CERT_TYPES if t in self.types)
        return (
            f"IssuerKey(kid={self.kid.hex()}, alg={self.alg}, country={self.country}, "
            f"types={types})"
        )

    @classmethod
    def from_certificate(cls, der: bytes, country: str | None = None) -> IssuerKey:
        """A key from a DER X.509 certificate: kid, validity and types come from it."""
        der = bytes(der)
        cert = x509.load_der_x509_certificate(der)
        not_before, not_after = validity(cert)
        public_key = cert.public_key()
        if not isinstance(
            public_key, (ec.EllipticCurvePublicKey, rsa.RSAPublicKey, ed25519.Ed25519PublicKey)
        ):
            raise ValueError(f"unsupported public key type {type(public_key).__name__}")
        return cls(
            public_key,
            cert_kid(der),
            country=country,
            types=eku_types(cert, der),
            not_before=not_before,
            not_after=not_after,
            certificate_der=der,
        )

    def verify(self, alg: int, signature: bytes, data: bytes) -> bool:
        """True if ``signature`` (raw COSE form) over ``data`` is valid under COSE ``alg``.

        Never raises: a wrong alg for this key, a malformed signature or any error is False.
        """
        if alg != self.alg:
            return False
        try:
            kind = self._kind
            if kind == _KIND_EC:
                half = self._half
                if len(signature) != half + half:
                    return False
                self._pub.verify(_ecdsa_der(signature), data, self._ecdsa)
            elif kind == _KIND_RSA:
                self._pub.verify(signature, data, _PSS, _SHA256)
            else:
                self._pub.verify(signature, data)
        except InvalidSignature:
            return False
        except Exception:  # noqa: BLE001 - contract: verify never raises
            return False
        return True

    def to_dict(self) -> dict[str, Any]:
        """This key as a trust-file entry."""
        if self.certificate_der is not None:
            entry: dict[str, Any] = {"certificate": _b64(self.certificate_der)}
            if self.country is not None:
                entry["country"] = self.country
            return entry
        spki = self.public_key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        entry = {"public_key": _b64(spki), "kid": _b64(self.kid)}
        if self.country is not None:
            entry["country"] = self.country
        if self.types is not None:
            entry["types"] = [t for t in CERT_TYPES if t in self.types]
        if self.not_before is not None:
            entry["not_before"] = _iso(self.not_before)
        if self.not_after is not None:
            entry["not_after"] = _iso(self.not_after)
        return entry


# -- parsing -----------------------------------------------------------------------


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _kid_label(obj: Mapping[str, Any]) -> str:
    """ " (kid <base64>)" for an entry whose kid can be told, else "" (no personal data:
    the kid is a hash of the issuer's certificate or the issuer's own identifier)."""
    try:
        if isinstance(obj.get("certificate"), str):
            der = base64.b64decode(obj["certificate"].encode("ascii"), validate=True)
            return f" (kid {_b64(cert_kid(der))})" if der else ""
        if isinstance(obj.get("kid"), str):
            kid = base64.b64decode(obj["kid"].encode("ascii"), validate=True)
            return f" (kid {_b64(kid)})" if 0 < len(kid) <= MAX_KID_BYTES else ""
    except (binascii.Error, UnicodeEncodeError, ValueError):
        pass
    return ""


def _subject_country(cert: x509.Certificate) -> str | None:
    """The certificate subject's single C=, upper-cased, if it is two letters."""
    try:
        values = cert.subject.get_attributes_for_oid(NameOID.COUNTRY_NAME)
    except ValueError:
        return None
    if len(values) != 1:
        return None
    raw = values[0].value
    text = raw.strip().upper() if isinstance(raw, str) else ""
    return text if _COUNTRY.fullmatch(text) else None


class _Entry:
    """Error context for one entry of the "keys" list."""

    def __init__(self, index: int, obj: Mapping[str, Any]) -> None:
        self.index = index
        self.obj = obj

    def fail(self, message: str) -> NoReturn:
        raise TrustFileError(f"trust file: keys[{self.index}]: {message}{_kid_label(self.obj)}")

    def base64(self, field: str) -> bytes:
        value = self.obj[field]
        if not isinstance(value, str) or not value:
            self.fail(f'"{field}" must be a non-empty base64 string')
        try:
            return base64.b64decode(value.encode("ascii"), validate=True)
        except (binascii.Error, UnicodeEncodeError, ValueError):
            self.fail(f'"{field}" is not valid base64')

    def time(self, field: str) -> int | None:
        if field not in self.obj:
            return None
        value = self.obj[field]
        m = _ISO_Z.fullmatch(value) if isinstance(value, str) else None
        if m is None:
            self.fail(
                f'"{field}" must be an ISO 8601 UTC time like 2021-01-01T00:00:00Z, '
                f"got {_short(value)}"
            )
        try:
            y, mo, d, h, mi, s = (int(g) for g in m.groups())
            when = dt.datetime(y, mo, d, h, mi, s, tzinfo=dt.UTC)
        except ValueError:
            self.fail(f'"{field}" is not a valid date and time: {_short(value)}')
        return int(when.timestamp())


def _parse_entry(index: int, obj: object) -> IssuerKey:
    if not isinstance(obj, dict):
        raise TrustFileError(f"trust file: keys[{index}]: entry must be an object")
    e = _Entry(index, obj)
    has_cert, has_pk = "certificate" in obj, "public_key" in obj
    if has_cert == has_pk:
        e.fail('needs exactly one of "certificate" or "public_key"')
    allowed = _CERT_FIELDS if has_cert else _PK_FIELDS
    unknown = sorted(set(obj) - allowed)
    if unknown:
        derived = has_cert and set(unknown) <= _PK_FIELDS
        hint = " (they come from the certificate)" if derived else ""
        e.fail(f"unexpected field(s) {', '.join(map(repr, unknown))}{hint}")
    country = obj.get("country")
    if "country" in obj and (not isinstance(country, str) or not _COUNTRY.fullmatch(country)):
        e.fail(f'"country" must be two upper-case letters, got {_short(country)}')

    public_key: object
    not_before: int | None
    not_after: int | None
    if has_cert:
        der = e.base64("certificate")
        try:
            cert = x509.load_der_x509_certificate(der)
        except ValueError:
            e.fail('"certificate" is not a DER X.509 certificate')
        try:
            types = eku_types(cert, der)
        except ValueError as exc:
            e.fail(f"the certificate's extended key usage cannot be read: {exc}")
        try:
            public_key = cert.public_key()
            not_before, not_after = validity(cert)
        except (ValueError, UnsupportedAlgorithm) as exc:
            e.fail(f"certificate cannot be used: {exc}")
        kid = cert_kid(der)
        cert_der: bytes | None = der
        if "country" not in obj:
            country = _subject_country(cert)
    else:
        spki = e.base64("public_key")
        try:
            public_key = serialization.load_der_public_key(spki)
        except (ValueError, UnsupportedAlgorithm):
            e.fail('"public_key" is not a DER SubjectPublicKeyInfo')
        if "kid" not in obj:
            e.fail('"kid" is required with "public_key"')
        kid = e.base64("kid")
        if len(kid) > MAX_KID_BYTES:
            e.fail(f'"kid" is longer than {MAX_KID_BYTES} bytes')
        types = None
        if "types" in obj:
            raw = obj["types"]
            if not isinstance(raw, list) or not all(isinstance(t, str) for t in raw):
                e.fail('"types" must be a list of strings')
            if not raw:
                e.fail('"types" must not be empty (leave it out to allow all types)')
            bad = [t for t in raw if t not in _TYPES]
            if bad:
                e.fail(
                    f'unknown type {_short(bad[0])} in "types"; expected {", ".join(CERT_TYPES)}'
                )
            if len(set(raw)) != len(raw):
                e.fail('duplicate type in "types"')
            types = frozenset(raw)
        not_before, not_after = e.time("not_before"), e.time("not_after")
        if not_before is not None and not_after is not None and not_before >= not_after:
            e.fail('"not_before" must be earlier than "not_after"')
        cert_der = None

    if not isinstance(
        public_key, (ec.EllipticCurvePublicKey, rsa.RSAPublicKey, ed25519.Ed25519PublicKey)
    ):
        e.fail(
            f"unsupported key type {type(public_key).__name__.lstrip('_')} "
            "(supported: EC P-256/P-384/P-521, RSA >= 2048 bits, Ed25519)"
        )
    try:
        return IssuerKey(
            public_key,
            kid,
            country=country,
            types=types,
            not_before=not_before,
            not_after=not_after,
            certificate_der=cert_der,
        )
    except ValueError as exc:
        e.fail(str(exc))


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise TrustFileError(f"trust file: duplicate field {_short(key)} in an object")
        result[key] = value
    return result


class TrustRegistry:
    """An immutable set of issuer keys, looked up by kid (collisions allowed)."""

    __slots__ = ("_keys", "_by_kid", "_skipped")

    _keys: tuple[IssuerKey, ...]
    _by_kid: dict[bytes, tuple[IssuerKey, ...]]
    _skipped: tuple[str, ...]

    def __init__(self, keys: Iterable[IssuerKey] = (), skipped: Iterable[str] = ()) -> None:
        items = tuple(keys)
        if len(items) > MAX_KEYS:
            raise TrustFileError(f"trust file: too many keys ({len(items)} > {MAX_KEYS})")
        by_kid: dict[bytes, list[IssuerKey]] = {}
        for key in items:
            if not isinstance(key, IssuerKey):
                raise TypeError("TrustRegistry holds IssuerKey objects only")
            by_kid.setdefault(key.kid, []).append(key)
        object.__setattr__(self, "_keys", items)
        object.__setattr__(self, "_by_kid", {k: tuple(v) for k, v in by_kid.items()})
        object.__setattr__(self, "_skipped", tuple(skipped))

    def __setattr__(self, name: str, value: object) -> NoReturn:
        raise AttributeError("TrustRegistry is immutable")

    def __delattr__(self, name: str) -> NoReturn:
        raise AttributeError("TrustRegistry is immutable")

    # -- constructors -----------------------------------------------------------------

    @classmethod
    def empty(cls) -> TrustRegistry:
        return cls(())

    @classmethod
    def from_keys(cls, keys: Iterable[IssuerKey]) -> TrustRegistry:
        return cls(keys)

    @classmethod
    def from_dict(cls, obj: object, *, strict: bool = False) -> TrustRegistry:
        """Parse the trust-file structure ``{"keys": [...]}`` (already JSON-decoded).

        Unusable entries are skipped (see :attr:`skipped`) unless ``strict``."""
        if not isinstance(obj, dict):
            raise TrustFileError("trust file: top level must be a JSON object")
        unknown = sorted(set(obj) - {"keys"})
        if unknown:
            raise TrustFileError(
                f"trust file: unexpected top-level field(s) {', '.join(map(_short, unknown))}"
            )
        if "keys" not in obj:
            raise TrustFileError('trust file: missing "keys" list')
        entries = obj["keys"]
        if not isinstance(entries, list):
            raise TrustFileError('trust file: "keys" must be a list')
        if len(entries) > MAX_KEYS:
            raise TrustFileError(f"trust file: too many keys ({len(entries)} > {MAX_KEYS})")
        keys: list[IssuerKey] = []
        skipped: list[str] = []
        for index, entry in enumerate(entries):
            try:
                keys.append(_parse_entry(index, entry))
            except TrustFileError as exc:
                if strict:
                    raise
                skipped.append(str(exc))
        if skipped and not keys:
            more = f" (and {len(skipped) - 1} more unusable entries)" if len(skipped) > 1 else ""
            raise TrustFileError(f"{skipped[0]}{more}; no usable key left")
        return cls(keys, skipped)

    @classmethod
    def from_json(cls, data: bytes | str, *, strict: bool = False) -> TrustRegistry:
        """Parse trust-file JSON text or bytes (at most 16 MiB)."""
        if len(data) > MAX_FILE_BYTES:
            raise TrustFileError(f"trust file: larger than {MAX_FILE_BYTES} bytes")
        if isinstance(data, str):
            data = data.encode("utf-8", "surrogatepass")
            if len(data) > MAX_FILE_BYTES:
                raise TrustFileError(f"trust file: larger than {MAX_FILE_BYTES} bytes")
        try:
            obj = json.loads(data, object_pairs_hook=_reject_duplicates)
        except UnicodeDecodeError:
            raise TrustFileError("trust file: not UTF-8 text") from None
        except RecursionError:
            raise TrustFileError("trust file: nested too deeply") from None
        except json.JSONDecodeError as exc:
            raise TrustFileError(
                f"trust file: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
            ) from None
        return cls.from_dict(obj, strict=strict)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str], *, strict: bool = False) -> TrustRegistry:
        """Load a trust-registry JSON file (unusable entries skipped unless ``strict``)."""
        data = read_capped(path, MAX_FILE_BYTES, "trust file", TrustFileError)
        return cls.from_json(data, strict=strict)

    # -- queries ------------------------------------------------------------------------

    def candidates(self, kid: bytes) -> tuple[IssuerKey, ...]:
        """Every key with this kid (empty tuple if none)."""
        return self._by_kid.get(kid, ())

    @property
    def keys(self) -> tuple[IssuerKey, ...]:
        return self._keys

    @property
    def skipped(self) -> tuple[str, ...]:
        """One line per unusable entry that was skipped while loading (index, kid, why)."""
        return self._skipped

    def __len__(self) -> int:
        return len(self._keys)

    def __iter__(self) -> Iterator[IssuerKey]:
        return iter(self._keys)

    def __contains__(self, kid: object) -> bool:
        return kid in self._by_kid

    def __repr__(self) -> str:
        return f"TrustRegistry({len(self._keys)} keys)"

    def to_dict(self) -> dict[str, Any]:
        """The contract's trust-file structure; ``from_dict(to_dict())`` is equivalent."""
        return {"keys": [key.to_dict() for key in self._keys]}

    def to_json(self) -> bytes:
        return json.dumps(self.to_dict(), indent=1).encode("utf-8") + b"\n"
