"""The HTTP service: `create_app(verifier, ...)` and the `qrverify serve` command."""

from verifier.http.app import create_app
from verifier.http.auth import ApiKeyFileError, ApiKeys

__all__ = ["ApiKeyFileError", "ApiKeys", "create_app"]
