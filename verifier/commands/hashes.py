"""`qrverify hashes`: the revocation and registry entries of tokens.

For each token (argument, or one per line on stdin) its entries as JSON Lines, the
streamed form of a revocations file (CONTRACT section 4, verifier.revocations), so the
output for any number of tokens is one file that `verify`/`serve --revocations` and
`sync --revocations` (or `sync --remove`) read as it is:

    {"type": "UCI", "hash": ...}
    {"type": "COUNTRYCODEUCI", "hash": ...}
    {"type": "SIGNATURE", "hash": ...}
    {"registry": "<UCI hash>"}

`--only revoked` leaves the registry lines out (to revoke tokens without creating a
registry set: a verifier that holds one requires recovery and test certificates to be
in it), `--only registry` prints only them. An operator builds revocation and registry
files without computing SHA-256 by hand.
When the token's `iss` and `co` differ, the COUNTRYCODEUCI hash of each is listed (issuers
disagreed on which one to hash). The hashes identify a certificate without revealing it
(they are what the EU revocation service distributes), so printing them is fine; the
token's fields themselves are not printed.

The token must decode and carry a schema-valid payload; its signature is not checked
(revoking a token does not depend on trusting its issuer). A token that does not decode
prints nothing on stdout (the file stays readable) and one line on stderr naming its
position and reason code, `qrverify hashes: token 2: bad_base45`; the exit status is 1.
"""

from __future__ import annotations

import argparse
import base64
import sys
from typing import Any

import orjson

from verifier.commands._common import EXIT_INVALID, EXIT_OK, fail

PROG = "qrverify hashes"
_WHITESPACE = b" \t\r\n"
_BOM = b"\xef\xbb\xbf"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("tokens", nargs="*", metavar="TOKEN", help="HC1 tokens (else stdin)")
    parser.add_argument(
        "--only",
        choices=("revoked", "registry"),
        default=None,
        help="print only the revoked entries or only the registry entries (default both)",
    )


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


def lines(result: dict[str, Any], only: str | None = None) -> bytes:
    """The JSON Lines of one token's entries (verifier.revocations' streamed form)."""
    out: list[bytes] = []
    if only != "registry":
        out += [orjson.dumps(entry) for entry in result["revoked"]]
    if only != "revoked":
        out += [orjson.dumps({"registry": value}) for value in result["registry"]]
    return b"".join(line + b"\n" for line in out)


def run(args: argparse.Namespace) -> int:
    from verifier.commands.verify import stdin_tokens

    tokens = args.tokens if args.tokens else stdin_tokens(sys.stdin.buffer)
    out = sys.stdout.buffer
    status = EXIT_OK
    for number, token in enumerate(tokens, 1):
        result = {"error": "too_large"} if token is None else entries(token)
        if "error" in result:
            out.flush()
            status = fail(PROG, f"token {number}: {result['error']}", EXIT_INVALID)
            continue
        out.write(lines(result, args.only))
    out.flush()
    return status
