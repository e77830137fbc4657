"""`qrverify hashes`: the revocation and registry entries of tokens.

For each token (argument, or one per line on stdin) one JSON line in the shape of a
revocations file (CONTRACT section 4):

    {"revoked": [{"type": "UCI", "hash": ...}, {"type": "COUNTRYCODEUCI", "hash": ...},
                 {"type": "SIGNATURE", "hash": ...}], "registry": ["<UCI hash>"]}

so an operator builds revocation and registry files without computing SHA-256 by hand.
When the token's `iss` and `co` differ, the COUNTRYCODEUCI hash of each is listed (issuers
disagreed on which one to hash). The hashes identify a certificate without revealing it
(they are what the EU revocation service distributes), so printing them is fine; the
token's fields themselves are not printed.

The token must decode and carry a schema-valid payload; its signature is not checked
(revoking a token does not depend on trusting its issuer). A token that does not decode
prints `{"error": "<reason code>"}` in its place and the exit status is 1.
"""

from __future__ import annotations

import argparse
import base64
import sys
from typing import Any

import orjson

from verifier.commands._common import EXIT_INVALID, EXIT_OK

PROG = "qrverify hashes"
_WHITESPACE = b" \t\r\n"
_BOM = b"\xef\xbb\xbf"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("tokens", nargs="*", metavar="TOKEN", help="HC1 tokens (else stdin)")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _clean(token: bytes) -> bytes:
    """The input hygiene of CONTRACT section 1: whitespace, a BOM, the prefix's case and
    its percent-encoded form."""
    token = token.strip(_WHITESPACE)
    if token.startswith(_BOM):
        token = token[len(_BOM) :].strip(_WHITESPACE)
    head = token[:6].upper()
    if head.startswith(b"HC1%3A"):
        token = b"HC1:" + token[6:]
    elif head.startswith(b"HC1:"):
        token = b"HC1:" + token[4:]
    return token


def entries(token: str | bytes) -> dict[str, Any]:
    """The revocations-file entries of one token, or {"error": reason}."""
    import fastpath
    from fastpath import DecodeError

    raw = token.encode("utf-8", "surrogateescape") if isinstance(token, str) else token
    try:
        d = fastpath.decode(_clean(raw))
    except DecodeError as exc:
        return {"error": exc.reason}
    if not d.payload_ok or d.uci_hash is None or d.cuci_hash is None or d.sig_hash is None:
        return {"error": "bad_payload"}
    revoked = [
        {"type": "UCI", "hash": _b64(d.uci_hash)},
        {"type": "COUNTRYCODEUCI", "hash": _b64(d.cuci_hash)},
    ]
    if d.iss and d.co and d.iss != d.co and d.ci is not None:
        other = fastpath.sha256_16(d.ci.encode("utf-8"), d.co.encode("utf-8"))
        revoked.append({"type": "COUNTRYCODEUCI", "hash": _b64(other)})
    revoked.append({"type": "SIGNATURE", "hash": _b64(d.sig_hash)})
    return {"revoked": revoked, "registry": [_b64(d.uci_hash)]}


def run(args: argparse.Namespace) -> int:
    from verifier.commands.verify import stdin_tokens

    tokens = args.tokens if args.tokens else stdin_tokens(sys.stdin.buffer)
    out = sys.stdout.buffer
    status = EXIT_OK
    for token in tokens:
        result = {"error": "too_large"} if token is None else entries(token)
        if "error" in result:
            status = EXIT_INVALID
        out.write(orjson.dumps(result) + b"\n")
    out.flush()
    return status
