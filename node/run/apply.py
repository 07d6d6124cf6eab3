"""Apply a run manifest to a node: the settings it fixes, the ones that contradict it, the corpus checks.

The manifest fixes the node's run id, model, batch sizes, schedule and mode (with its DiLoCo settings).
A setting the user gave (file, variable or flag) that differs from the manifest is an error naming both
values: a node must not silently train another model than its peers. Settings the user left at their
defaults are replaced by the manifest's.

    values = manifest_values(signed.manifest, cfg.values, explicit)    # explicit: {dotted key: where it was set}
    train = apply_to_train(cfg.train(), manifest)                       # fields without a config key (n_head, warm-up)
    check_corpus(train, run_id, manifest)                               # held-out split and shards agree
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from protocol.errors import ConfigError
from protocol.run_manifest import RunManifest

if TYPE_CHECKING:
    from node.train.config import TrainConfig


def governed(manifest: RunManifest) -> dict[str, Any]:
    """The node's config values (by dotted key, as the key holds them) that ``manifest`` fixes."""
    out: dict[str, Any] = {
        "swarm.run_id": manifest.run_id,
        "swarm.target_batch_size": manifest.target_batch_size,
        "train.batch_size": manifest.batch_size,
        "train.max_epochs": manifest.schedule.max_epochs,
        "train.lr": manifest.schedule.lr,
        "train.n_layer": manifest.model.n_layer,
        "train.n_embd": manifest.model.n_embd,
        "train.block_size": manifest.model.block_size,
        "train.mode": manifest.mode,
    }
    if manifest.diloco is not None:  # sync mode ignores the diloco keys, so they cannot contradict it
        d = manifest.diloco
        out |= {"train.inner_steps": d.inner_steps, "train.outer_lr": d.outer_lr,
                "train.outer_momentum": d.outer_momentum, "train.overlap": d.overlap,
                "train.compression": d.compression, "train.error_feedback": d.error_feedback}
    return out


def manifest_values(manifest: RunManifest, values: Mapping[str, Any], explicit: Mapping[str, str]) -> dict[str, Any]:
    """``values`` with the manifest's settings in place; ConfigError naming every setting that contradicts it.

    ``explicit`` maps each key the user set (in the config file, a variable or a flag) to where, e.g.
    ``"flag --batch-size"``; only those can contradict the manifest.
    """
    fixed = governed(manifest)
    clashes = [f"{explicit[key]} sets {key} = {values[key]!r}, the manifest {want!r}"
               for key, want in fixed.items() if key in explicit and values[key] != want]
    store = values.get("train.shard_store")
    if manifest.corpus.source == "demo" and store is not None:
        clashes.append(f"{explicit.get('train.shard_store', 'train.shard_store')} sets a shard store "
                       f"({store}), the manifest trains on the demo corpus")
    if clashes:
        raise ConfigError(f"settings contradict the manifest of run {manifest.run_id!r}: {'; '.join(clashes)}; "
                          "drop them (the manifest sets them) or use a manifest that says so")
    if manifest.corpus.source != "demo" and store is None:
        raise ConfigError(f"run {manifest.run_id!r} trains on {_corpus_words(manifest)}; pass --shard-store with "
                          "a store holding them (`hivenet shard add`, `hivenet shard vet`)")
    return {**values, **fixed}


def _corpus_words(manifest: RunManifest) -> str:
    if manifest.corpus.source == "vetted":
        return "the shards vetted for it"
    return f"{len(manifest.corpus.shard_ids)} named shard(s)"


def apply_to_train(train: TrainConfig, manifest: RunManifest) -> TrainConfig:
    """``train`` with the manifest's fields that have no config key: the whole model, the warm-up, DiLoCo's."""
    m = manifest.model
    model = dataclasses.replace(train.model, block_size=m.block_size, n_layer=m.n_layer, n_head=m.n_head,
                                n_embd=m.n_embd)
    diloco = train.diloco
    if manifest.diloco is not None:
        d = manifest.diloco
        diloco = dataclasses.replace(diloco, inner_steps=d.inner_steps, inner_warmup_steps=d.inner_warmup_steps,
                                     outer_lr=d.outer_lr, outer_momentum=d.outer_momentum, overlap=d.overlap,
                                     compression=d.compression, error_feedback=d.error_feedback)
    return dataclasses.replace(train, model=model, batch_size=manifest.batch_size, lr=manifest.schedule.lr,
                               warmup_epochs=manifest.schedule.warmup_epochs, max_epochs=manifest.schedule.max_epochs,
                               mode=manifest.mode, diloco=diloco)


def held_out_sha256() -> str:
    """SHA-256 of this node's held-out split (the demo corpus's tail, the same on every node)."""
    from node.train.data import demo_corpus  # torch: the daemon loads it at this point anyway

    return hashlib.sha256(demo_corpus().val).hexdigest()


def check_corpus(train: TrainConfig, manifest: RunManifest) -> None:
    """ConfigError unless this node's held-out split and training shards are the manifest's."""
    held_out = held_out_sha256()
    if held_out != manifest.corpus.held_out_sha256:
        raise ConfigError(f"this node's held-out split hashes to {held_out}, the manifest of run {manifest.run_id!r} "
                          f"says {manifest.corpus.held_out_sha256}; run a hivenet version that has the run's split")
    if manifest.corpus.source != "shards" or train.shard_store is None:
        return
    from node.data.store import ShardStore, StoreConfig
    from node.data.vetted import vetted_shards

    have = sorted(s.shard_id for s in vetted_shards(ShardStore(StoreConfig(train.shard_store)), manifest.run_id))
    want = list(manifest.corpus.shard_ids)
    if have != want:
        missing, extra = sorted(set(want) - set(have)), sorted(set(have) - set(want))
        raise ConfigError(
            f"the shards vetted for run {manifest.run_id!r} in {train.shard_store} are not the manifest's "
            f"(missing: {', '.join(s[:16] for s in missing) or 'none'}; not in the manifest: "
            f"{', '.join(s[:16] for s in extra) or 'none'}); fetch and vet the missing ones, remove the others")
