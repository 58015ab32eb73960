"""The in-process queue of case posts: one at a time per key, keys independent, and no key kept once idle."""

from __future__ import annotations

import asyncio

from service.db import KeyedLock


def test_one_holder_per_key_in_arrival_order_and_idle_keys_are_dropped() -> None:
    events: list[str] = []

    async def post(locks: KeyedLock, key: str, n: int) -> None:
        async with locks.hold(key):
            events.append(f"{key}{n} in")
            await asyncio.sleep(0.01)
            events.append(f"{key}{n} out")

    async def burst() -> int:
        locks = KeyedLock()
        await asyncio.gather(*(post(locks, "a", n) for n in range(3)), post(locks, "b", 0))
        return len(locks)

    assert asyncio.run(burst()) == 0  # nothing left behind for the keys of a 24/7 stream
    assert [e for e in events if e.startswith("a")] == ["a0 in", "a0 out", "a1 in", "a1 out", "a2 in", "a2 out"]
    # Another key does not wait for the first one's queue.
    assert events.index("b0 in") < events.index("a0 out")
