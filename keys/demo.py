"""A ready-to-scan development setup: one issuer, its trust file and three valid tokens."""

from __future__ import annotations

import datetime as dt
import json
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from keys._x509 import CERT_TYPES
from keys.issuer import KEY_FILE, Issuer, IssuerError, load_issuer
from keys.samples import sample_dcc
from keys.token import issue_token

__all__ = ["Demo", "make_demo"]

TOKEN_LIFETIME = 365 * 86400
DEMO_NAME = "Иванов Иван"


@dataclass(frozen=True, slots=True)
class Demo:
    """What :func:`make_demo` created."""

    directory: Path
    issuer: Issuer
    trust_path: Path
    tokens: dict[str, str]


def _write_atomic(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _epoch(at: dt.datetime | int | float | None) -> int:
    if at is None:
        return int(time.time())
    if isinstance(at, dt.datetime):
        if at.tzinfo is None:
            raise ValueError("at must be timezone-aware")
        return int(at.timestamp())
    return int(at)


def make_demo(directory: str | os.PathLike[str], at: dt.datetime | int | None = None) -> Demo:
    """Create (or reuse) ``directory/issuer``, write ``directory/trust.json``, sign tokens.

    An existing demo issuer is reused when its certificate covers ``at`` (default: now);
    otherwise IssuerError is raised rather than overwriting a key.
    """
    base = Path(directory)
    now = _epoch(at)
    issuer_dir = base / "issuer"
    if (issuer_dir / KEY_FILE).exists():
        issuer = load_issuer(issuer_dir)
        if not issuer.not_before <= now < issuer.not_after:
            raise IssuerError(
                f"the demo issuer in {issuer_dir} is not valid at the requested "
                "time; remove the directory to create a new one"
            )
    else:
        issuer = Issuer.generate("RU", "ES256", CERT_TYPES, days=730, not_before=now - 86400)
        issuer.save(issuer_dir)
    trust_path = base / "trust.json"
    trust = {"keys": [issuer.trust_entry()]}
    _write_atomic(trust_path, json.dumps(trust, indent=1).encode("utf-8") + b"\n")
    exp = min(now + TOKEN_LIFETIME, issuer.not_after)
    tokens = {
        cert_type: issue_token(
            issuer, sample_dcc(cert_type, at=now, name=DEMO_NAME), iat=now, exp=exp
        )
        for cert_type in CERT_TYPES
    }
    return Demo(directory=base, issuer=issuer, trust_path=trust_path, tokens=tokens)
