"""Who is paid for each shard of a run: the owner the ShardRegistry on chain names.

    ids = run_shard_ids(shard_store, run_id)           # the vetted shards the run's corpus is built from
    owners = chain_owners(client, ids)                 # shard id -> owner address, registered and not revoked

A shard nobody registered, or one revoked on chain, earns nothing: its data share goes to the owners that
did register (``protocol.scoring.ProportionalPolicy``), or to compute when none did. Unregistered shards are
logged once with the fix (``hivenet shard register``). The validator daemon reads the owners when it builds
its Validator (``node.validator.daemon``); the chain is read through ``LedgerClient`` (web3 stays in node/ledger).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def run_shard_ids(store_root: Path, run_id: str) -> list[str]:
    """Ids of the shards in ``store_root`` that passed vetting for ``run_id`` (the ones receipts credit)."""
    from node.data.store import ShardStore, StoreConfig
    from node.data.vetted import vetted_shards

    return [str(s.shard_id) for s in vetted_shards(ShardStore(StoreConfig(store_root)), run_id)]


def _root(shard_id: str) -> bytes | None:
    try:
        root = bytes.fromhex(shard_id)
    except ValueError:
        return None
    return root if len(root) == 32 else None


def chain_owners(client: Any, shard_ids: Sequence[str]) -> dict[str, str]:
    """shard id -> owner (lowercase address) for each shard registered on chain and not revoked.

    ``client``: a ``LedgerClient`` attached to the run's deployment. Raises ChainUnavailable when the chain
    does not answer (the daemon reports it and stops: paying nobody for data would be silently wrong)."""
    owners: dict[str, str] = {}
    unregistered, revoked = [], []
    for sid in shard_ids:
        root = _root(sid)
        if root is None:  # not a Merkle root: nothing on chain can name its owner
            unregistered.append(sid)
            continue
        record = client.shard(root)
        owner = str(record["owner"])
        if int(owner, 16) == 0:
            unregistered.append(sid)
        elif record["revoked"]:
            revoked.append(sid)
        else:
            owners[sid] = owner.lower()
    if unregistered:
        log.warning("%d of %d shard(s) of the run are not registered on chain and earn nothing: %s; their "
                    "contributors register them with `hivenet shard register`", len(unregistered), len(shard_ids),
                    ", ".join(s[:16] for s in unregistered))
    if revoked:
        log.warning("%d shard(s) of the run were revoked on chain and earn nothing: %s", len(revoked),
                    ", ".join(s[:16] for s in revoked))
    log.info("data owners: %d of %d shard(s) of the run have an owner on chain", len(owners), len(shard_ids))
    return owners
