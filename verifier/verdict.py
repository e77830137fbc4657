"""The verdict: one per token, the same for the CLI, the HTTP API and the Python API."""

from __future__ import annotations

from typing import Any

import orjson

from verifier.reasons import DETAILS, Reason


class Verdict:
    """Outcome of verifying one token.

    `holder` and `certificate` are set only when the signature was verified: data from an
    unverified token is never exposed. No medical detail is kept.
    """

    __slots__ = ("reason", "_holder", "_certificate", "_detail")

    def __init__(
        self,
        reason: Reason | None,
        holder: tuple[str, ...] | None = None,
        certificate: tuple[str, str, str] | None = None,
        detail: str | None = None,
    ) -> None:
        self.reason = reason
        # (name, name_latin, dob) for an EU DCC; register links add the document.
        self._holder = holder
        self._certificate = certificate
        # A more specific English sentence than the reason's (a link to a foreign site).
        self._detail = detail

    @property
    def status(self) -> str:
        return "valid" if self.reason is None else "invalid"

    @property
    def valid(self) -> bool:
        return self.reason is None

    @property
    def detail(self) -> str:
        return DETAILS[self.reason] if self._detail is None else self._detail

    @property
    def holder(self) -> dict[str, str] | None:
        h = self._holder
        if h is None:
            return None
        out = {"name": h[0], "name_latin": h[1], "dob": h[2]}
        if len(h) > 3:
            out["document"] = h[3]
        return out

    @property
    def certificate(self) -> dict[str, str] | None:
        c = self._certificate
        return None if c is None else {"type": c[0], "issuer": c[1], "valid_until": c[2]}

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "status": "valid" if self.reason is None else "invalid",
            "reason": None if self.reason is None else self.reason.value,
            "detail": DETAILS[self.reason] if self._detail is None else self._detail,
        }
        if self._holder is not None:
            out["holder"] = self.holder
            out["certificate"] = self.certificate
        return out

    def to_json(self) -> bytes:
        return orjson.dumps(self.to_dict())

    def __repr__(self) -> str:  # no personal data in reprs: they end up in logs
        return f"<Verdict {self.status} reason={self.reason and self.reason.value}>"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Verdict):
            return NotImplemented
        return (self.reason, self._holder, self._certificate, self._detail) == (
            other.reason,
            other._holder,
            other._certificate,
            other._detail,
        )

    __hash__ = None  # type: ignore[assignment]
