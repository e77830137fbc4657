"""`qrverify` command line: a thin dispatcher.

Each command lives in its own module exposing
    add_arguments(parser: argparse.ArgumentParser) -> None
    run(args: argparse.Namespace) -> int
and is imported only when called, so `qrverify verify` never loads the HTTP stack.
Exit codes: 0 success / all valid, 1 some token invalid, 2 usage or configuration error.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

COMMANDS: dict[str, tuple[str, str]] = {
    "serve": ("verifier.http.serve", "run the HTTP verification service"),
    "verify": ("verifier.verify_cmd", "verify tokens given as arguments or on stdin"),
    "keys": ("keys.commands", "create development issuer keys and trust files"),
    "issue": ("keys.issue_cmd", "sign a health certificate and print its HC1 token"),
    "sync": ("verifier.sync", "bring Redis to the state of the trust and revocation files"),
}

EXIT_USAGE = 2


def _usage() -> str:
    lines = ["usage: qrverify COMMAND [options]", "", "commands:"]
    lines += [f"  {name:<8} {help_}" for name, (_, help_) in COMMANDS.items()]
    lines += ["", "Run `qrverify COMMAND --help` for the options of one command."]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(_usage())
        return 0 if args else EXIT_USAGE
    name = args[0]
    if name not in COMMANDS:
        print(f"qrverify: unknown command {name!r}\n\n{_usage()}", file=sys.stderr)
        return EXIT_USAGE
    module_name, help_ = COMMANDS[name]
    module = importlib.import_module(module_name)
    parser = argparse.ArgumentParser(prog=f"qrverify {name}", description=help_)
    module.add_arguments(parser)
    try:
        ns = parser.parse_args(args[1:])
    except SystemExit as exc:  # argparse: 0 for --help, 2 for usage errors
        return int(exc.code or 0)
    try:
        return int(module.run(ns))
    except KeyboardInterrupt:
        print("qrverify: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
