from __future__ import annotations

import io
from pathlib import Path

import pytest
import zxingcpp
from PIL import Image

from keys.issuer import Issuer
from keys.qr import png_bytes, write_png
from keys.samples import sample_dcc
from keys.token import issue_token

NOW = 1_700_000_000


def _read(png: bytes) -> list[str]:
    image = Image.open(io.BytesIO(png))
    return [r.text for r in zxingcpp.read_barcodes(image)]


@pytest.mark.parametrize("alg", ["ES256", "PS256"])
def test_qr_decodes_to_exact_token(issuers: dict[str, Issuer], alg: str) -> None:
    token = issue_token(
        issuers[alg], sample_dcc("vaccination", at=NOW, name="Иванов Иван"), iat=NOW, exp=NOW + 1
    )
    png = png_bytes(token)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert _read(png) == [token]


def test_write_png(tmp_path: Path, es256: Issuer) -> None:
    token = issue_token(es256, sample_dcc("test", at=NOW), iat=NOW, exp=NOW + 1)
    path = tmp_path / "t.png"
    write_png(token, path)
    assert _read(path.read_bytes()) == [token]
    # quiet zone: the outer border of the picture is white
    image = Image.open(path).convert("L")
    width, height = image.size
    border = [image.getpixel((x, 0)) for x in range(width)] + [
        image.getpixel((0, y)) for y in range(height)
    ]
    assert set(border) == {255}


def test_too_long_for_a_qr_code() -> None:
    with pytest.raises(ValueError, match="does not fit in a QR code"):
        png_bytes("HC1:" + "A" * 5000)
