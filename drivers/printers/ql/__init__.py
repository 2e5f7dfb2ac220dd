"""Brother QL printers, one module per concern.

* :mod:`drivers.printers.ql.raster` — images to Brother raster (brother-ql-next) and
  the label sizes it knows; what the label renderer calls.
* :mod:`drivers.printers.ql.status` — the 32-byte status block as data tables, and
  what it means for a job.
* :mod:`drivers.printers.ql.printer` — the printers reached by URL (``ql+tcp``,
  ``ql+usb``, ``ql+file``), with status read before and confirmed after every job.

Nothing is imported here, so importing one module (the raster encoder, say) does not
pull in the others.
"""

__all__: list[str] = []
