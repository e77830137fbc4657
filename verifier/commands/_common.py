"""What every `qrverify` command shares: exit codes, the error line, options, the verifier.

- Exit codes: 0 success (all tokens valid), 1 a token is invalid or a runtime failure
  (the server could not start, a sync not acknowledged by enough replicas), 2 a usage or
  configuration error (bad option, unusable operator file) or a Redis error (one
  categorised line, verifier.redis.connect.describe). 130 on Ctrl-C.
- Errors: one line on stderr, `qrverify <command>: <message>` (`fail`).
- Options: an `Option` names a flag, its `QRVERIFY_*` environment variable and a parser;
  a flag wins over the environment, the environment over the default (`resolve_options`).
  `SHARED` holds the options several commands take (trust, revocations, redis, rules,
  leeway, namespace); a command lists the ones it uses.
- `build_verifier(options)`: the one place a Verifier is built from options (files or
  Redis), used by `verify` and `serve`.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from verifier.errors import QrverifyError

if TYPE_CHECKING:
    from keys.registry import TrustRegistry
    from verifier.core import Verifier

EXIT_OK = 0
EXIT_INVALID = 1  # some token is invalid
EXIT_RUNTIME = 1  # a runtime failure (not the operator's input)
EXIT_USAGE = 2  # a usage or configuration error
EXIT_INTERRUPTED = 130

DEFAULT_NAMESPACE = "qrverify"
_NAMESPACE = re.compile(r"[A-Za-z0-9_.-]{1,64}")


class CommandError(QrverifyError):
    """A usage or configuration problem found by a command: one line, exit 2."""


class OptionError(CommandError, ValueError):
    """A bad option value (from a flag or an environment variable); names its source."""


def fail(prog: str, message: str, code: int = EXIT_USAGE) -> int:
    """Print the one error line `prog: message` on stderr; return `code`."""
    line = " ".join(str(message).split())  # one line, whatever the message held
    print(f"{prog}: {line}", file=sys.stderr)
    return code


def warn(prog: str, message: str) -> None:
    """A one-line warning on stderr: `prog: warning: message`."""
    print(f"{prog}: warning: {message}", file=sys.stderr)


# ---- option parsers -----------------------------------------------------------------------


def int_range(lo: int, hi: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text.strip())
        except ValueError:
            raise OptionError(f"not an integer: {text!r}") from None
        if not lo <= value <= hi:
            raise OptionError(f"{value} is outside {lo}..{hi}")
        return value

    return parse


def float_range(lo: float, hi: float) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = float(text.strip())
        except ValueError:
            raise OptionError(f"not a number: {text!r}") from None
        if not lo <= value <= hi:  # also rejects NaN
            raise OptionError(f"{value} is outside {lo:g}..{hi:g}")
        return value

    return parse


def text(value: str) -> str:
    if not value or "\x00" in value:
        raise OptionError("empty value")
    return value


def boolean(value: str) -> bool:
    v = value.strip().lower()
    if v in ("1", "true", "yes", "on"):
        return True
    if v in ("0", "false", "no", "off", ""):
        return False
    raise OptionError(f"not a boolean: {value!r} (use 1/0, true/false)")


def namespace(value: str) -> str:
    if not _NAMESPACE.fullmatch(value):
        raise OptionError("1-64 characters of A-Z a-z 0-9 _ . -")
    return value


@dataclass(frozen=True)
class Option:
    name: str  # attribute name (argparse dest, config field)
    flag: str
    env: str
    parse: Callable[[str], Any]
    metavar: str | None  # None: a switch (store_const True)
    help: str
    repeat: bool = False  # the flag may be given several times (values joined)


SHARED: dict[str, Option] = {
    o.name: o
    for o in (
        Option("trust", "--trust", "QRVERIFY_TRUST", text, "FILE", "trust registry file"),
        Option(
            "revocations",
            "--revocations",
            "QRVERIFY_REVOCATIONS",
            text,
            "FILE",
            "revocation and registry file (embedded store)",
        ),
        Option(
            "redis",
            "--redis",
            "QRVERIFY_REDIS_URL",
            text,
            "URL",
            "read keys and sets from Redis instead of files",
        ),
        Option(
            "rules",
            "--rules",
            "QRVERIFY_RULES",
            text,
            "venue|none|FILE",
            "acceptance rules (default venue)",
        ),
        Option(
            "leeway",
            "--leeway",
            "QRVERIFY_LEEWAY",
            int_range(0, 86400),
            "SECONDS",
            "clock skew tolerated for a token's iat / exp (default 300)",
        ),
        Option(
            "namespace",
            "--namespace",
            "QRVERIFY_NAMESPACE",
            namespace,
            "NAME",
            "Redis key prefix / Cluster hash tag, as written by `qrverify sync` (default qrverify)",
        ),
        Option(
            "strict",
            "--strict",
            "QRVERIFY_STRICT",
            boolean,
            None,
            "an unusable trust-file entry is fatal (default: skipped with a warning)",
        ),
    )
}


def link_origins(value: str) -> tuple[str, ...]:
    """Comma-separated origin URLs of regional registers (checked like the link parser)."""
    from fastpath._links import parse_origin

    out = tuple(u.strip() for u in value.split(",") if u.strip())
    for url in out:
        try:
            parse_origin(url)
        except ValueError as exc:
            raise OptionError(str(exc)) from None
    return out


SHARED["records"] = Option(
    "records",
    "--records",
    "QRVERIFY_RECORDS",
    text,
    "FILE",
    "register records for register links, JSON Lines or CSV (embedded store)",
)
SHARED["link_origins"] = Option(
    "link_origins",
    "--link-origin",
    "QRVERIFY_LINK_ORIGINS",
    link_origins,
    "URL",
    "a further register origin accepted in links (repeatable; comma-separated in the env)",
    repeat=True,
)


def signature_backend(value: str) -> str:
    from verifier.core import SIGNATURE_BACKENDS

    if value not in SIGNATURE_BACKENDS:
        raise OptionError(f"one of {', '.join(SIGNATURE_BACKENDS)}")
    return value


SHARED["valuesets"] = Option(
    "valuesets",
    "--valuesets",
    "QRVERIFY_VALUESETS",
    text,
    "DIR",
    "EU value sets replacing the packaged release (a directory of value-set JSON files)",
)
SHARED["drl"] = Option(
    "drl",
    "--drl",
    "QRVERIFY_DRL",
    text,
    "FILE",
    "EU revocation list (DRL: kid-scoped, hash types and expiry per kid) for the embedded "
    "store (with --redis it comes from `qrverify sync --drl`)",
)
SHARED["signatures"] = Option(
    "signatures",
    "--signatures",
    "QRVERIFY_SIGNATURES",
    signature_backend,
    "auto|libcrypto|cryptography",
    "signature backend (default auto: libcrypto once its start-up self-test passed)",
)


def shared(*names: str) -> tuple[Option, ...]:
    return tuple(SHARED[n] for n in names)


def add_options(parser: argparse.ArgumentParser, options: Iterable[Option]) -> None:
    """One flag per option; its value stays None unless given (see resolve_options)."""
    for opt in options:
        help_ = f"{opt.help} [env {opt.env}]"
        if opt.metavar is None:
            parser.add_argument(
                opt.flag, dest=opt.name, action="store_const", const=True, default=None, help=help_
            )
        else:
            parser.add_argument(
                opt.flag,
                dest=opt.name,
                metavar=opt.metavar,
                default=None,
                action="append" if opt.repeat else "store",
                help=help_,
            )


def resolve_options(
    args: argparse.Namespace, options: Iterable[Option], environ: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """The parsed value of each option given by flag or environment (flag first);
    options given neither way are left out. OptionError names the flag or variable."""
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for opt in options:
        given = getattr(args, opt.name, None)
        if given is True and opt.metavar is None:
            values[opt.name] = True
            continue
        if given is not None:
            source, raw = opt.flag, given
        elif env.get(opt.env) not in (None, ""):
            source, raw = opt.env, env[opt.env]
        else:
            continue
        try:
            if isinstance(raw, list):  # a repeated flag: each value parsed, results joined
                values[opt.name] = tuple(v for item in raw for v in opt.parse(item))
            else:
                values[opt.name] = opt.parse(raw)
        except OptionError as exc:
            raise OptionError(f"{source}: {exc}") from None
    return values


# ---- the verifier ---------------------------------------------------------------------------


class VerifierOptions(Protocol):
    """What build_verifier reads (ServeConfig and the verify command's options have it)."""

    @property
    def trust(self) -> str | None: ...
    @property
    def revocations(self) -> str | None: ...
    @property
    def redis(self) -> str | None: ...
    @property
    def rules(self) -> str: ...
    @property
    def leeway(self) -> int: ...
    @property
    def namespace(self) -> str: ...
    @property
    def cache_size(self) -> int: ...
    @property
    def snapshot(self) -> str | None: ...
    @property
    def max_age(self) -> float: ...
    @property
    def strict(self) -> bool: ...


def load_trust(path: str, *, strict: bool, prog: str | None = None) -> TrustRegistry:
    """The trust file, unusable entries skipped (or fatal with `strict`); each skipped
    entry is one warning line on stderr when `prog` is given."""
    from keys.registry import TrustRegistry

    registry = TrustRegistry.from_file(path, strict=strict)
    if prog is not None:
        for line in registry.skipped:
            warn(prog, f"{line}; entry skipped (--strict makes this fatal)")
    return registry


def _check_rules(spec: str) -> None:
    """A --rules value that is neither a profile nor an existing file: name the profiles."""
    from verifier.rules import BUILTIN

    if spec not in BUILTIN and not os.path.exists(spec):
        profiles = ", ".join(sorted(BUILTIN))
        raise CommandError(f"--rules: {spec!r} is neither a profile ({profiles}) nor a rules file")


def build_verifier(
    opts: VerifierOptions, *, follow: bool = True, prog: str | None = None
) -> Verifier:
    """The Verifier for these options: the embedded store loaded from files, or a Redis
    replica (following updates unless `follow` is False). Any problem with the files,
    the rules or the store raises CommandError with a one-line message; skipped trust
    entries are warned about on stderr when `prog` is given."""
    from verifier.core import Verifier

    records = getattr(opts, "records", None)
    drl = getattr(opts, "drl", None)
    origins = getattr(opts, "link_origins", ())
    engine: dict[str, Any] = {"signatures": getattr(opts, "signatures", None) or "auto"}
    if getattr(opts, "valuesets", None):
        engine["valuesets"] = opts.valuesets  # type: ignore[attr-defined]
    if opts.redis and records:
        raise CommandError(
            "--records and --redis exclude each other "
            "(load records into Redis with `qrverify sync --records`)"
        )
    _check_rules(opts.rules)
    if opts.redis and opts.revocations:
        raise CommandError(
            "--revocations and --redis exclude each other "
            "(load revocations into Redis with `qrverify sync`)"
        )
    if opts.redis and drl:
        raise CommandError(
            "--drl and --redis exclude each other (load the DRL into Redis with `qrverify "
            "sync --drl`)"
        )
    try:
        if opts.redis:
            from verifier.redis_store import RedisStore

            override = load_trust(opts.trust, strict=opts.strict, prog=prog) if opts.trust else None
            store = RedisStore.connect(
                opts.redis,
                trust_override=override,
                snapshot_path=opts.snapshot,
                max_age=opts.max_age,
                follow=follow,
                namespace=opts.namespace,
            )
            try:
                return Verifier(
                    store,
                    opts.rules,
                    cache_size=opts.cache_size,
                    leeway=opts.leeway,
                    link_origins=origins,
                    **engine,
                )
            except BaseException:
                store.close()
                raise
        if not opts.trust and not records:
            raise CommandError(
                "no issuer keys: give --trust FILE or --redis URL "
                "(or --records FILE for register links only)"
            )
        if opts.trust:  # checked (and warned about) here; the store loads it leniently
            load_trust(opts.trust, strict=opts.strict, prog=prog)
        return Verifier.from_files(
            opts.trust,
            opts.revocations,
            opts.rules,
            records=records,
            drl=drl,
            link_origins=origins,
            cache_size=opts.cache_size,
            leeway=opts.leeway,
            **engine,
        )
    except CommandError:
        raise
    except (QrverifyError, OSError, ValueError) as exc:
        raise CommandError(str(exc)) from None
