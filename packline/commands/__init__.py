"""The ``packline`` command groups, one module per group (``packline edge`` → ``edge``).

They are the application shell's glue: they read settings and options, call the
libraries (``edge``, ``central``, ``drivers``, ``sync``, ``web``) and turn what a person
can get wrong into one line on stderr.
"""
