"""The testnet's data contributors: the demo corpus packed into one shard per contributor, then vetted.

Peers train only on shards that passed; a failed shard is listed with its
verdict and never reaches a peer.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from node.data.store import ShardStore, StoreConfig
from node.data.vetted import prepare_vetted_shards, split_text
from node.train.data import demo_corpus


def prepare_shards(store_root: Path, run_id: str, contributors: int, extra: list[bytes] | None = None) -> list[dict[str, Any]]:
    """Pack the demo training text into ``contributors`` shards (plus ``extra`` contributions), vet them for the run.

    Returns one record per contribution: its shard id (if packed), whether it
    passed, and its usable record count.
    """
    corpus = demo_corpus()
    store = ShardStore(StoreConfig(store_root))
    contributions = split_text(corpus.train, contributors) + list(extra or [])
    out: list[dict[str, Any]] = []
    for i, text in enumerate(contributions):
        passed = prepare_vetted_shards(store, [text], run_id=run_id, eval_text=corpus.val)
        out.append({
            "contributor": i,
            "shard_id": passed[0].shard_id if passed else None,
            "passed": bool(passed),
            "records": passed[0].n_records if passed else 0,
            "score": round(passed[0].score, 4) if passed else None,
        })
    return out
