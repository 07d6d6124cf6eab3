"""A P2P client of this process's DHT daemon, in an event loop of its own thread: ``P2PThread``.

Snapshot serving and fetching run beside code that owns no event loop (the training loop in the main
thread, a validator's thread), so they get one: a thread with an asyncio loop and a fresh replica of the
DHT's P2P (hivemind's ``DHT.replicate_p2p`` caches one replica per DHT, bound to the first loop that
asked; a fresh one shares no loop with other users). The replica only talks to the p2p daemon over its
own socket; the one message to the DHT process (the daemon's address) is sent from the thread that
calls ``start``, which is the thread that uses that DHT.

    link = P2PThread(dht)
    p2p = link.start()
    link.run(server.start(p2p), timeout=10)
    link.close()
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

from hivemind.dht.node import DHTNode
from hivemind.p2p import P2P
from hivemind.p2p.p2p_daemon_bindings.utils import P2PDaemonError

from node.swarm.dht import DHT

log = logging.getLogger(__name__)
T = TypeVar("T")


async def _daemon_listen_maddr(_dht: DHT, node: DHTNode) -> Any:
    """Runs inside the DHT process (``DHT.run_coroutine``): the address its p2p daemon listens on for clients."""
    return node.p2p.daemon_listen_maddr


class P2PThread:
    def __init__(self, dht: DHT, name: str = "hivenet-p2p") -> None:
        self.dht = dht
        self.p2p: P2P | None = None
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name=name, daemon=True)

    def start(self, timeout: float = 30.0) -> P2P:
        """Starts the loop and connects the replica; raises TimeoutError or the daemon's error."""
        maddr = self.dht.run_coroutine(_daemon_listen_maddr)
        self._thread.start()
        self.p2p = self.run(P2P.replicate(maddr), timeout)
        return self.p2p

    def run(self, coro: Coroutine[Any, Any, T], timeout: float) -> T:
        """Runs ``coro`` in the loop and waits for it; cancels it and raises TimeoutError after ``timeout`` s."""
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise TimeoutError(f"p2p call did not finish within {timeout:.1f} s") from None

    def close(self, timeout: float = 5.0) -> None:
        """Shuts the replica down (the daemon, owned by the DHT, stays) and stops the loop."""
        if not self._thread.is_alive():
            return
        if self.p2p is not None:
            try:
                self.run(self.p2p.shutdown(), timeout)
            except (TimeoutError, OSError, P2PDaemonError) as e:
                log.debug("p2p replica shutdown: %s", e)
            self.p2p = None
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout)
        if not self._thread.is_alive():
            self._loop.close()
