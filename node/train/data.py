"""The demo corpus and byte batches.

The corpus is built at run time from text that every CPython installation
carries (``pydoc_data.topics``: the language reference and library topics), so
the demo downloads nothing. The held-out validation split is the tail of the
corpus, cut at a topic boundary, so no training window overlaps it.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from protocol.assignment import assign_samples
from protocol.errors import ConfigError
from protocol.types import Epoch, PeerId, RunId

if TYPE_CHECKING:
    from node.data.serving import ShardService
    from node.swarm.config import SwarmConfig
    from node.train.config import TrainConfig

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Corpus:
    train: bytes
    val: bytes

    def n_train_samples(self, block_size: int) -> int:
        """Number of distinct training windows (a window is block_size + 1 bytes: inputs and next-byte targets)."""
        return max(0, len(self.train) - block_size)


def demo_corpus(val_fraction: float = 0.1) -> Corpus:
    """The CPython documentation topics, in key order, split into train and held-out validation."""
    from pydoc_data.topics import topics

    texts = [topics[key].strip().encode("utf-8") + b"\n\n" for key in sorted(topics)]
    total = sum(map(len, texts))
    train: list[bytes] = []
    seen = 0
    for i, text in enumerate(texts):
        if seen >= total * (1 - val_fraction):
            return Corpus(train=b"".join(train), val=b"".join(texts[i:]))
        train.append(text)
        seen += len(text)
    raise ValueError("corpus too small to hold out a validation split")


def vetted_corpus(store_root: Path, run_id: str, val: bytes) -> tuple[Corpus, list[str]]:
    """Training text from the shards that passed vetting for ``run_id``; ``val`` stays the run's held-out split.

    Returns the corpus and the ids of the shards it was built from. Shards that
    failed or await review are never included, so they are never assigned.
    """
    from node.data.store import ShardStore, StoreConfig
    from node.data.vetted import training_bytes, vetted_shards

    store = ShardStore(StoreConfig(store_root))
    shards = vetted_shards(store, run_id)
    if not shards:
        raise ConfigError(
            f"no shard in {store_root} has passed vetting for run {run_id!r}; "
            "add one with `hivenet shard add` and vet it with `hivenet shard vet`"
        )
    return Corpus(train=training_bytes(store, shards), val=val), [s.shard_id for s in shards]


DEFAULT_SHARD_STORE = Path.home() / ".hivenet" / "shards"  # the store `hivenet shard` uses when given none


def fetch_run_shards(swarm: SwarmConfig, train: TrainConfig, val: bytes) -> tuple[ShardService, TrainConfig]:
    """Fill the trainer's shard store with the run's shards from the network (``node.data.replicate``).

    Starts a shard service beside the trainer (its own DHT node, joined through ``swarm.initial_peers``),
    fetches and vets the shards offered for ``swarm.run_id`` and keeps serving the ones that passed.
    Returns the running service (stop it when training ends) and ``train`` pointed at the store, whose
    shards vetted for the run ``vetted_corpus`` then trains on. On failure nothing keeps running.
    """
    from node.data.replicate import replicate_run
    from node.data.serving import ServiceConfig, ShardService, own_port
    from node.data.store import ShardStore, StoreConfig

    root = train.shard_store or DEFAULT_SHARD_STORE
    service = ShardService(ShardStore(StoreConfig(root)), ServiceConfig(
        run_id=swarm.run_id, listen=own_port(swarm.listen), initial_peers=swarm.initial_peers,
        extra_dht_options=swarm.extra_dht_options))
    service.start()
    try:
        result = replicate_run(service, service.store, cap_bytes=train.shard_cache_mb << 20, eval_text=val)
    except BaseException:
        service.stop()
        raise
    log.info("run %s: %d shard(s) offered, %d passed vetting here, %d fetched now; serving them as %s",
             swarm.run_id, len(result.shard_ids), len(result.passed), len(result.fetched), service.peer_id)
    return service, dataclasses.replace(train, shard_store=root)


def windows(data: bytes, offsets: list[int], block_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs and next-byte targets (B, block_size) for the windows starting at ``offsets``."""
    buf = torch.frombuffer(bytearray(data), dtype=torch.uint8)
    rows = torch.stack([buf[o : o + block_size + 1] for o in offsets]).long()
    return rows[:, :-1], rows[:, 1:]


def assigned_batch(
    corpus: Corpus, run_id: RunId, epoch: Epoch, peer_id: PeerId, step: int, batch_size: int, block_size: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """The batch ``protocol.assignment`` gives this peer for this step."""
    offsets = assign_samples(run_id, epoch, peer_id, step, batch_size, corpus.n_train_samples(block_size))
    return windows(corpus.train, offsets, block_size)


def val_batches(corpus: Corpus, block_size: int, max_windows: int, batch_size: int = 32) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Evenly spaced, non-overlapping validation windows: the same for every peer and every call."""
    n = max(1, (len(corpus.val) - 1) // block_size)
    step = max(1, n // max_windows)
    offsets = [i * block_size for i in range(0, n, step)][:max_windows]
    return [windows(corpus.val, offsets[i : i + batch_size], block_size) for i in range(0, len(offsets), batch_size)]
