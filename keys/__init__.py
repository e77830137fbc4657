"""Issuer keys, the trust registry and token issuing for qrverify (a library; the
``qrverify keys`` and ``qrverify issue`` commands are in verifier/commands/).

- :mod:`keys.registry`: ``TrustRegistry`` / ``IssuerKey`` (trusted public keys, verify).
- :mod:`keys.issuer`: development issuers (key + self-signed certificate).
- :mod:`keys.token`: HC1 tokens (CWT -> COSE_Sign1 -> zlib -> Base45), built with
  cbor2, :mod:`keys.cose` and :mod:`keys.base45`; :mod:`keys.cbor` (a hand-written
  encoder) only builds malformed test vectors.
- :mod:`keys.samples`, :mod:`keys.demo`, :mod:`keys.qr`: sample payloads, a ready demo, QR PNGs.
"""
