"""The testnet's data contributors: the demo corpus packed into one shard per contributor, then vetted.

Peers train only on shards that passed; a failed shard is listed with its
verdict and never reaches a peer.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from node.data.runs import RunIndex
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
    runs = RunIndex(store, run_id)
    out: list[dict[str, Any]] = []
    for i, text in enumerate(contributions):
        before = {r.shard_id for r in runs.reports()}
        passed = prepare_vetted_shards(store, [text], run_id=run_id, eval_text=corpus.val)
        # The contribution's own report (also for a failed shard, which has no VettedShard): the new one.
        report = next((r for r in runs.reports() if r.shard_id not in before), None)
        out.append({
            "content_id": report.shard_id if report is not None else (passed[0].shard_id if passed else None),
            "verdict": report.verdict.value if report is not None else ("pass" if passed else "unknown"),
            "reasons": [why for c in report.checks if c.status.value != "pass" for why in c.reasons][:3] if report is not None else [],
            "contributor": i,
            "shard_id": passed[0].shard_id if passed else None,
            "passed": bool(passed),
            "records": passed[0].n_records if passed else 0,
            "score": round(passed[0].score, 4) if passed else None,
        })
    return out
