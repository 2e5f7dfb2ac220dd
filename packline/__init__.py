"""packline: packing-bench edge agent and central deadline service."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("packline")
except PackageNotFoundError:  # pragma: no cover - running from a bare checkout
    __version__ = "0.0.0"

__all__ = ["__version__"]
