"""Barriers over the DHT: wait until every expected peer of a run has arrived.

Each peer stores a subkey (its peer id) under one key per barrier and polls
until the key holds enough subkeys. Without a start barrier, the first peer
trains alone ("Proceeding with local gradients") and parameters diverge.
"""

from __future__ import annotations

import time

import hivemind
from hivemind.utils import get_dht_time

from protocol.errors import PeersNotFound

_RECORD_TTL = 600.0  # seconds a barrier record lives; longer than any wait, short enough to vanish after a run


def barrier_key(run_id: str, name: str) -> str:
    return f"{run_id}_barrier_{name}"


def arrive(dht: hivemind.DHT, run_id: str, name: str, timeout: float = 30.0, label: str | None = None) -> None:
    """Record this peer's arrival at barrier ``name`` of ``run_id``, retrying for up to ``timeout`` s.

    ``run_id`` keys the barrier (a run and its model: node.swarm.models); ``label`` names the run in messages.

    A store right after joining can find no node to hold the record yet (on a loaded machine),
    so a failed store is retried with backoff before it counts as an error.
    """
    peer = dht.peer_id.to_base58()
    deadline, delay = time.monotonic() + timeout, 0.2
    while not dht.store(barrier_key(run_id, name), subkey=peer, value=time.time(),
                        expiration_time=get_dht_time() + _RECORD_TTL):
        if time.monotonic() + delay > deadline:
            raise PeersNotFound(
                f"could not store the {name!r} barrier record in the DHT of run {label or run_id!r} within {timeout:.0f} s; "
                "check that the initial peers are reachable"
            )
        time.sleep(delay)
        delay = min(delay * 2, 5.0)


def arrived(dht: hivemind.DHT, run_id: str, name: str) -> set[str]:
    """Peer ids that have arrived at the barrier so far."""
    found = dht.get(barrier_key(run_id, name), latest=True)
    if found is None or not isinstance(found.value, dict):
        return set()
    return set(found.value)


def wait_for_peers(
    dht: hivemind.DHT, run_id: str, name: str, expected: int, timeout: float, poll: float = 0.5, label: str | None = None
) -> set[str]:
    """Arrive at the barrier, then wait until ``expected`` peers have; PeersNotFound after ``timeout`` s."""
    arrive(dht, run_id, name, label=label)
    deadline = time.monotonic() + timeout
    while True:
        peers = arrived(dht, run_id, name)
        if len(peers) >= expected:
            return peers
        if time.monotonic() >= deadline:
            raise PeersNotFound(
                f"only {len(peers)} of {expected} peers of run {label or run_id!r} appeared within {timeout:.0f} s; "
                "start the missing peers with the same --run-id and --initial-peers, or lower --expected-peers"
            )
        time.sleep(poll)
