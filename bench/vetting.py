"""Vetting throughput and memory on clean text.

    .venv/bin/python bench/vetting.py              # 50 MB of clean prose
    .venv/bin/python bench/vetting.py --mb 2

Packs distinct paragraphs of the bundled docs corpus (each made unique, so dedup
keeps them) into one shard, then times ``vet_shard`` with the run's held-out
split and the byte-unigram probe, as ``hivenet shard vet --eval`` runs it.
Peak memory is the process's maximum resident set size after vetting (packing
streams, so the peak is vetting's). Prints one JSON object:
    {"bench": "vetting", "mb", "seconds", "mb_per_s", "peak_rss_mb", "records", "excluded", "verdict"}
The corpus is cycled to reach --mb, so near-duplicate detection excludes the repeats and the
verdict is "fail" above a few MB; the timing covers every check either way.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey  # noqa: E402

from node.data.ingest import text_records  # noqa: E402
from node.data.probe import ByteUnigramLoss  # noqa: E402
from node.data.runs import VetInputs, vet_shard  # noqa: E402
from node.data.store import ShardStore, StoreConfig  # noqa: E402
from node.train.data import demo_corpus  # noqa: E402
from protocol.shards import RecordSchema  # noqa: E402


def _records(paragraphs: list[bytes], total: int) -> Iterator[bytes]:
    made = 0
    k = 0
    while made < total:
        p = paragraphs[k % len(paragraphs)]
        # A distinct opening per copy keeps every record unique for exact and near dedup.
        rec = f"Entry {k} of the collection, kept as written. ".encode() + p
        made += len(rec)
        k += 1
        yield rec


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mb", type=float, default=50.0)
    args = ap.parse_args()
    corpus = demo_corpus()
    train = [p for p in text_records(corpus.train) if len(p.split()) >= 30]
    eval_paras = [p.decode() for p in text_records(corpus.val)]
    reference = [p.encode() for p in eval_paras]
    inputs = VetInputs(eval_split=eval_paras, loss_fn=ByteUnigramLoss(reference), reference=reference)
    with tempfile.TemporaryDirectory() as tmp:
        store = ShardStore(StoreConfig(Path(tmp) / "store"))
        m = store.add_records(_records(train, int(args.mb * 1e6)), schema=RecordSchema(kind="text"), license="PSF-2.0")
        start = time.perf_counter()
        report = vet_shard(store, m.id, run_id="bench", key=Ed25519PrivateKey.generate(), inputs=inputs)
        seconds = time.perf_counter() - start
    mb = m.total_bytes / 1e6
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"bench": "vetting", "mb": round(mb, 2), "seconds": round(seconds, 2),
                      "mb_per_s": round(mb / seconds, 3), "peak_rss_mb": round(peak, 1),
                      "records": m.record_count, "excluded": len(report.excluded), "verdict": report.verdict.value}))


if __name__ == "__main__":
    main()
