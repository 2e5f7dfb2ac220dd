"""The packer's screen (kiosk): a local page served by the agent, live over SSE.

- :mod:`edge.kiosk.listen`: :func:`~edge.kiosk.listen.bind_kiosk` takes the
  ``kiosk_listen`` address at start (or says in one line why it cannot);
- :mod:`edge.kiosk.server`: :class:`~edge.kiosk.server.KioskServer` serves the app
  from a thread of its own;
- :mod:`edge.kiosk.app`: :func:`~edge.kiosk.app.create_kiosk_app`, the page, its
  live feed (``/events``), ``/api/view`` and ``/healthz``;
- :mod:`edge.kiosk.feed`: :class:`~edge.kiosk.feed.ViewFeed` draws the bench's view
  off the bench's thread and hands it to every open page.

See docs/station.md, "The packer's screen".
"""
