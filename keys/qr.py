"""QR pictures of HC1 tokens (PNG), readable by phone scanners and zxing-cpp."""

from __future__ import annotations

import io
import os

import qrcode
from qrcode.constants import ERROR_CORRECT_Q
from qrcode.exceptions import DataOverflowError

__all__ = ["png_bytes", "write_png"]

BOX_SIZE = 6
BORDER = 4  # the quiet zone the QR standard asks for, in modules


def png_bytes(token: str) -> bytes:
    """The token as a black-on-white QR code (error correction Q), PNG-encoded.

    Raises ValueError when the token does not fit in the largest QR code.
    """
    qr = qrcode.QRCode(error_correction=ERROR_CORRECT_Q, box_size=BOX_SIZE, border=BORDER)
    qr.add_data(token)
    try:
        qr.make(fit=True)
    except (DataOverflowError, ValueError):
        raise ValueError(f"a {len(token)}-character token does not fit in a QR code") from None
    image = qr.make_image(fill_color="black", back_color="white")
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def write_png(token: str, path: str | os.PathLike[str]) -> None:
    """Write the token's QR code to ``path`` as PNG."""
    data = png_bytes(token)
    with open(path, "wb") as fh:
        fh.write(data)
