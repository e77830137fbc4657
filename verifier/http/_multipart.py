"""A small, strict, in-memory `multipart/form-data` reader for one uploaded file.

The body has already been read under the size cap, so the whole thing is parsed from
memory: nothing is spooled to disk (a photo of a health certificate is personal data).
"""

from __future__ import annotations

import re

MAX_PARTS = 16
MAX_PART_HEADER_BYTES = 4096
_BOUNDARY_RE = re.compile(rb"""boundary=(?:"([^"]{1,70})"|([^\s;,"]{1,70}))""", re.IGNORECASE)
_NAME_RE = re.compile(rb"""[;\s]name="([^"]*)\"""", re.IGNORECASE)
_FILENAME_RE = re.compile(rb"""[;\s]filename\*?=""", re.IGNORECASE)


class MultipartError(ValueError):
    """The body is not a well-formed multipart/form-data body."""


def boundary_of(content_type: str) -> bytes:
    m = _BOUNDARY_RE.search(content_type.encode("latin-1", "replace"))
    if not m:
        raise MultipartError("multipart/form-data without a boundary")
    return m.group(1) or m.group(2)


def parts(body: bytes, boundary: bytes) -> list[tuple[dict[bytes, bytes], bytes]]:
    """(headers with lower-case names, data) of every part, in order."""
    delim = b"--" + boundary
    if not body.startswith(delim):
        first = body.find(b"\r\n" + delim)
        if first < 0:
            raise MultipartError("multipart body does not contain its boundary")
        body = body[first + 2 :]
    sections = body.split(b"\r\n" + delim)
    # sections[0] starts with delim; each later section starts right after a delimiter.
    sections[0] = sections[0][len(delim) :]
    out: list[tuple[dict[bytes, bytes], bytes]] = []
    closed = False
    for section in sections:
        if section.startswith(b"--"):
            closed = True
            break
        if not section.startswith(b"\r\n"):
            raise MultipartError("malformed multipart delimiter line")
        head_end = section.find(b"\r\n\r\n", 2)
        if head_end < 0 or head_end > MAX_PART_HEADER_BYTES:
            raise MultipartError("malformed multipart part headers")
        headers: dict[bytes, bytes] = {}
        for line in section[2:head_end].split(b"\r\n"):
            name, sep, value = line.partition(b":")
            if not sep or not name.strip():
                raise MultipartError("malformed multipart header line")
            headers[name.strip().lower()] = value.strip()
        out.append((headers, section[head_end + 4 :]))
        if len(out) > MAX_PARTS:
            raise MultipartError(f"more than {MAX_PARTS} parts in the form")
    if not closed:
        raise MultipartError("multipart body is truncated (no closing boundary)")
    return out


def first_file(body: bytes, content_type: str, preferred: str = "image") -> bytes:
    """The data of the form's file part named `preferred`, else of its first file part."""
    found: bytes | None = None
    for headers, data in parts(body, boundary_of(content_type)):
        disposition = headers.get(b"content-disposition", b"")
        if not disposition.lower().startswith(b"form-data"):
            raise MultipartError("multipart part without Content-Disposition: form-data")
        m = _NAME_RE.search(disposition)
        is_file = bool(_FILENAME_RE.search(disposition))
        if m and m.group(1) == preferred.encode():
            return data
        if is_file and found is None:
            found = data
    if found is None:
        raise MultipartError(f'no file in the form (expected a field named "{preferred}")')
    return found
