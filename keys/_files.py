"""Reading the project's input files (trust, revocation, rules, keys): one capped,
clear-error read."""

from __future__ import annotations

import os


def read_capped(
    path: str | os.PathLike[str], limit: int, what: str, error: type[Exception]
) -> bytes:
    """The bytes of `path`, at most `limit` of them.

    A larger file, and every read failure, raises `error` naming `what` ("trust file",
    ...) and the path; no more than `limit` + 1 bytes are ever read.
    """
    name = os.fspath(path)
    try:
        with open(path, "rb") as fh:
            data = fh.read(limit + 1)
    except FileNotFoundError:
        raise error(f"{what} not found: {name}") from None
    except IsADirectoryError:
        raise error(f"{what} is a directory: {name}") from None
    except OSError as exc:
        raise error(f"cannot read {what} {name}: {exc.strerror}") from None
    if len(data) > limit:
        raise error(f"{what} {name} is larger than {limit} bytes")
    return data
