"""One poll of the database's change signal per process, however many pages listen.

Every open page holds an event stream; each used to poll the database itself, so 200
wall displays and phones made 200 queries per interval, and a change reached the last
of them late. :class:`ChangeFeed` polls once per interval while anybody listens and
hands each listener every new value.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, Callable

import sqlalchemy as sa
from starlette.concurrency import run_in_threadpool

__all__ = ["ChangeFeed"]

log = logging.getLogger(__name__)


class _Loop:
    """What the feed keeps per event loop (a test client runs one of its own)."""

    def __init__(self) -> None:
        self.changed = asyncio.Condition()
        self.poller: asyncio.Task[None] | None = None
        self.listeners = 0
        self.token: str | None = None


class ChangeFeed:
    """``read()`` (e.g. :func:`central.views.change_token`, a blocking database read)
    every ``interval`` seconds while anybody listens; :meth:`listen` gives its value
    and then each new one."""

    def __init__(self, read: Callable[[], str], *, interval: float) -> None:
        self.read = read
        self.interval = interval
        self._loops: dict[asyncio.AbstractEventLoop, _Loop] = {}
        #: How many times the database was read (all listeners together).
        self.reads = 0

    def _here(self) -> _Loop:
        loop = asyncio.get_running_loop()
        here = self._loops.get(loop)
        if here is None:
            for gone in [other for other in self._loops if other.is_closed()]:
                del self._loops[gone]
            here = self._loops[loop] = _Loop()
        return here

    async def _poll(self, here: _Loop) -> None:
        while here.listeners:
            try:
                self.reads += 1
                token = await run_in_threadpool(self.read)
            except sa.exc.SQLAlchemyError as exc:
                log.warning("the pages' event stream cannot read the database: %s", exc)
            else:
                if token != here.token:
                    async with here.changed:
                        here.token = token
                        here.changed.notify_all()
            await asyncio.sleep(self.interval)

    async def listen(self) -> AsyncGenerator[str, None]:
        """The current value (once read), then every new one, until the caller stops."""
        here = self._here()
        here.listeners += 1
        if here.poller is None or here.poller.done():
            here.poller = asyncio.create_task(self._poll(here), name="change-feed")
        try:
            last: str | None = None
            while True:
                async with here.changed:
                    while here.token is None or here.token == last:
                        await here.changed.wait()
                    last = here.token
                yield last
        finally:
            here.listeners -= 1
