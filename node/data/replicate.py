"""A trainer's copy of a run's shards: find them in the DHT, fetch them verified, vet them here, serve them on.

    result = replicate_run(service, store, cap_bytes=1 << 30, eval_text=corpus.val)
    vetted_shards(store, run_id)          # what the trainer trains on: the shards that passed *here*

Steps, each bounded: the run's shard ids from the DHT (``hivenet_run_shards:<run>``, every peer that offers
them), each one's manifest from any holder (checked against the id), room under the cache cap (or an
error naming the key before any chunk moves), the chunks from every live holder (each verified before
it is written; a holder that sends a wrong byte is dropped and the others serve; an interrupted fetch
resumes), then vetting of every shard not yet vetted for the run in this store, and finally an offer of
the passing shards from this peer, so they stay available when their contributor leaves.

What "vetted for the run" means here: the trainer vets what it fetched itself, with the same pipeline
and the run's held-out split as every validator (``node.data.runs.vet_shard``). Nothing has to be
trusted: a contributor's word that its shard passed, or a report signed by a key the trainer cannot
check, proves nothing without a list of the run's validator keys, which only a signed run manifest can
give. Shards are vetted in id order so that trainers that see the same shards agree on the verdicts
and on the corpus.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from node.data.cache import ShardCache
from node.data.exchange import FetchReport, ShardFetcher
from node.data.ingest import text_records
from node.data.probe import ByteUnigramLoss
from node.data.runs import RunIndex, VetInputs, vet_shard
from node.data.serving import ShardService
from node.data.store import ShardStore
from node.data.vetting import VettingConfig
from node.swarm.streams import PeerID
from protocol.errors import ShardRejected, ShardUnavailable
from protocol.shards import ShardManifest
from protocol.types import ShardId

log = logging.getLogger(__name__)


@dataclass
class ReplicaResult:
    run_id: str
    shard_ids: list[ShardId]  # the run's shards found in the DHT (or given), in id order
    passed: list[ShardId] = field(default_factory=list)  # of those, the ones that passed vetting here
    fetched: dict[str, FetchReport] = field(default_factory=dict)  # shard id -> who served it (absent: held already)
    evicted: list[str] = field(default_factory=list)  # shards removed to stay under the cap


def run_vet_inputs(eval_text: bytes) -> VetInputs:
    """The run's vetting inputs from its held-out split: decontamination against it, and the byte-unigram
    probe fit on it (what the testnet's contributors and validators use, so verdicts agree)."""
    paras = [p.decode("utf-8") for p in text_records(eval_text)]
    reference = [p.encode() for p in paras]
    return VetInputs(eval_split=paras, loss_fn=ByteUnigramLoss(reference), reference=reference)


def replicate_run(
    service: ShardService,
    store: ShardStore,
    *,
    cap_bytes: int,
    eval_text: bytes,
    shard_ids: Sequence[str] | None = None,
    timeout: float = 600.0,
    vetting: VettingConfig = VettingConfig(),
) -> ReplicaResult:
    """Fetch, vet and offer the run's shards (``shard_ids``, default: every shard offered for the run)."""
    run_id = service.cfg.run_id
    announcer = service.announcer
    assert announcer is not None, "start the service first"
    ids = sorted(ShardId(s) for s in shard_ids) if shard_ids is not None else service.call(
        lambda: announcer.run_shards(run_id), timeout=announcer.cfg.timeout * 2)
    if not ids:
        raise ShardUnavailable(
            f"no peer offers shards for run {run_id!r}; start `hivenet shard serve --run-id {run_id}` where the "
            "data is, and give this node --initial-peers of a running peer of the run"
        )
    result = ReplicaResult(run_id, ids)
    fetcher = ShardFetcher(service.p2p, store, service.cfg.exchange)  # type: ignore[arg-type]
    wanted = [s for s in ids if not store.has(s)]
    holders: dict[str, list[PeerID]] = {}
    manifests: dict[str, ShardManifest] = {}
    for sid in wanted:
        holders[sid] = service.call(lambda: announcer.holders(sid), timeout=announcer.cfg.timeout * 2)
        if not holders[sid]:
            raise ShardUnavailable(f"shard {sid[:16]} of run {run_id!r} is offered but no peer holds it now; try again "
                                   "when its contributor or a trainer that fetched it is online")
        manifests[sid] = service.call(lambda: fetcher.fetch_manifest(sid, holders[sid]), timeout=timeout)
    incoming = sum(m.total_bytes for m in manifests.values())
    result.evicted = ShardCache(store, cap_bytes).make_room(incoming, keep=set(ids))
    if result.evicted:
        log.info("evicted %d shard(s) to stay under the %d MB cache cap", len(result.evicted), cap_bytes >> 20)
    for sid in wanted:
        _, report = service.call(lambda: fetcher.fetch(sid, holders[sid], manifests[sid]), timeout=timeout)
        result.fetched[sid] = report
        if report.faulty:
            log.warning("shard %s: refused bad data from %s", sid[:16], ", ".join(sorted(report.faulty)))
        log.info("fetched shard %s (%d chunks) from %s", sid[:16], manifests[sid].n_chunks,
                 ", ".join(f"{h[:12]}: {n}" for h, n in sorted(report.fetched.items())) or "nobody (resumed)")
    result.passed = _vet_here(store, run_id, ids, eval_text, vetting)
    if not result.passed:
        raise ShardRejected(f"none of the {len(ids)} shard(s) offered for run {run_id!r} passed vetting here "
                            f"(reports in {store.root / 'runs' / run_id / 'reports'}); the run has no data to train on")
    service.offer([(s, store.manifest(s).n_chunks) for s in result.passed])
    return result


def _vet_here(store: ShardStore, run_id: str, ids: Sequence[ShardId], eval_text: bytes, cfg: VettingConfig) -> list[ShardId]:
    runs = RunIndex(store, run_id)
    todo = [s for s in ids if runs.report(s) is None]
    if todo:
        inputs, key = run_vet_inputs(eval_text), Ed25519PrivateKey.generate()  # reports stay local: any key signs
        for sid in todo:
            report = vet_shard(store, sid, run_id=run_id, key=key, inputs=inputs, cfg=cfg)
            log.info("vetted shard %s for run %s: %s (score %.3f, %d of %d records usable)",
                     sid[:16], run_id, report.verdict.value, report.score, report.n_usable, report.n_records)
    passed = []
    for sid in ids:
        report = runs.report(sid)
        if report is not None and report.passed:
            passed.append(sid)
    return passed
