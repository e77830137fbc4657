"""`qrverify issue`: sign a health certificate and print its HC1 token."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import sys
import time
from pathlib import Path
from typing import Any

from keys._x509 import CERT_TYPES
from keys.issuer import IssuerError, load_issuer
from keys.qr import write_png
from keys.samples import sample_dcc
from keys.token import issue_token
from verifier.commands._common import EXIT_OK, fail

__all__ = ["add_arguments", "run"]

PROG = "qrverify issue"
TOKEN_LIFETIME = 365 * 86400
MAX_JSON_BYTES = 1 << 20
_DOB = re.compile(r"(19|20)\d\d(-\d\d(-\d\d)?)?")
_GROUPS = {"v": "vaccination", "r": "recovery", "t": "test"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--key",
        metavar="DIR",
        help="issuer directory with issuer.key and issuer.crt",
    )
    parser.add_argument(
        "--link",
        action="store_true",
        help="make a register record instead (appended to --records FILE) and print its link",
    )
    parser.add_argument(
        "--records",
        metavar="FILE",
        help="with --link: the register records file (JSON Lines, or CSV if it ends in .csv)",
    )
    parser.add_argument(
        "--type",
        choices=(*CERT_TYPES, "temporary"),
        dest="cert_type",
        help="certificate type (required unless --json is given)",
    )
    parser.add_argument(
        "--name",
        metavar='"FAMILY GIVEN"',
        help='holder name, family name first (default "IVANOV IVAN")',
    )
    parser.add_argument(
        "--dob", metavar="YYYY-MM-DD", help="holder date of birth (default 1980-01-01)"
    )
    parser.add_argument(
        "--json",
        metavar="PAYLOAD",
        help="the DCC payload as a JSON object, or @FILE to read it from a file",
    )
    parser.add_argument("--qr", metavar="OUT.png", help="also write the QR code picture here")


def _check_dob(dob: str) -> str:
    if not _DOB.fullmatch(dob):
        raise ValueError(f"--dob must be YYYY-MM-DD (1900-2099), got {dob!r}")
    if len(dob) == 10:
        dt.date.fromisoformat(dob)  # raises ValueError on 1980-02-31
    return dob


def _load_payload(spec: str) -> dict[str, Any]:
    if spec.startswith("@"):
        path = Path(spec[1:])
        try:
            with path.open("rb") as fh:
                raw = fh.read(MAX_JSON_BYTES + 1)
        except OSError as exc:
            raise ValueError(f"cannot read --json file {path}: {exc.strerror}") from None
        if len(raw) > MAX_JSON_BYTES:
            raise ValueError(f"--json file {path} is larger than {MAX_JSON_BYTES} bytes")
        source = f"--json file {path}"
    else:
        raw = spec.encode("utf-8")
        source = "--json"
    try:
        payload = json.loads(raw)
    except UnicodeDecodeError:
        raise ValueError(f"{source} is not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise ValueError(
            f"{source} is not valid JSON (line {exc.lineno} column {exc.colno}: {exc.msg})"
        ) from None
    except RecursionError:
        raise ValueError(f"{source} is nested too deeply") from None
    if not isinstance(payload, dict):
        raise ValueError(
            f"{source} must be a JSON object (a DCC payload), got {type(payload).__name__}"
        )
    return payload


def _run_link(args: argparse.Namespace) -> int:
    from keys.link_records import append_record, record_link, sample_record

    if args.records is None:
        return fail(PROG, "--link needs --records FILE")
    if args.key is not None or args.json is not None:
        return fail(PROG, "--link makes a register record: drop --key / --json")
    try:
        dob = _check_dob(args.dob if args.dob is not None else "1980-01-01")
        kwargs = {} if args.name is None else {"name": args.name}
        record = sample_record(args.cert_type or "vaccination", dob=dob, **kwargs)
        append_record(args.records, record)
    except ValueError as exc:
        return fail(PROG, str(exc))
    except OSError as exc:
        return fail(PROG, f"cannot write {args.records}: {exc.strerror}")
    link = record_link(record)
    if args.qr is not None:
        try:
            write_png(link, args.qr)
        except OSError as exc:
            return fail(PROG, f"cannot write {args.qr}: {exc.strerror}")
    print(link)
    return EXIT_OK


def run(args: argparse.Namespace) -> int:
    if args.link:
        return _run_link(args)
    if args.key is None:
        return fail(PROG, "--key DIR is required (or --link --records FILE)")
    if args.cert_type == "temporary":
        return fail(PROG, "--type temporary exists only for register records (--link)")
    try:
        issuer = load_issuer(args.key)
    except IssuerError as exc:
        return fail(PROG, str(exc))
    now = int(time.time())
    if args.json is not None:
        if args.name is not None or args.dob is not None:
            return fail(
                PROG, "--name and --dob cannot be combined with --json (put them in the payload)"
            )
        try:
            dcc = _load_payload(args.json)
        except ValueError as exc:
            return fail(PROG, str(exc))
        present = [_GROUPS[g] for g in _GROUPS if g in dcc]
        if args.cert_type is not None and present and present != [args.cert_type]:
            return fail(
                PROG, f"--type {args.cert_type} does not match the payload ({', '.join(present)})"
            )
    else:
        if args.cert_type is None:
            return fail(PROG, "--type is required (vaccination, recovery or test)")
        try:
            dob = _check_dob(args.dob if args.dob is not None else "1980-01-01")
            dcc = sample_dcc(
                args.cert_type,
                at=now,
                name=args.name if args.name is not None else "IVANOV IVAN",
                dob=dob,
                country=issuer.country,
            )
        except ValueError as exc:
            return fail(PROG, str(exc))
    if not issuer.not_before <= now < issuer.not_after:
        print(
            f"{PROG}: warning: the issuer certificate is not valid now; verifiers will "
            "reject this token",
            file=sys.stderr,
        )
    if (
        issuer.types is not None
        and args.cert_type is not None
        and args.cert_type not in issuer.types
    ):
        print(
            f"{PROG}: warning: the issuer certificate may not sign {args.cert_type} "
            "certificates; verifiers will reject this token",
            file=sys.stderr,
        )
    exp = max(now, min(now + TOKEN_LIFETIME, issuer.not_after))
    try:
        token = issue_token(issuer, dcc, iat=now, exp=exp)
    except (TypeError, ValueError) as exc:
        return fail(PROG, f"cannot encode the payload: {exc}")
    if args.qr is not None:
        try:
            write_png(token, args.qr)
        except OSError as exc:
            return fail(PROG, f"cannot write {args.qr}: {exc.strerror}")
        except ValueError as exc:  # qrcode: data too large for any QR version
            return fail(PROG, f"cannot make a QR code: {exc}")
    print(token)
    return EXIT_OK
