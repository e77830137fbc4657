"""Type stub for fastpath/_links.pyx: register links (CONTRACT section 1b)."""

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from fastpath._records import RecordTable

MAX_LINK: int
DEFAULT_ORIGIN: str
FOREIGN_DETAIL: str

def parse_origin(url: str) -> tuple[bytes, bytes]:
    """(authority without www., path prefix) of a configured origin URL."""

class LinkChecker:
    origins: tuple[str, ...]
    def __init__(
        self,
        origins: Iterable[str] = (),
        *,
        verdict: Callable[..., Any],
        reasons: Mapping[str, Any],
        issuer: str = "RU",
    ) -> None: ...
    def verify(self, token: str | bytes, table: RecordTable | None, now: int) -> Any:
        """The verdict for one link at epoch seconds `now`."""
    def parse(self, token: str | bytes) -> tuple[str, int, str | None, str | None]:
        """(\"ok\" | \"bad\" | \"foreign\", kind, key hex, ck hex or None)."""
