"""Waiting on a condition with a deadline: the one way tests wait for something to happen.

A fixed ``sleep`` either wastes time or, on a loaded machine, is too short; polling a predicate until a
deadline does neither. Callers assert on the result, with a message saying what never happened::

    assert wait_until(lambda: len(peer.records("epoch")) >= 1, timeout=60), "node never finished an epoch"
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


def wait_until(predicate: Callable[[], object], timeout: float, poll: float = 0.1) -> bool:
    """True as soon as ``predicate()`` is truthy; False if it is still falsy after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(poll)
    return bool(predicate())


async def wait_until_async(predicate: Callable[[], object], timeout: float, poll: float = 0.01) -> bool:
    """``wait_until`` inside an event loop: other tasks run while it polls."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        await asyncio.sleep(poll)
    return bool(predicate())
