"""ZPL printers (Zebra and compatibles), one module per concern.

* :mod:`drivers.printers.zpl.graphics` — images to ``^GF`` graphic fields and back;
  what the label renderer calls.
* :mod:`drivers.printers.zpl.status` — the ``~HS`` host status as data tables, and
  what it means for a job.
* :mod:`drivers.printers.zpl.printer` — the printers reached by URL (``zpl+tcp``,
  ``zpl+serial``), with status read before and confirmed after every job.

Nothing is imported here, so importing one module does not pull in the others.
"""

__all__: list[str] = []
