"""A PDF as a printer sees it and the QR codes a phone would read off it: rasterised by a
real PDF renderer (poppler's pdftoppm, else Ghostscript) and decoded with zbar (pyzbar).
Shared by the sticker tests and the operator's browser test that prints a sheet."""

from __future__ import annotations

import io
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from PIL import Image


def rasterise(pdf: bytes, dpi: int = 200) -> list[Image.Image]:
    """Every page as a greyscale image, rendered by a real PDF renderer."""
    with tempfile.TemporaryDirectory() as folder:
        source = Path(folder) / "sheet.pdf"
        source.write_bytes(pdf)
        if shutil.which("pdftoppm"):
            command = ["pdftoppm", "-r", str(dpi), "-gray", "-png", str(source),
                       f"{folder}/page"]
        elif shutil.which("gs"):
            command = ["gs", "-q", "-dSAFER", "-dBATCH", "-dNOPAUSE", "-sDEVICE=pnggray",
                       f"-r{dpi}", f"-sOutputFile={folder}/page-%02d.png", str(source)]
        else:
            pytest.skip("rasterising needs poppler-utils (pdftoppm) or ghostscript")
        subprocess.run(command, check=True, timeout=120)
        pages = sorted(Path(folder).glob("page-*.png"))
        return [Image.open(io.BytesIO(p.read_bytes())) for p in pages]


def decode(page: Image.Image) -> list[str]:
    """The text of every QR code on the page, sorted."""
    pyzbar = pytest.importorskip("pyzbar.pyzbar", exc_type=ImportError,
                                 reason="QR decoding needs pyzbar and libzbar0")
    return sorted(r.data.decode("utf-8") for r in pyzbar.decode(page) if r.type == "QRCODE")
