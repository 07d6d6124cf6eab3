"""Where each vetted shard starts in a run's training text, so receipts credit data owners.

The trainer's corpus is built from the same store by ``node.train.data.vetted_corpus``
(the vetted shards' training bytes, joined by a blank line); a receipt's per-shard sample
counts (``protocol.receipts.shard_samples``) are taken against this layout.
"""

from __future__ import annotations

from pathlib import Path

from node.data.store import ShardStore, StoreConfig
from node.data.vetted import training_bytes, vetted_shards
from protocol.receipts import CorpusLayout

_SHARD_JOIN = 2  # bytes between two shards' text in the corpus (b"\n\n", see training_bytes)


def shard_layout(store_root: Path, run_id: str, train_bytes: int) -> CorpusLayout:
    """The layout of the run's vetted shards in ``store_root``; ``train_bytes`` is the corpus's training length.

    Raises ValueError when the store no longer matches a corpus of that length.
    """
    store = ShardStore(StoreConfig(store_root))
    starts, offset = [], 0
    for shard in vetted_shards(store, run_id):
        starts.append((str(shard.shard_id), offset))
        offset += len(training_bytes(store, [shard])) + _SHARD_JOIN
    if offset - _SHARD_JOIN != train_bytes:
        raise ValueError("the shard store changed since the corpus was built; restart the node")
    return CorpusLayout(tuple(starts))
