"""The uploaded file of a `multipart/form-data` body, through python-multipart's parser.

The body has already been read under the size cap, so it is parsed from memory: nothing
is spooled to disk (a photo of a health certificate is personal data). The parser streams
over the body and this module keeps only the chosen file's bytes; a form of more than
`MAX_PARTS` parts or with part headers over `MAX_PART_HEADER_BYTES` is refused as soon as
the parser reaches it, so a body of many tiny parts costs no more memory than one part.
"""

from __future__ import annotations

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

MAX_PARTS = 16
MAX_PART_HEADER_BYTES = 4096


class MultipartError(ValueError):
    """The body is not a well-formed multipart/form-data body (message safe to show)."""


def boundary_of(content_type: bytes) -> bytes:
    _, params = parse_options_header(content_type)
    boundary = params.get(b"boundary")
    if not boundary or len(boundary) > 70:
        raise MultipartError("multipart/form-data without a valid boundary")
    return boundary


class _Form:
    """Parser callbacks: collects the file part named `preferred`, else the first file."""

    def __init__(self, preferred: bytes) -> None:
        self.preferred = preferred
        self.parts = 0
        self.header_bytes = 0
        self.field = b""
        self.value = b""
        self.disposition = b""
        self.chunks: list[bytes] = []
        self.keep = False
        self._named = False
        self._is_file = False
        self.chosen: bytes | None = None  # data of the preferred file part
        self.first: bytes | None = None  # data of the first file part
        self.ended = False

    def on_part_begin(self) -> None:
        self.parts += 1
        if self.parts > MAX_PARTS:
            raise MultipartError(f"more than {MAX_PARTS} parts in the form")
        self.header_bytes = 0
        self.field = self.value = self.disposition = b""
        self.chunks = []
        self.keep = False

    def _count(self, n: int) -> None:
        self.header_bytes += n
        if self.header_bytes > MAX_PART_HEADER_BYTES:
            raise MultipartError("multipart part headers too large")

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._count(end - start)
        self.field += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._count(end - start)
        self.value += data[start:end]

    def on_header_end(self) -> None:
        if self.field.strip().lower() == b"content-disposition":
            self.disposition = self.value
        self.field = self.value = b""

    def on_headers_finished(self) -> None:
        kind, params = parse_options_header(self.disposition)
        if kind != b"form-data":
            raise MultipartError("multipart part without Content-Disposition: form-data")
        is_file = b"filename" in params or b"filename*" in params
        named = params.get(b"name") == self.preferred
        wanted = (named and self.chosen is None) or (is_file and self.first is None)
        self.keep = wanted
        self._named, self._is_file = named, is_file

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self.keep:
            self.chunks.append(data[start:end])

    def on_part_end(self) -> None:
        if not self.keep:
            return
        data = b"".join(self.chunks)
        self.chunks = []
        if self._named and self.chosen is None:
            self.chosen = data
        elif self._is_file and self.first is None:
            self.first = data

    def on_end(self) -> None:
        self.ended = True


def first_file(body: bytes, content_type: bytes, preferred: str = "image") -> bytes:
    """The data of the form's part named `preferred`, else of its first file part."""
    form = _Form(preferred.encode())
    callbacks = {
        name: getattr(form, name)
        for name in (
            "on_part_begin",
            "on_header_field",
            "on_header_value",
            "on_header_end",
            "on_headers_finished",
            "on_part_data",
            "on_part_end",
            "on_end",
        )
    }
    parser = MultipartParser(boundary_of(content_type), callbacks)  # type: ignore[arg-type]
    try:
        parser.write(body)
        parser.finalize()
    except MultipartParseError:
        raise MultipartError("malformed multipart/form-data body") from None
    if not form.ended:
        raise MultipartError("multipart body is truncated (no closing boundary)")
    found = form.chosen if form.chosen is not None else form.first
    if found is None:
        raise MultipartError(f'no file in the form (expected a field named "{preferred}")')
    return found
