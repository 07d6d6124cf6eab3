"""Run manifests in the DHT: store one under its run id, read every candidate back.

Key ``hivenet_run_manifest:<run_id>``; one subkey per creator address, so a creator's newer manifest
replaces its older one and another creator's cannot overwrite it. The value is the signed envelope's JSON
bytes (``protocol.run_manifest``), self-authenticating: readers verify hash and signature themselves
(``node.run.resolve``), so this module moves bytes and trusts none of them.

    dht = client_dht(("/ip4/.../p2p/...",))     # a short-lived DHT peer for a command
    publish_manifest(dht, run_id, creator, signed.to_json(), ttl=7 * 86400, timeout=15)
    values = fetch_manifest_values(dht, run_id, timeout=30)
    dht.shutdown()
"""

from __future__ import annotations

import time

from node.swarm.config import SwarmConfig
from node.swarm.dht import DHT, dht_time, start_dht
from protocol.run_manifest import MAX_MANIFEST_BYTES

KEY_PREFIX = "hivenet_run_manifest:"
RETRY_S = 1.0  # between DHT lookups while no record is found: a fresh store takes a moment to reach the peers


def manifest_key(run_id: str) -> str:
    return KEY_PREFIX + run_id


def client_dht(initial_peers: tuple[str, ...], run_id: str = "manifest-client") -> DHT:
    """A DHT peer on loopback joined through ``initial_peers``; BootstrapError when none answers."""
    return start_dht(SwarmConfig(run_id=run_id, initial_peers=initial_peers))


def publish_manifest(dht: DHT, run_id: str, creator: str, value: bytes, ttl: float, timeout: float) -> bool:
    """Store ``value`` under ``run_id`` and the creator's subkey for ``ttl`` seconds; True when the DHT accepted it."""
    future = dht.store(manifest_key(run_id), value, dht_time() + ttl, subkey=creator.lower(), return_future=True)
    try:
        return bool(future.result(timeout=timeout))
    except TimeoutError:
        return False


def fetch_manifest_values(dht: DHT, run_id: str, timeout: float) -> list[bytes]:
    """Every unexpired value stored under ``run_id`` (unverified), waiting up to ``timeout`` seconds for one.

    Values that are not bytes or are larger than a manifest can be are dropped here; an empty list means
    no peer served any record for the run within the timeout.
    """
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        try:
            found = dht.get(manifest_key(run_id), latest=True, return_future=True).result(timeout=max(0.1, left))
        except TimeoutError:
            found = None
        values = _values(found)
        if values or time.monotonic() + RETRY_S >= deadline:
            return values
        time.sleep(RETRY_S)


def _values(found: object) -> list[bytes]:
    value = getattr(found, "value", None)
    if not isinstance(value, dict):
        return []
    now = dht_time()
    out = []
    for item in value.values():
        raw, expiration = getattr(item, "value", None), getattr(item, "expiration_time", 0.0)
        if isinstance(raw, bytes) and len(raw) <= MAX_MANIFEST_BYTES and expiration > now:
            out.append(raw)
    return out
