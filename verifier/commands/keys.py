"""`qrverify keys new` and `qrverify keys trust`: development issuers and trust files."""

from __future__ import annotations

import argparse
import base64
import json
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID

from keys._files import read_capped
from keys._x509 import CERT_TYPES
from keys.issuer import ALGORITHMS, CERT_FILE, MAX_DAYS, IssuerError, new_issuer
from keys.registry import TrustFileError, TrustRegistry
from verifier.commands._common import EXIT_OK, fail

__all__ = ["add_arguments", "run"]

_MAX_CERT_BYTES = 1 << 20


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    new = sub.add_parser(
        "new",
        help="create an issuer key and self-signed certificate",
        description="Write DIR/issuer.key (PEM PKCS#8, mode 0600) and "
        "DIR/issuer.crt (PEM X.509). Never overwrites a key.",
    )
    new.add_argument(
        "--country",
        required=True,
        metavar="CC",
        help="ISO 3166 two-letter country code of the issuer, e.g. RU (case does not matter)",
    )
    new.add_argument("--out", required=True, metavar="DIR", help="directory to write to")
    new.add_argument(
        "--alg", choices=ALGORITHMS, default="ES256", help="signature algorithm (default ES256)"
    )
    new.add_argument(
        "--types",
        metavar="LIST",
        help="comma-separated certificate types the key may sign "
        f"({','.join(CERT_TYPES)}); default: all, no key-usage extension",
    )
    new.add_argument(
        "--days",
        type=int,
        default=365,
        metavar="N",
        help="certificate validity in days from now (default 365)",
    )
    trust = sub.add_parser(
        "trust",
        help="print a trust registry file for certificates",
        description="Print trust-registry JSON with one entry per "
        "certificate (PEM or DER file, or an issuer directory).",
    )
    trust.add_argument("certs", nargs="+", metavar="CERT")


def run(args: argparse.Namespace) -> int:
    if args.action == "new":
        return _run_new(args)
    return _run_trust(args)


def _run_new(args: argparse.Namespace) -> int:
    prog = "qrverify keys new"
    types = None
    if args.types is not None:
        types = [t.strip() for t in args.types.split(",") if t.strip()]
        if not types:
            return fail(prog, "--types needs at least one of " + ",".join(CERT_TYPES))
    if not 1 <= args.days <= MAX_DAYS:
        return fail(prog, f"--days must be from 1 to {MAX_DAYS}")
    try:
        issuer = new_issuer(
            args.out,
            country=args.country.strip().upper(),
            alg=args.alg,
            types=types,
            days=args.days,
        )
    except IssuerError as exc:
        return fail(prog, str(exc))
    out = Path(args.out)
    kid = base64.b64encode(issuer.kid).decode("ascii")
    print(
        f"wrote {out / 'issuer.key'} and {out / CERT_FILE} "
        f"({issuer.alg}, country {issuer.country}, kid {kid})"
    )
    return EXIT_OK


def _load_certificate(path: Path) -> x509.Certificate:
    if path.is_dir():
        path = path / CERT_FILE
    data = read_capped(path, _MAX_CERT_BYTES, "certificate file", ValueError)
    try:
        if b"-----BEGIN" in data:
            return x509.load_pem_x509_certificate(data)
        return x509.load_der_x509_certificate(data)
    except ValueError:
        raise ValueError(f"{path}: not a PEM or DER X.509 certificate") from None


def _run_trust(args: argparse.Namespace) -> int:
    prog = "qrverify keys trust"
    entries = []
    for name in args.certs:
        try:
            cert = _load_certificate(Path(name))
        except ValueError as exc:
            return fail(prog, str(exc))
        der = cert.public_bytes(serialization.Encoding.DER)
        entry = {"certificate": base64.b64encode(der).decode("ascii")}
        countries = cert.subject.get_attributes_for_oid(NameOID.COUNTRY_NAME)
        if len(countries) == 1:  # else the verifier loads the key with no country
            entry["country"] = str(countries[0].value).strip().upper()
        entries.append(entry)
    document = {"keys": entries}
    try:  # exactly what a verifier will do with it: refuse to print an unloadable file
        TrustRegistry.from_dict(document, strict=True)
    except TrustFileError as exc:
        index = str(exc).split("keys[", 1)[-1].split("]", 1)[0]
        where = args.certs[int(index)] if index.isdigit() else "input"
        return fail(prog, f"{where}: {str(exc).split(': ', 2)[-1]}")
    print(json.dumps(document, indent=1))
    return EXIT_OK
