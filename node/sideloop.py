"""The node's side-loop: one asyncio event loop in a background thread for every side service.

The training loop owns the main thread (hivemind's optimizer needs it for signals);
telemetry, the status endpoint and later the ledger outbox share this one loop. The
trainer hands them plain values with :meth:`SideLoop.call`, which appends to a
thread-safe queue and returns at once; the loop drains the queue every
``drain_interval_s``. It does not wake the loop per call on purpose: a side thread that
jumps for the GIL exactly when the main thread is between the two writes of a large
multiprocessing message lets hivemind's DHT child (whose pipe uvloop made non-blocking)
read half a message and die with ``BlockingIOError`` (when every status update woke the
loop, about one start in two did); a timer-driven drain makes that coincidence rare.

    side = SideLoop(setup=open_services, services=[publisher.run], teardown=flush_services)
    side.start()            # raises whatever ``setup`` raised (e.g. a port in use)
    side.call(state.on_metrics, record)
    side.stop(timeout=5)    # runs ``teardown`` (flush), then cancels the services
"""

from __future__ import annotations

import asyncio
import collections
import logging
import threading
from collections.abc import Awaitable, Callable
from typing import Any

log = logging.getLogger(__name__)

Service = Callable[[], Awaitable[None]]


class SideLoop:
    def __init__(self, setup: Service | None = None, services: list[Service] | None = None,
                 teardown: Service | None = None, name: str = "hivenet-side", drain_interval_s: float = 0.25) -> None:
        self._setup, self._services, self._teardown = setup, list(services or []), teardown
        self._thread = threading.Thread(target=self._thread_main, name=name, daemon=True)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._start_error: BaseException | None = None
        self._inbox: collections.deque[tuple[Callable[..., Any], tuple[Any, ...]]] = collections.deque()
        self._drain_interval_s = drain_interval_s

    def start(self, timeout: float = 30.0) -> None:
        self._thread.start()
        if not self._ready.wait(timeout):
            raise TimeoutError(f"the side-loop did not start within {timeout} s")
        if self._start_error is not None:
            self._thread.join(timeout)
            raise self._start_error

    def call(self, fn: Callable[..., Any], *args: Any) -> None:
        """Run ``fn(*args)`` in the loop within ``drain_interval_s``, in call order; safe from any thread."""
        self._inbox.append((fn, args))  # deque.append is atomic: no lock, no wake-up

    def _drain(self) -> None:
        while self._inbox:
            fn, args = self._inbox.popleft()
            fn(*args)

    def stop(self, timeout: float = 10.0) -> bool:
        """Deliver what is queued, teardown (flush), cancel the services, join; False if it did not end in time."""
        loop = self._loop
        if loop is not None and self._stop is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(self._stop.set)
            except RuntimeError:  # the loop closed meanwhile: nothing left to stop
                pass
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def _thread_main(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as e:  # noqa: BLE001 - a side service's bug must not take the training down
            log.error("side-loop ended with an error: %r", e)
        finally:
            self._ready.set()

    async def _drain_forever(self) -> None:
        while True:
            self._drain()
            await asyncio.sleep(self._drain_interval_s)

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        try:
            if self._setup is not None:
                await self._setup()
        except BaseException as e:
            self._start_error = e
            return
        finally:
            self._ready.set()
        async with asyncio.TaskGroup() as tg:
            tasks = [tg.create_task(service()) for service in [*self._services, self._drain_forever]]
            try:
                await self._stop.wait()
                self._drain()  # the last stage and status reach the services before they flush
                if self._teardown is not None:
                    await self._teardown()
            finally:
                for task in tasks:
                    task.cancel()
