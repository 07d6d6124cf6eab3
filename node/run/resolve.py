"""Get a run's manifest from a file or from the DHT, verified, and pick the one to run with.

    signed = load_manifest_file(Path("manifest.json"))
    signed = fetch_manifest("demo", ("/ip4/.../p2p/...",), timeout=30.0, creator="")

Both verify the content id and the signature (``protocol.run_manifest``). From the DHT every record under
the run id is verified; records that fail are dropped (and counted in the error when nothing is left), a
manifest for another run id is refused, and when several valid manifests from different creators claim
the run, the caller must name the creator it trusts.
"""

from __future__ import annotations

import logging
from pathlib import Path

from protocol.errors import ConfigError, SwarmError
from protocol.run_manifest import MAX_MANIFEST_BYTES, RunManifestError, SignedRunManifest, parse_signed_manifest

log = logging.getLogger(__name__)


class RunNotServed(SwarmError, TimeoutError):
    """No peer served a valid manifest for the run id before the timeout."""


def load_manifest_file(path: Path, creator: str = "") -> SignedRunManifest:
    """The verified manifest in ``path``; ``creator`` (lower-case address, "" any) must have signed it."""
    source = f"manifest file {path}"
    try:
        size = path.stat().st_size
        if size > MAX_MANIFEST_BYTES:
            raise RunManifestError(f"{source} is {size} bytes, over the {MAX_MANIFEST_BYTES}-byte limit of a run manifest")
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{source} does not exist; create it with `hivenet run create` or fix --manifest") from None
    except IsADirectoryError:
        raise ConfigError(f"{source} is a directory, not a manifest file") from None
    signed = parse_signed_manifest(data, source)
    _check_creator(signed, creator, source)
    return signed


def _check_creator(signed: SignedRunManifest, creator: str, source: str) -> None:
    if creator and signed.creator != creator:
        raise RunManifestError(f"{source} is signed by {signed.creator}, not by the expected creator {creator}; "
                               "get the run's manifest from its creator or change --manifest-creator")


def select_manifest(values: list[bytes], run_id: str, creator: str = "") -> SignedRunManifest:
    """The one manifest of ``run_id`` among DHT ``values`` (unverified bytes); RunManifestError otherwise."""
    valid: dict[str, SignedRunManifest] = {}
    refused: list[str] = []
    for raw in values:
        try:
            signed = parse_signed_manifest(raw, f"a DHT record of run {run_id!r}")
        except RunManifestError as e:
            log.warning("refused a manifest record: %s", e)
            refused.append(str(e))
            continue
        if signed.manifest.run_id != run_id:
            refused.append(f"a manifest of run {signed.manifest.run_id!r} stored under run {run_id!r}")
            continue
        if creator and signed.creator != creator:
            continue
        valid[signed.content_id] = signed
    if not valid:
        why = f"; {len(refused)} record(s) refused, e.g. {refused[0]}" if refused else ""
        whose = f" signed by {creator}" if creator else ""
        raise RunManifestError(f"no valid manifest of run {run_id!r}{whose} in the DHT{why}; "
                               "ask the run's creator to publish it (`hivenet run publish`)")
    if len(valid) > 1:
        listed = ", ".join(f"{s.content_id[:16]} by {s.creator}" for s in valid.values())
        raise RunManifestError(f"{len(valid)} different manifests claim run {run_id!r} ({listed}); "
                               "pass --manifest-creator with the address of the creator you trust")
    return next(iter(valid.values()))


def fetch_manifest(run_id: str, initial_peers: tuple[str, ...], timeout: float, creator: str = "") -> SignedRunManifest:
    """The verified manifest of ``run_id`` from the DHT reached through ``initial_peers``.

    Raises BootstrapError when no initial peer answers, RunNotServed when no record arrives within
    ``timeout`` seconds, RunManifestError when none of the records is a valid manifest of the run.
    """
    if not initial_peers:
        raise ConfigError("fetching a run's manifest from the DHT needs --initial-peers (the address of any peer "
                          "of the run); or give the manifest file with --manifest")
    from node.swarm.manifests import client_dht, fetch_manifest_values

    dht = client_dht(initial_peers)
    try:
        values = fetch_manifest_values(dht, run_id, timeout)
    finally:
        dht.shutdown()
    if not values:
        raise RunNotServed(f"no peer served a manifest for run {run_id!r} within {timeout:g} s; check the run id, "
                           "or ask its creator to publish it (`hivenet run publish`)")
    return select_manifest(values, run_id, creator)
