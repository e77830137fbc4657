"""Reading the project's input files (trust, revocation, rules): one capped, clear-error read."""

from __future__ import annotations

import os


def read_capped(path: str | os.PathLike[str], limit: int, what: str,
                error: type[ValueError]) -> bytes:
    """The bytes of `path`, at most `limit` + 1 of them (the caller's parser rejects more).

    Every failure raises `error` naming `what` ("trust file", ...) and the path.
    """
    name = os.fspath(path)
    try:
        with open(path, "rb") as fh:
            return fh.read(limit + 1)
    except FileNotFoundError:
        raise error(f"{what} not found: {name}") from None
    except IsADirectoryError:
        raise error(f"{what} is a directory: {name}") from None
    except OSError as exc:
        raise error(f"cannot read {what} {name}: {exc.strerror}") from None
