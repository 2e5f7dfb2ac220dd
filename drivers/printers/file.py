"""``file:///DIR``: a virtual printer that writes each job into a directory.

For each job it writes:

* ``{job_id}.png`` (one image) or ``{job_id}-{n}.png`` (several, ``n`` from 1): the
  label images as given, so a person can look at what would have printed;
* ``{job_id}.bin``: the bytes a printer would have received. For raw jobs that is the
  raw payload unchanged. For image jobs it depends on ``encode``: ``png`` (default) —
  the PNG files' bytes one after another (PNG streams are self-delimiting); ``ql`` —
  Brother QL raster for ``model``/``label``; ``zpl`` — ZPL with ``^GF`` graphics.

Every file is written to a temporary name, fsynced and renamed, and ``.bin`` comes
last: a crash never leaves a half file, and a job counts as printed exactly when its
``.bin`` exists. That is also how idempotency survives a restart: a job id whose
``.bin`` is on disk is not written again unless ``reprint=True`` (which replaces the
files). The printer is always ready; results are ``verified=False`` because a
directory cannot confirm that a label came out — "written, printer cannot confirm".
"""

from __future__ import annotations

import io
import os
import urllib.parse
from collections.abc import Callable
from pathlib import Path

from PIL import Image

from drivers.errors import BadDeviceURL, PrinterOffline
from drivers.printers.base import (
    ManagedPrinter,
    PrinterState,
    PrinterStatus,
    PrintJob,
    SendOutcome,
)
from drivers.printers.ledger import LedgerEntry
from drivers.printers.url import PrinterURL

__all__ = ["FilePrinter", "job_file_stem", "open_file_printer"]

OPTIONS = frozenset(
    {"ledger", "roll_labels", "roll_length_mm", "dpi", "encode", "model", "label", "red", "cut"}
)


def job_file_stem(job_id: str) -> str:
    """A file name stem for ``job_id`` that cannot escape the directory."""
    stem = urllib.parse.quote(job_id, safe="-_.")
    return "%2E" + stem[1:] if stem.startswith(".") else stem


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _png_bytes(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


class FilePrinter(ManagedPrinter):
    """Writes jobs as PNG plus raw bytes into ``directory``; always ready."""

    dpi: int

    def __init__(
        self,
        *,
        directory: Path,
        url: str | None = None,
        dpi: int = 300,
        encoder: Callable[[list[Image.Image]], bytes] | None = None,
        ledger_path: Path | None = None,
        roll_labels: int | None = None,
        roll_length_mm: float | None = None,
    ) -> None:
        super().__init__(
            url=url or directory.as_uri(),
            ledger_path=ledger_path,
            roll_labels=roll_labels,
            roll_length_mm=roll_length_mm,
        )
        self.directory = directory
        self.dpi = dpi
        self._encoder = encoder

    def _ensure_dir(self) -> None:
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise PrinterOffline(
                f"Virtual printer cannot write to {self.directory}: {exc.strerror}"
            ) from None
        if not os.access(self.directory, os.W_OK):
            raise PrinterOffline(f"Virtual printer cannot write to {self.directory}")

    def _read_status(self) -> PrinterStatus:
        self._ensure_dir()
        return PrinterStatus(state=PrinterState.READY, detail="virtual printer (writes files)")

    def _already_printed(self, job_id: str) -> LedgerEntry | None:
        # The files are the truth: a job counts as printed exactly when its .bin exists.
        entry = self.ledger.get(job_id)
        written = (self.directory / f"{job_file_stem(job_id)}.bin").exists()
        if entry is not None and entry.state == "done":
            return entry
        if written:
            return LedgerEntry(job_id=job_id, verified=False, labels=0, detail="found on disk")
        return None

    def _send(self, job: PrintJob) -> SendOutcome:
        self._ensure_dir()
        stem = job_file_stem(job.job_id)
        images = list(job.images)
        try:
            pngs = [_png_bytes(im) for im in images]
            if len(pngs) == 1:
                _write_atomic(self.directory / f"{stem}.png", pngs[0])
            else:
                for n, data in enumerate(pngs, start=1):
                    _write_atomic(self.directory / f"{stem}-{n}.png", data)
            if job.raw is not None:
                payload = job.raw * job.copies
            elif self._encoder is not None:
                payload = self._encoder(images * job.copies)
            else:
                payload = b"".join(pngs)
            _write_atomic(self.directory / f"{stem}.bin", payload)
        except OSError as exc:
            raise PrinterOffline(
                f"Virtual printer cannot write to {self.directory}: {exc.strerror}"
            ) from None
        length_mm = None
        if images:
            length_mm = images[0].height / self.dpi * 25.4
        return SendOutcome(
            verified=False,
            detail="written, printer cannot confirm",
            labels=max(1, len(images)) * job.copies,
            label_length_mm=length_mm,
            status=PrinterStatus(state=PrinterState.READY, detail="virtual printer"),
        )


def open_file_printer(url: PrinterURL) -> FilePrinter:
    """Build a :class:`FilePrinter` from a ``file:///DIR`` URL."""
    url.check_options(OPTIONS)
    if not url.path or url.host not in ("", "localhost"):
        raise BadDeviceURL(f"{url.url}: a file printer needs a local directory, file:///DIR")
    encode = url.text("encode", "png")
    encoder: Callable[[list[Image.Image]], bytes] | None
    if encode == "png":
        encoder = None
    elif encode == "ql":
        from drivers.printers.ql.raster import encoder_from_url

        encoder = encoder_from_url(url)
    elif encode == "zpl":
        from drivers.printers.zpl.graphics import images_to_zpl

        dpi = url.integer("dpi", 203, minimum=100) or 203

        def encoder(images: list[Image.Image]) -> bytes:
            return images_to_zpl(images, dpi=dpi)
    else:
        raise BadDeviceURL(f"{url.url}: option encode must be png, ql or zpl")
    return FilePrinter(
        directory=Path(url.path),
        url=url.url,
        dpi=url.integer("dpi", 300, minimum=100) or 300,
        encoder=encoder,
        ledger_path=url.path_option("ledger"),
        roll_labels=url.integer("roll_labels", None, minimum=1),
        roll_length_mm=url.number("roll_length_mm", 0) or None,
    )
