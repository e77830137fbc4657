"""qrverify: verification of signed health-certificate QR codes (EU DCC, HC1)."""

from verifier.core import ConfigError, Verifier
from verifier.reasons import Reason
from verifier.rules import Rules
from verifier.verdict import Verdict

__all__ = ["ConfigError", "Reason", "Rules", "Verdict", "Verifier"]
__version__ = "0.1.0"
