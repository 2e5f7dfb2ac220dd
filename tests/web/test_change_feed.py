"""The pages' change signal is read once per interval, however many pages listen."""

from __future__ import annotations

import asyncio

from sqlalchemy.engine import Engine

from central.ingest import store_batch
from central.views import change_token
from tests.support.central import batch, event
from web.changes import ChangeFeed


def test_fifty_listeners_one_read_each_change(engine: Engine) -> None:
    feed = ChangeFeed(lambda: change_token(engine), interval=1.0)
    got: list[list[str]] = [[] for _ in range(50)]

    async def listen(mine: list[str]) -> None:
        async for token in feed.listen():
            mine.append(token)

    async def until(ready: int) -> None:
        while any(len(g) < ready for g in got):
            await asyncio.sleep(0.01)

    async def run() -> None:
        tasks = [asyncio.create_task(listen(g)) for g in got]
        await asyncio.wait_for(until(1), 60)
        assert feed.reads == 1
        assert len({g[0] for g in got}) == 1
        await asyncio.to_thread(
            store_batch, engine, batch("bench-01", event("bench-01", 2, order_no="PDD-2"))
        )
        await asyncio.wait_for(until(2), 60)
        # Each listener got the change once, from one read per interval (not 50).
        assert all(len(g) == 2 and g[1] != g[0] for g in got)
        assert feed.reads <= 3
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        # Nobody listens: the poll stops.
        await asyncio.sleep(1.5)
        before = feed.reads
        await asyncio.sleep(1.5)
        assert feed.reads == before

    asyncio.run(run())
