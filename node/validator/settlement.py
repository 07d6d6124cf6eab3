"""Epoch settlement: verdicts -> rewards (``protocol.scoring``) -> cumulative Merkle root -> ledger.

    book = RewardBook(run_id, ProportionalPolicy(7000), emission=10**21, owners={shard_id: "0x.."})
    s = book.settle(epoch, verdicts)          # pure bookkeeping; s.root, s.tree, s.cumulative
    post(client, s); save(out_dir, s)         # chain and files
    publish(publisher, run_id, s)             # the network (node.swarm.rewards_board.RewardsPeer)

Training epoch ``e`` settles as ledger epoch ``e + 1`` (the contract numbers epochs from 1).
The spot-check seed of epoch ``e`` is the root settled for the epoch before (a genesis hash
for the first), so every validator picks the same receipts. Files written per epoch:
``rewards-<ledger epoch>.json`` (the format ``hivenet rewards show|claim`` reads: every
account's cumulative amount, from which anyone rebuilds its proof) and
``verdicts-<epoch>.json`` (each receipt's verdict, for audits and disputes). ``publish`` puts the
epoch's tree on the network instead (content-addressed, announced in the DHT, served over P2P), so that an
account claims from a machine holding nothing but its keystore (``hivenet rewards claim --run-id``).
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from node.ledger.rewards_file import EpochRewards
from protocol.receipts import Verdict, credits
from protocol.rewards_publication import RewardsPublication
from protocol.rewards_tree import RewardsTree
from protocol.scoring import RewardPolicy, accumulate

log = logging.getLogger(__name__)


def genesis_seed(run_id: str) -> bytes:
    return hashlib.sha256(b"hivenet/receipts-genesis/v1" + run_id.encode()).digest()


@dataclass(frozen=True)
class EpochSettlement:
    epoch: int  # training epoch
    verdicts: list[Verdict]
    compute: dict[str, int]  # verified samples by account
    data: dict[str, int]  # samples drawn from shards, by shard owner
    rewards: dict[str, int]  # tokens of this epoch
    carry: int  # tokens carried into the next epoch's pot
    cumulative: dict[str, int]  # tokens since the run began
    tree: RewardsTree | None  # None while nobody has earned anything

    @property
    def ledger_epoch(self) -> int:
        return self.epoch + 1

    @property
    def root(self) -> bytes | None:
        return self.tree.root if self.tree is not None else None


@dataclass
class RewardBook:
    """Cumulative rewards of one run, settled epoch by epoch in order."""

    run_id: str
    policy: RewardPolicy
    emission: int  # tokens per epoch
    owners: dict[str, str]  # shard id -> owner address (data rewards)
    cumulative: dict[str, int] = field(default_factory=dict)
    carry: int = 0
    seed: bytes = b""
    settled: list[EpochSettlement] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.seed = self.seed or genesis_seed(self.run_id)

    def settle(self, epoch: int, verdicts: list[Verdict]) -> EpochSettlement:
        compute, data = credits(verdicts, self.owners)
        split = self.policy.split(self.emission + self.carry, compute, data)
        self.cumulative = accumulate(self.cumulative, split.rewards)
        self.carry = split.carry
        tree = RewardsTree.build(self.cumulative) if self.cumulative else None
        s = EpochSettlement(epoch, verdicts, compute, data, dict(split.rewards), split.carry, dict(self.cumulative), tree)
        if tree is not None:
            self.seed = tree.root
        self.settled.append(s)
        return s


def save(out_dir: Path, s: EpochSettlement) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    if s.tree is not None:
        EpochRewards(s.ledger_epoch, s.tree).save(out_dir / f"rewards-{s.ledger_epoch}.json")
    doc: dict[str, Any] = {
        "epoch": s.epoch, "ledger_epoch": s.ledger_epoch, "root": "0x" + s.root.hex() if s.root else None,
        "verdicts": [v.as_dict() for v in s.verdicts], "compute": s.compute, "data": s.data,
        "rewards": {k: str(v) for k, v in s.rewards.items()}, "carry": str(s.carry),
    }
    (out_dir / f"verdicts-{s.epoch}.json").write_text(json.dumps(doc, indent=1) + "\n")


class RewardsPublisher(Protocol):
    """Whatever puts a rewards tree on the network (``node.swarm.rewards_board.RewardsPeer``)."""

    def publish(self, publication: RewardsPublication) -> str: ...


def publish(publisher: RewardsPublisher, run_id: str, s: EpochSettlement) -> str | None:
    """Publishes the tree of ``s`` (call it once the epoch is settled); returns its content id, None while
    nobody has earned anything. Raises RewardsUnavailable when the DHT did not take the announcement."""
    if s.tree is None:
        return None
    return publisher.publish(RewardsPublication(run_id, s.ledger_epoch, s.tree))


def dispute_reason(own_root: bytes) -> bytes:
    """What a disputing validator records on chain: a hash naming the root it computed instead."""
    return hashlib.sha256(b"hivenet/dispute/v1" + own_root).digest()
