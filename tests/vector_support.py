"""Load the generated test vectors (tests/vectors/*.json) and build verifiers for them."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from verifier import Reason, Verifier

VECTORS_DIR = Path(__file__).resolve().parent / "vectors"
VECTORS_FILE = VECTORS_DIR / "vectors.json"
TRUST_FILE = VECTORS_DIR / "trust.json"
REVOCATIONS_FILE = VECTORS_DIR / "revocations.json"

#: Reasons decided before (or by) the signature check: no personal data may be shown.
UNVERIFIED_REASONS = frozenset(
    {
        Reason.BAD_PREFIX,
        Reason.BAD_BASE45,
        Reason.BAD_COMPRESSION,
        Reason.BAD_COSE,
        Reason.BAD_CWT,
        Reason.BAD_PAYLOAD,
        Reason.TOO_LARGE,
        Reason.UNKNOWN_KEY,
        Reason.BAD_SIGNATURE,
        Reason.BAD_LINK,
        Reason.NOT_FOUND,
    }
)


@dataclass(frozen=True)
class Vector:
    name: str
    token: str
    at: datetime
    at_text: str
    rules: Any  # "venue" | "none" | dict of knobs
    trust: Path
    revocations: Path | None
    expect: dict[str, Any]

    @property
    def reason(self) -> str | None:
        r: str | None = self.expect["reason"]
        return r


def load_vectors() -> list[Vector]:
    """Every vector of tests/vectors/vectors.json, in file order."""
    raw = json.loads(VECTORS_FILE.read_text(encoding="utf-8"))
    out = []
    for v in raw:
        out.append(
            Vector(
                name=v["name"],
                token=v["token"],
                at=datetime.fromisoformat(v["at"].replace("Z", "+00:00")),
                at_text=v["at"],
                rules=v["rules"],
                trust=VECTORS_DIR / v["trust"],
                revocations=None if v["revocations"] is None else VECTORS_DIR / v["revocations"],
                expect=v["expect"],
            )
        )
    return out


def rules_arg(rules: Any, directory: Path) -> str:
    """A value for Verifier(rules=...) / `--rules`: built-in names as they are, inline
    knobs written to a JSON rules file in `directory` (named after their content)."""
    if isinstance(rules, str):
        return rules
    text = json.dumps(rules, sort_keys=True)
    path = directory / f"rules-{hashlib.sha256(text.encode()).hexdigest()[:12]}.json"
    if not path.exists():
        path.write_text(text, encoding="utf-8")
    return str(path)


def verifier_for(vector: Vector, directory: Path, **kwargs: Any) -> Verifier:
    """A fresh Verifier loaded from the vector's files (Verifier.from_files)."""
    return Verifier.from_files(
        trust=vector.trust,
        revocations=vector.revocations,
        rules=rules_arg(vector.rules, directory),
        **kwargs,
    )
