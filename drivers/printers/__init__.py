"""Printers: one module per transport, chosen by URL."""
