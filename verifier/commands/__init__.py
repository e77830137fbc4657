"""`qrverify` command line: a thin dispatcher over one module per command.

Each command module in this package exposes
    add_arguments(parser: argparse.ArgumentParser) -> None
    run(args: argparse.Namespace) -> int
and is imported only when called, so `qrverify verify` never loads the HTTP stack.
Exit codes, the error line and the shared options live in `_common`.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from verifier.commands._common import EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, fail
from verifier.errors import QrverifyError

__all__ = ["COMMANDS", "main", "version"]

COMMANDS: dict[str, str] = {
    "serve": "run the HTTP verification service",
    "verify": "verify tokens given as arguments or on stdin",
    "keys": "create development issuer keys and trust files",
    "issue": "sign a health certificate and print its HC1 token",
    "sync": "bring Redis to the state of the trust and revocation files",
    "hashes": "print the revocation and registry entries of tokens",
}


def version() -> str:
    """The installed distribution's version (package metadata)."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as _version

    try:
        return _version("qrverify")
    except PackageNotFoundError:
        return "unknown"


def _usage() -> str:
    lines = ["usage: qrverify [--version] COMMAND [options]", "", "commands:"]
    lines += [f"  {name:<8} {help_}" for name, help_ in COMMANDS.items()]
    lines += ["", "Run `qrverify COMMAND --help` for the options of one command."]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(_usage())
        return EXIT_OK if args else EXIT_USAGE
    if args[0] in ("-V", "--version"):
        print(f"qrverify {version()}")
        return EXIT_OK
    name = args[0]
    if name not in COMMANDS:
        print(f"qrverify: unknown command {name!r}\n\n{_usage()}", file=sys.stderr)
        return EXIT_USAGE
    module = importlib.import_module(f"verifier.commands.{name}")
    prog = f"qrverify {name}"
    parser = argparse.ArgumentParser(prog=prog, description=COMMANDS[name])
    module.add_arguments(parser)
    try:
        ns = parser.parse_args(args[1:])
    except SystemExit as exc:  # argparse: 0 for --help, 2 for usage errors
        return int(exc.code or 0)
    try:
        return int(module.run(ns))
    except QrverifyError as exc:  # a command's own configuration error that got this far
        return fail(prog, str(exc))
    except KeyboardInterrupt:
        print("qrverify: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
