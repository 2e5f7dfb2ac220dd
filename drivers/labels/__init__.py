"""Label renderers: pure functions from order data to Pillow images, in printer dots.

Order data in (:class:`sync.order.Order`, the one order model, or the order object as
a mapping), a 1-bit Pillow image out, sized in the printer's dots so that barcodes land
on whole dots; encoders in :mod:`drivers.printers` turn the image into Brother raster or ZPL.
"""

from drivers.labels.fonts import FONT_ENV, FontNotFound, find_font
from drivers.labels.masking import mask_name, mask_phone
from drivers.labels.render import (
    KINDS,
    RETURN_OUTCOMES,
    label_texts,
    render,
    render_packing_list,
    render_product,
    render_return,
    render_waybill,
)
from drivers.labels.sizes import LABEL_SIZES, LabelSize, UnknownLabelSize, canvas_dots, label_size

__all__ = [
    "FONT_ENV",
    "KINDS",
    "LABEL_SIZES",
    "RETURN_OUTCOMES",
    "FontNotFound",
    "LabelSize",
    "UnknownLabelSize",
    "canvas_dots",
    "find_font",
    "label_size",
    "label_texts",
    "mask_name",
    "mask_phone",
    "render",
    "render_packing_list",
    "render_product",
    "render_return",
    "render_waybill",
]
