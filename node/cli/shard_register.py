"""``hivenet shard register``'s body: the store's shards to the ShardRegistry, owned by the keystore's account.

    hivenet shard register --store shards/ --rpc URL --deployment deployment.json --keystore node.key --password-file pw
    hivenet shard register 5d854da8 --store shards/ --rpc URL ... --json

The chain side (idempotence, owner checks) is ``node.ledger.shard_registration``.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer


def register(shards: list[str], store: Path, rpc: str, deployment: Path, keystore: Path, password_file: Path | None,
             outbox: Path | None, as_json: bool) -> None:
    """Raises HivenetError (the caller prints it) before anything is sent when a shard cannot be registered."""
    from node.cli.ledger_cmd import open_client
    from node.data.store import ShardStore, StoreConfig
    from node.ledger.shard_registration import REVOKED, ShardClaim, register_shards
    from protocol.errors import ShardNotFound

    if not store.is_dir():
        raise ShardNotFound(f"no shard store at {store}; pack files with `hivenet shard add PATH --store {store}` first")
    s = ShardStore(StoreConfig(store))
    ids = sorted({s.resolve(p) for p in shards}) if shards else s.ids()
    if not ids:
        raise ShardNotFound(f"no shard in {s.root} to register; pack files with `hivenet shard add PATH --store {s.root}` first")
    claims = []
    for sid in ids:
        manifest = s.manifest(sid)  # parsed and checked against its id
        claims.append(ShardClaim(str(sid), manifest.license, manifest.owner))
    client = open_client(rpc, deployment, keystore, password_file, outbox)
    try:
        outcomes = register_shards(client, claims)
    finally:
        client.close()
    if as_json:
        typer.echo(json.dumps({"owner": client.address, "shards": [o.as_dict() for o in outcomes]}))
        return
    for o in outcomes:
        typer.echo(f"{o.shard_id[:16]}  {o.status}  owner {o.owner}  license {o.license}")
        if o.status == REVOKED:
            typer.echo(f"warning: shard {o.shard_id[:16]} was revoked on chain and earns nothing", err=True)
