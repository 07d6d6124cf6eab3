"""A data contributor registers shards in the ShardRegistry, so validators pay the data share to its account.

    shards = [ShardClaim(shard_id, license, manifest_owner), ...]      # from the shard store's manifests
    for outcome in register_shards(client, shards):                     # the client's account becomes owner
        print(outcome.shard_id, outcome.status)                          # registered | already registered | revoked

Idempotent: a shard this account registered before is reported, not sent again. Every shard is checked
before the first transaction: one registered by another account, or whose manifest credits another
account, refuses the whole command (naming that owner), so nothing is half done. ``hivenet shard register``
(``node.cli.shard_cmd``) is the command.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from node.ledger.client import LedgerClient
from node.ledger.operator import require_gas
from protocol.errors import LedgerError

NO_OWNER = "0x" + "00" * 20
REGISTERED, ALREADY, REVOKED = "registered", "already registered", "revoked"


class ShardOwnedElsewhere(LedgerError):
    """A shard is (or is to be) credited to an account other than the registering one."""


@dataclass(frozen=True)
class ShardClaim:
    shard_id: str  # 64 hex digits: the Merkle root of the shard's chunks, the registry's key
    license: str  # SPDX id from the manifest
    manifest_owner: str | None = None  # the account the manifest credits (``shard add --owner``), if any

    @property
    def root(self) -> bytes:
        try:
            root = bytes.fromhex(self.shard_id)
        except ValueError:
            root = b""
        if len(root) != 32:
            raise LedgerError(f"shard id {self.shard_id!r} is not 64 hex digits; check the shard store")
        return root


@dataclass(frozen=True)
class Outcome:
    shard_id: str
    status: str  # REGISTERED | ALREADY | REVOKED
    owner: str
    license: str
    tx_hash: str | None = None

    def as_dict(self) -> dict[str, str | None]:
        return {"shard_id": self.shard_id, "status": self.status, "owner": self.owner, "license": self.license,
                "tx_hash": self.tx_hash}


def _is_unset(owner: str) -> bool:
    return int(owner, 16) == 0


def plan(client: LedgerClient, shards: Sequence[ShardClaim]) -> list[tuple[ShardClaim, dict]]:
    """Each shard with its registry record; raises ShardOwnedElsewhere before anything is sent."""
    me = client.address.lower()
    out = []
    for shard in shards:
        if shard.manifest_owner and shard.manifest_owner.lower() != me:
            raise ShardOwnedElsewhere(
                f"shard {shard.shard_id[:16]}'s manifest credits {shard.manifest_owner}, not this keystore's "
                f"account {client.address}; register it with that account's keystore")
        record = client.shard(shard.root)
        owner = str(record["owner"])
        if not _is_unset(owner) and owner.lower() != me:
            raise ShardOwnedElsewhere(
                f"shard {shard.shard_id[:16]} is registered on chain to {owner}, not to {client.address}; "
                "the first registration holds (leave it out of the command)")
        out.append((shard, record))
    return out


def register_shards(client: LedgerClient, shards: Sequence[ShardClaim]) -> list[Outcome]:
    """Registers each shard not yet registered with the client's account as owner; see the module doc."""
    planned = plan(client, shards)
    if any(_is_unset(str(record["owner"])) for _, record in planned):
        require_gas(client)
    outcomes = []
    for shard, record in planned:
        if not _is_unset(str(record["owner"])):
            status = REVOKED if record["revoked"] else ALREADY
            outcomes.append(Outcome(shard.shard_id, status, str(record["owner"]), str(record["license"])))
            continue
        sent = client.register_shard(shard.root, shard.license)
        outcomes.append(Outcome(shard.shard_id, REGISTERED, client.address, shard.license, sent.tx_hash))
    return outcomes
