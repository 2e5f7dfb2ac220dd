"""The packer's screen as the kiosk sends it: one JSON view per change, for every page.

The bench only says "changed" (:class:`~edge.view.ViewChanges` calls back on the
bench's thread; the feed turns that into a non-blocking hand-over to the event loop),
and the view is drawn on a worker thread, once per change however many pages are
open. So the scanner loop never waits for a page: not for drawing, not for a slow
browser, not for a page that went away.

Besides every change, the view is drawn again every ``refresh`` seconds and sent when
something in it moved that is not a bench change (central acknowledged the backlog,
the broker went away, the clock skew became known).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from typing import Protocol

from edge.view import BenchView, ViewChanges

__all__ = ["Frame", "ScreenSource", "ViewFeed"]

log = logging.getLogger(__name__)


class ScreenSource(Protocol):
    """What the kiosk shows: the bench's view and its changes (an :class:`~edge.agent.Agent`)."""

    @property
    def changes(self) -> ViewChanges:
        """Bumped whenever :meth:`view` would show something new."""
        ...

    def view(self) -> BenchView:
        """The packer's screen now."""
        ...


@dataclasses.dataclass(frozen=True, kw_only=True)
class Frame:
    """One view as sent: ``seq`` grows with every frame of this feed; ``data`` is the
    view's JSON (one line)."""

    seq: int
    data: str
    view: BenchView


def _moved(view: BenchView) -> str:
    # What makes a refresh worth sending: everything but the clock's own ticking (the
    # page counts ages and deadlines down by itself).
    return view.model_dump_json(exclude={"at": True, "sync": {"oldest_unsent_age_s"}})


class ViewFeed:
    """The latest view of ``source`` for every open page, drawn off the bench's thread.

    Run :meth:`run` on the server's event loop; pages wait with :meth:`next_frame`.
    """

    def __init__(self, *, source: ScreenSource, refresh: float = 2.0) -> None:
        self.source = source
        self.refresh = refresh
        self._frame: Frame | None = None
        self._moved = ""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._poked: asyncio.Event | None = None
        self._new: asyncio.Condition | None = None
        self._stopping = False
        self._failing = False

    @property
    def stopping(self) -> bool:
        """True once the server is shutting down: streams end."""
        return self._stopping

    @property
    def failing(self) -> bool:
        """True while the view cannot be drawn (the pages keep the last one)."""
        return self._failing

    @property
    def latest(self) -> Frame | None:
        """The newest frame, or None before the first view was drawn."""
        return self._frame

    def _poke_from_bench(self, version: int) -> None:
        # Called on the bench's thread: hand over and return at once, never wait.
        loop, poked = self._loop, self._poked
        if loop is None or poked is None:
            return
        with contextlib.suppress(RuntimeError):  # the loop closed while the bench went on
            loop.call_soon_threadsafe(poked.set)

    def _draw(self) -> tuple[BenchView, str, str]:
        view = self.source.view()
        return view, view.model_dump_json(), _moved(view)

    async def _publish(self) -> None:
        try:
            view, data, moved = await asyncio.to_thread(self._draw)
        except Exception:
            # Keep showing the last view; say it once, not at every refresh.
            if not self._failing:
                log.exception("the packer's screen cannot be drawn")
            self._failing = True
            return
        self._failing = False
        if self._frame is not None and moved == self._moved:
            return
        assert self._new is not None
        async with self._new:
            seq = self._frame.seq + 1 if self._frame is not None else 1
            self._frame = Frame(seq=seq, data=data, view=view)
            self._moved = moved
            self._new.notify_all()

    async def run(self) -> None:
        """Draw a view at once, after every change and every ``refresh`` seconds, until
        :meth:`stop`."""
        self._loop = asyncio.get_running_loop()
        self._poked = asyncio.Event()
        self._new = asyncio.Condition()
        unsubscribe = self.source.changes.subscribe(self._poke_from_bench)
        try:
            while not self._stopping:
                self._poked.clear()  # before drawing: a change meanwhile draws again
                await self._publish()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._poked.wait(), timeout=self.refresh)
        finally:
            unsubscribe()

    def stop_soon(self) -> None:
        """:meth:`stop` from another thread (returns at once)."""
        loop = self._loop
        if loop is None or loop.is_closed():
            self._stopping = True
            return
        try:
            asyncio.run_coroutine_threadsafe(self.stop(), loop)
        except RuntimeError:  # closed meanwhile
            self._stopping = True

    async def stop(self) -> None:
        """End :meth:`run` and every page's wait."""
        self._stopping = True
        if self._poked is not None:
            self._poked.set()
        if self._new is not None:
            async with self._new:
                self._new.notify_all()

    async def next_frame(self, *, after: int, timeout: float) -> Frame | None:
        """The first frame with ``seq > after``; None at ``timeout`` or when stopping."""
        if self._new is None:
            await asyncio.sleep(min(timeout, 0.05))  # the feed is starting
            return None
        new = self._new

        def ready() -> bool:
            return self._stopping or (self._frame is not None and self._frame.seq > after)

        async with new:
            try:
                await asyncio.wait_for(new.wait_for(ready), timeout=timeout)
            except TimeoutError:
                return None
        if self._stopping:
            return None
        return self._frame
