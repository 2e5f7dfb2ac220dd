"""Carrier-supplied waybills: PDF and PNG pages fitted to the label, ZPL passed through.

Carriers and marketplaces often hand out the waybill ready-made. A PDF page is
rasterised by pypdfium2 directly at the scale that fits the label in printer dots (no
second resampling, which would smear the barcode); the page keeps its aspect ratio and
is turned a quarter when that makes it larger. An image is scaled to fit likewise —
enlarged only by a whole factor with nearest-neighbour, so its bars stay crisp. Raw ZPL
is not rendered at all: it goes to a ZPL printer byte for byte.
"""

from __future__ import annotations

import dataclasses
import io
import math
import warnings
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from drivers.errors import DriverError, LabelDoesNotFit
from drivers.labels.sizes import canvas_dots, label_size

__all__ = ["Document", "DocumentError", "fit_image", "fit_scale", "load_document"]

THRESHOLD = 128
# How a file announces its type, whatever its name says.
_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"%PDF-", "pdf"),
    (b"\x89PNG\r\n\x1a\n", "image"),
    (b"\xff\xd8\xff", "image"),
    (b"GIF8", "image"),
    (b"BM", "image"),
)


class DocumentError(DriverError):
    """A carrier document that cannot be read (missing, empty, not a PDF/image/ZPL)."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class Document:
    """A ready-made waybill: 1-bit ``pages`` in printer dots, or ``zpl`` bytes as given."""

    pages: tuple[Image.Image, ...] = ()
    zpl: bytes | None = None


def fit_scale(page: tuple[float, float], *, width: int, length: int | None) -> tuple[float, bool]:
    """(scale, rotate) that makes ``page`` (w, h) as large as possible inside the label.

    ``length=None`` (endless roll) bounds only the width; a landscape page then turns
    so its long side runs along the roll.
    """
    w, h = page
    if w <= 0 or h <= 0:
        raise DocumentError("the document page has no size")

    def scale(pw: float, ph: float) -> float:
        return width / pw if length is None else min(width / pw, length / ph)

    upright, turned = scale(w, h), scale(h, w)
    return (turned, True) if turned > upright else (upright, False)


def _place(image: Image.Image, *, width: int, length: int | None) -> Image.Image:
    # Centre on a white label; 1-bit like the renderers' output.
    grey = image.convert("L")
    if grey.width > width or (length is not None and grey.height > length):
        raise LabelDoesNotFit(
            f"document page of {grey.width}x{grey.height} dots does not fit the label"
        )
    canvas = Image.new("L", (width, length or grey.height), 255)
    canvas.paste(grey, ((width - grey.width) // 2, (canvas.height - grey.height) // 2))
    return canvas.point(lambda v: 255 if v >= THRESHOLD else 0, mode="1")


def fit_image(image: Image.Image, *, width: int, length: int | None) -> Image.Image:
    """``image`` scaled (and turned if better) to fit a ``width`` x ``length`` dot label.

    Shrinking uses Lanczos then a threshold; enlarging only by a whole factor
    (nearest-neighbour), so each source pixel becomes an exact block of dots.
    """
    if image.mode in ("RGBA", "LA", "P", "PA"):
        # Transparent areas of a carrier PNG are paper, not black.
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(white, rgba)
    scale, rotate = fit_scale(image.size, width=width, length=length)
    if rotate:
        image = image.transpose(Image.Transpose.ROTATE_90)
    if scale >= 1:
        factor = math.floor(scale)
        if factor > 1:
            image = image.resize(
                (image.width * factor, image.height * factor), Image.Resampling.NEAREST
            )
    else:
        size = (max(1, math.floor(image.width * scale)), max(1, math.floor(image.height * scale)))
        image = image.convert("L").resize(size, Image.Resampling.LANCZOS)
    return _place(image, width=width, length=length)


def _pdf_pages(data: bytes, *, width: int, length: int | None) -> tuple[Image.Image, ...]:
    import pypdfium2 as pdfium

    try:
        pdf = pdfium.PdfDocument(data)
    except pdfium.PdfiumError as exc:
        raise DocumentError(f"the PDF cannot be read: {exc}") from None
    pages = []
    try:
        for index in range(len(pdf)):
            page = pdf[index]
            scale, rotate = fit_scale(page.get_size(), width=width, length=length)
            # A hair under the exact fit so pdfium's rounding never adds a dot too many.
            bitmap = page.render(scale=scale * (1 - 1e-6), rotation=90 if rotate else 0)
            pages.append(_place(bitmap.to_pil(), width=width, length=length))
    finally:
        pdf.close()
    if not pages:
        raise DocumentError("the PDF has no pages")
    return tuple(pages)


def load_document(path: Path, *, size: str, dpi: int) -> Document:
    """Read a carrier's waybill file and fit it to the ``size`` label at ``dpi``.

    The type comes from the content: PDF and images become pages (every PDF page is
    one label), anything starting with ZPL commands (``^XA``, ``~``) is kept as raw
    bytes. Raises :class:`DocumentError` for a missing or unreadable file.
    """
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DocumentError(f"cannot read document {path}: {exc.strerror or exc}") from None
    if not data.strip():
        raise DocumentError(f"document {path} is empty")
    width, length = canvas_dots(label_size(size), dpi=dpi)
    kind = next((k for magic, k in _MAGIC if data.startswith(magic)), None)
    if kind == "pdf":
        try:
            return Document(pages=_pdf_pages(data, width=width, length=length))
        except DocumentError as exc:
            raise DocumentError(f"document {path}: {exc}") from None
    if kind == "image":
        try:
            with warnings.catch_warnings():
                # Pillow only warns between its two limits; no waybill is that large.
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                image = Image.open(io.BytesIO(data))
                image.load()
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            limit = f"{(Image.MAX_IMAGE_PIXELS or 0) / 1e6:.0f} million"
            raise DocumentError(
                f"document {path} is too large an image for a label (over {limit} pixels): "
                "export it at label size, e.g. 100x180 mm at 300 dpi"
            ) from None
        except (UnidentifiedImageError, OSError) as exc:
            raise DocumentError(f"document {path} is not a readable image: {exc}") from None
        return Document(pages=(fit_image(image, width=width, length=length),))
    if data.lstrip()[:1] in (b"^", b"~"):
        return Document(zpl=data)
    raise DocumentError(f"document {path} is not a PDF, an image (PNG, JPEG) or ZPL")
