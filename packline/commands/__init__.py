"""The ``packline`` command groups, one module per group (``packline broker`` →
``broker``)."""
