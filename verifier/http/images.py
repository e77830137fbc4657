"""QR decoding of an uploaded PNG or JPEG photo, with caps against decompression bombs.

`decode_qr` is synchronous and CPU-bound; the app runs it in a worker thread. The image's
dimensions are read from its header by this module BEFORE Pillow decodes anything, and an
image of more than `max_pixels` pixels is refused without allocating its pixels; Pillow's
own MAX_IMAGE_PIXELS check stays in force behind that as a second line.
"""

from __future__ import annotations

import io
import struct

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
JPEG_MAGIC = b"\xff\xd8\xff"
DEFAULT_MAX_PIXELS = 30_000_000
# Large JPEG photos are decoded at a reduced scale (libjpeg DCT scaling): a QR code that
# fills a reasonable part of a phone photo stays far above the size zxing needs.
_JPEG_DRAFT_SIDE = 1600
# SOF markers carrying the frame size (all SOFn except DHT C4, JPG C8, DAC CC).
_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


class ImageError(ValueError):
    """The upload is not a decodable PNG/JPEG image (message is safe to show the client)."""


class ImageTooLarge(ImageError):
    """The image has more pixels than allowed."""


def sniff(data: bytes) -> str | None:
    """"PNG", "JPEG" or None, from the magic bytes."""
    if data.startswith(PNG_MAGIC):
        return "PNG"
    if data.startswith(JPEG_MAGIC):
        return "JPEG"
    return None


def dimensions(data: bytes) -> tuple[int, int]:
    """(width, height) from the PNG IHDR or the first JPEG SOF segment, without decoding."""
    kind = sniff(data)
    if kind == "PNG":
        if len(data) < 24 or data[12:16] != b"IHDR":
            raise ImageError("truncated or malformed PNG header")
        width, height = struct.unpack(">II", data[16:24])
        return width, height
    if kind == "JPEG":
        return _jpeg_dimensions(data)
    raise ImageError("expected a PNG or JPEG image")


def _jpeg_dimensions(data: bytes) -> tuple[int, int]:
    pos, end = 2, len(data)
    while pos + 4 <= end:
        if data[pos] != 0xFF:
            raise ImageError("malformed JPEG: marker expected")
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in (0x01,) or 0xD0 <= marker <= 0xD9:  # standalone markers
            pos += 2
            continue
        (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
        if length < 2:
            raise ImageError("malformed JPEG segment length")
        if marker in _SOF_MARKERS:
            if pos + 9 > end:
                break
            height, width = struct.unpack(">HH", data[pos + 5 : pos + 9])
            return width, height
        pos += 2 + length
    raise ImageError("malformed JPEG: no frame header")


def decode_qr(data: bytes, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> str | None:
    """The text of the first QR code in the image (an HC1 one preferred), or None.

    Raises ImageTooLarge when the image has more than `max_pixels` pixels and ImageError
    when it is not a decodable PNG or JPEG.
    """
    width, height = dimensions(data)
    if width <= 0 or height <= 0:
        raise ImageError("image has no pixels")
    if width * height > max_pixels:
        raise ImageTooLarge(f"image has {width}x{height} pixels, more than {max_pixels}")

    import zxingcpp
    from PIL import Image

    kind = sniff(data)
    if kind is None:  # dimensions() already refused it; keeps the type checker informed
        raise ImageError("expected a PNG or JPEG image")
    try:
        with Image.open(io.BytesIO(data), formats=[kind]) as img:
            if img.size != (width, height):
                raise ImageError("image header is inconsistent")
            if kind == "JPEG" and max(width, height) > 2 * _JPEG_DRAFT_SIDE:
                img.draft("L", (_JPEG_DRAFT_SIDE, _JPEG_DRAFT_SIDE))
            gray = img.convert("L")
    except ImageError:
        raise
    except Exception as exc:  # noqa: BLE001 - any decoder failure on untrusted bytes
        raise ImageError(f"the {kind} image could not be decoded") from exc
    barcodes = zxingcpp.read_barcodes(
        gray, formats=zxingcpp.BarcodeFormats(zxingcpp.BarcodeFormat.QRCode))
    texts = [b.text for b in barcodes if b.valid and b.text]
    for text in texts:
        if text.startswith("HC1:"):
            return text
    return texts[0] if texts else None
