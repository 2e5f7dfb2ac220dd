"""The packer's screen (kiosk): a local page served by the agent, live over SSE.

:func:`bind_kiosk` takes the ``kiosk_listen`` address at start; :class:`KioskServer`
serves :func:`create_kiosk_app` on it from a thread of its own; :class:`ViewFeed`
draws the bench's view off the bench's thread and hands it to every open page.
See docs/station.md, "The packer's screen".
"""

from edge.kiosk.app import create_kiosk_app
from edge.kiosk.feed import Frame, ScreenSource, ViewFeed
from edge.kiosk.server import KioskServer, KioskUnavailable, bind_kiosk, split_listen

__all__ = [
    "Frame",
    "KioskServer",
    "KioskUnavailable",
    "ScreenSource",
    "ViewFeed",
    "bind_kiosk",
    "create_kiosk_app",
    "split_listen",
]
