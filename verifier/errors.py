"""The common base of qrverify's own exceptions.

Every error the project raises on purpose (a bad operator file, a bad option, a store
that cannot start, a failed sync) derives from :class:`QrverifyError`, so a command can
turn any of them into one line on stderr and exit status 2 (or 1 for runtime failures),
and a library user can catch them all at once. The concrete classes keep their other
base (ValueError, RuntimeError) for callers that catch those.

A bad token is never an exception: it is a verdict.
"""

from __future__ import annotations

__all__ = ["QrverifyError"]


class QrverifyError(Exception):
    """Base class of the errors qrverify raises on purpose; the message is one line
    meant for an operator and holds no personal data."""
