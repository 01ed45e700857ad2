"""The daemon's timer heap: exact deadlines, lazy removal, and no key kept alive by a stale entry."""

from __future__ import annotations

import asyncio
import gc
import weakref
from collections.abc import Hashable, Iterator

import pytest

from pilotsock.daemon.scheduler import Scheduler


class Key:
    """Stands for a stream endpoint (hashable by identity, may be large)."""


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    try:
        yield loop
    finally:
        loop.close()


def test_due_keys_fire_once_at_their_latest_deadline(loop: asyncio.AbstractEventLoop) -> None:
    fired: list[tuple[Hashable, float]] = []
    scheduler = Scheduler(loop, lambda key, now: fired.append((key, now)))
    now = loop.time()
    scheduler.schedule("a", now - 1.0)
    scheduler.schedule("b", now - 2.0)
    scheduler.schedule("b", now + 60.0)  # moved later: the earlier entry is stale
    scheduler.schedule("c", now - 3.0)
    scheduler.schedule("c", None)  # cancelled
    assert len(scheduler) == 2
    scheduler._fire()
    assert [key for key, _ in fired] == ["a"] and len(scheduler) == 1


def test_stale_entries_do_not_keep_their_keys_alive(loop: asyncio.AbstractEventLoop) -> None:
    """A dial loop: each stream schedules a far deadline (keepalive), then goes away. The heap's
    stale entries must not hold thousands of finished streams until those deadlines pass."""
    scheduler = Scheduler(loop, lambda key, now: None)
    now = loop.time()
    refs = []
    for step in range(5000):
        key = Key()
        refs.append(weakref.ref(key))
        scheduler.schedule(key, now + 30.0 + step * 1e-6)
        scheduler.schedule(key, now + 120.0 + step * 1e-6)
        scheduler.schedule(key, None)
    gc.collect()
    alive = sum(ref() is not None for ref in refs)
    assert len(scheduler) == 0 and alive <= 300, alive
    scheduler.close()
