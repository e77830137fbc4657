"""QR decoding of an uploaded PNG or JPEG photo, with caps against decompression bombs.

`decode_qr` is synchronous and CPU-bound; the app runs it in a worker thread. Pillow's
`Image.open` is lazy: it reads only the header, so the dimensions are checked before any
pixel is decoded, and an image that is too wide, too tall or has too many pixels is
refused without allocating them. Memory per decode stays bounded:

- a JPEG is decoded at reduced scale (libjpeg DCT scaling) to at most ~1600 px a side
  when it is larger, so its header may announce up to `max_pixels` (12 MP by default);
- a PNG has no reduced decode: it is decoded in full, so it may have at most
  `PNG_MAX_PIXELS` (6 MP: 24 MB as RGBA plus 6 MB of grey), whatever `max_pixels` says;
- either side is at most `MAX_SIDE` pixels.
"""

from __future__ import annotations

import io

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
JPEG_MAGIC = b"\xff\xd8\xff"
DEFAULT_MAX_PIXELS = 12_000_000
PNG_MAX_PIXELS = 6_000_000
MAX_SIDE = 16_384
# Large JPEG photos are decoded at a reduced scale: a QR code that fills a reasonable part
# of a phone photo stays far above the size zxing needs.
_JPEG_DRAFT_SIDE = 1600


class ImageError(ValueError):
    """The upload is not a decodable PNG/JPEG image (message is safe to show the client)."""


class ImageTooLarge(ImageError):
    """The image has more pixels (or a longer side) than allowed."""


def sniff(data: bytes) -> str | None:
    """ "PNG", "JPEG" or None, from the magic bytes."""
    if data.startswith(PNG_MAGIC):
        return "PNG"
    if data.startswith(JPEG_MAGIC):
        return "JPEG"
    return None


def check_size(kind: str, width: int, height: int, max_pixels: int) -> None:
    """Refuse dimensions that would cost too much to decode (ImageTooLarge)."""
    if width <= 0 or height <= 0:
        raise ImageError("image has no pixels")
    if width > MAX_SIDE or height > MAX_SIDE:
        raise ImageTooLarge(f"image is {width}x{height} pixels: a side over {MAX_SIDE}")
    cap = max_pixels if kind == "JPEG" else min(max_pixels, PNG_MAX_PIXELS)
    if width * height > cap:
        raise ImageTooLarge(f"{kind} image has {width}x{height} pixels, more than {cap}")


def dimensions(data: bytes) -> tuple[int, int]:
    """(width, height) from the image header (Pillow's lazy open: no pixel is decoded)."""
    from PIL import Image

    kind = sniff(data)
    if kind is None:
        raise ImageError("expected a PNG or JPEG image")
    try:
        with Image.open(io.BytesIO(data), formats=[kind]) as img:
            width, height = img.size
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageTooLarge("image has too many pixels") from None
    except Exception as exc:  # noqa: BLE001 - any parser failure on untrusted bytes
        raise ImageError(f"the {kind} image header could not be read") from exc
    return int(width), int(height)


def decode_qr(data: bytes, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> str | None:
    """The text of the first QR code in the image (an HC1 one preferred), or None.

    Raises ImageTooLarge when the image's dimensions are over the caps and ImageError
    when it is not a decodable PNG or JPEG.
    """
    import zxingcpp
    from PIL import Image

    kind = sniff(data)
    if kind is None:
        raise ImageError("expected a PNG or JPEG image")
    try:
        with Image.open(io.BytesIO(data), formats=[kind]) as img:
            width, height = img.size
            check_size(kind, width, height, max_pixels)
            if kind == "JPEG" and max(width, height) > 2 * _JPEG_DRAFT_SIDE:
                img.draft("L", (_JPEG_DRAFT_SIDE, _JPEG_DRAFT_SIDE))
            gray = img.convert("L")
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageTooLarge("image has too many pixels") from None
    except Exception as exc:  # noqa: BLE001 - any decoder failure on untrusted bytes
        raise ImageError(f"the {kind} image could not be decoded") from exc
    try:
        barcodes = zxingcpp.read_barcodes(
            gray, formats=zxingcpp.BarcodeFormats(zxingcpp.BarcodeFormat.QRCode)
        )
    except Exception as exc:  # noqa: BLE001 - the barcode reader refusing the picture
        raise ImageError("the image could not be searched for a QR code") from exc
    texts = [b.text for b in barcodes if b.valid and b.text]
    for text in texts:
        if text.startswith("HC1:"):
            return text
    return texts[0] if texts else None
