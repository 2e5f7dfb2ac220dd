"""Brother QL: raster encoding (brother-ql-next) and the label sizes it knows.

:func:`encode_raster` is what the label renderer calls; the printers reached by URL
(``ql+tcp``, ``ql+usb``, ``ql+file``) live in :mod:`drivers.printers.ql.printer`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

from PIL import Image

from drivers.errors import BadDeviceURL, LabelDoesNotFit
from drivers.printers.url import PrinterURL

__all__ = ["QLLabel", "encode_raster", "encoder_from_url", "label_spec", "model_names"]

QL_DPI = 300


@dataclasses.dataclass(frozen=True, kw_only=True)
class QLLabel:
    """A Brother label size: tape (width, length) in mm (length 0 = endless) and dots."""

    identifier: str
    width_mm: int
    length_mm: int
    endless: bool
    printable_dots: tuple[int, int]
    two_colour: bool

    @property
    def size(self) -> tuple[int, int]:
        """(width, length) in mm as the printer reports it in its status block."""
        return (self.width_mm, self.length_mm)


def label_spec(label: str) -> QLLabel:
    """The Brother label ``label`` (``62``, ``62x100``, ``102x152``, ``62red``...)."""
    from brother_ql.labels import Color, FormFactor, LabelsManager

    try:
        spec = LabelsManager()[label]
    except KeyError:
        known = ", ".join(LabelsManager().identifiers())
        raise BadDeviceURL(f"unknown Brother label {label!r} (known: {known})") from None
    return QLLabel(
        identifier=spec.identifier,
        width_mm=spec.tape_size[0],
        length_mm=spec.tape_size[1],
        endless=spec.form_factor == FormFactor.ENDLESS,
        printable_dots=(int(spec.dots_printable[0]), int(spec.dots_printable[1])),
        two_colour=spec.color == Color.BLACK_RED_WHITE,
    )


def model_names() -> list[str]:
    """Every Brother QL model brother-ql-next can encode for."""
    from brother_ql.models import ModelsManager

    return list(ModelsManager().identifiers())


def _fit_endless(image: Image.Image, *, width: int) -> Image.Image:
    # brother_ql would rescale an image of the wrong width, which smears barcode
    # modules off the printer's dots; pad a narrower image instead, refuse a wider one.
    if image.width > width:
        raise LabelDoesNotFit(
            f"label image is {image.width} dots wide; this roll prints at most {width}"
        )
    if image.width == width:
        return image
    if image.mode not in ("1", "L", "RGB"):
        image = image.convert("RGB")
    fill = 255 if image.mode in ("1", "L") else (255, 255, 255)
    padded = Image.new(image.mode, (width, image.height), fill)
    padded.paste(image, ((width - image.width) // 2, 0))
    return padded


def encode_raster(
    images: Sequence[Image.Image],
    *,
    model: str,
    label: str,
    red: bool = False,
    cut: bool = True,
    dpi_600: bool = False,
    compress: bool = False,
) -> bytes:
    """Brother QL raster bytes for ``images`` (one page each) on ``model``/``label``.

    Images are at 300 dpi (600 dpi tall with ``dpi_600``), as wide as the label's
    printable dots for endless rolls (narrower ones are centred), or exactly the
    label's printable size for die-cut labels (either orientation). ``red`` needs a
    two-colour model and a ``62red`` roll. Raises :class:`LabelDoesNotFit` for an
    image that cannot print without cropping or scaling.
    """
    from brother_ql.conversion import convert
    from brother_ql.exceptions import BrotherQLError, BrotherQLUnknownModel
    from brother_ql.raster import BrotherQLRaster

    if not images:
        raise ValueError("encode_raster needs at least one image")
    spec = label_spec(label)
    try:
        qlr = BrotherQLRaster(model)
    except (BrotherQLUnknownModel, KeyError):
        known = ", ".join(model_names())
        raise BadDeviceURL(f"unknown Brother QL model {model!r} (known: {known})") from None
    pages = list(images)
    if spec.endless:
        width = spec.printable_dots[0] * (2 if dpi_600 else 1)
        pages = [_fit_endless(im, width=width) for im in pages]
    try:
        data: bytes = convert(
            qlr, pages, label, cut=cut, red=red, dpi_600=dpi_600, compress=compress
        )
    except ValueError as exc:
        raise LabelDoesNotFit(f"label image does not fit the {label} label: {exc}") from None
    except BrotherQLError as exc:
        raise LabelDoesNotFit(f"cannot encode for {model} on {label}: {exc}") from None
    return data


def encoder_from_url(url: PrinterURL) -> Callable[[list[Image.Image]], bytes]:
    """An image encoder configured from ``model``/``label``/``red``/``cut`` options."""
    model = url.text("model", "QL-820NWB")
    label = url.text("label", "62")
    red = url.flag("red", False)
    cut = url.flag("cut", True)
    if model not in model_names():
        raise BadDeviceURL(f"{url.url}: unknown Brother QL model {model!r}")
    label_spec(label)

    def encode(images: list[Image.Image]) -> bytes:
        return encode_raster(images, model=model, label=label, red=red, cut=cut)

    return encode
