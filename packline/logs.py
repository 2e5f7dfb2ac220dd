"""Logging set-up shared by every command: one line per record, to stderr."""

from __future__ import annotations

import logging
import os

__all__ = ["setup_logging"]

FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


def setup_logging(level: str | None = None) -> None:
    """Configure the root logger once; ``PACKLINE_LOG_LEVEL`` overrides the default."""
    name = (level or os.environ.get("PACKLINE_LOG_LEVEL") or "INFO").upper()
    logging.basicConfig(level=getattr(logging, name, logging.INFO), format=FORMAT, force=True)
    # paho and uvicorn are chatty at INFO; their warnings still come through.
    for noisy in ("uvicorn.access", "sse_starlette", "alembic.runtime.migration"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
