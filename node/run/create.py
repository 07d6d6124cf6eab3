"""Build a run manifest from settings, taking a node's defaults for every setting not given.

    manifest = new_manifest("demo", {"schedule.max_epochs": 20, "mode": "diloco"})

``overrides`` are keyed by the manifest's field paths (``model.n_layer``, ``schedule.lr``,
``diloco.inner_steps``, ``corpus.source``, ``chain.ledger``); a path whose value is None is not given.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from protocol.run_manifest import MANIFEST_VERSION, RunManifest, RunManifestError, canonical_json
from protocol.scoring import ProportionalPolicy

RECEIPT_PROBABILITY = 1.0  # the validator's default (node.validator.service): recompute every receipt


def node_defaults() -> dict[str, Any]:
    """The settings a node runs with when given none, as a manifest (without run id and held-out hash)."""
    from node.swarm.config import SwarmConfig
    from node.train.config import DilocoConfig, TrainConfig
    from node.train.model import GPTConfig  # torch, seconds: only `run create` pays for it

    train, model, diloco = TrainConfig(), GPTConfig(), DilocoConfig()
    swarm_defaults = {f.name: f.default for f in dataclasses.fields(SwarmConfig)}
    return {
        "version": MANIFEST_VERSION,
        "model": {"block_size": model.block_size, "n_layer": model.n_layer, "n_head": model.n_head,
                  "n_embd": model.n_embd},
        "corpus": {"source": "demo", "shard_ids": []},
        "batch_size": train.batch_size,
        "target_batch_size": swarm_defaults["target_batch_size"],
        "schedule": {"max_epochs": train.max_epochs, "lr": train.lr, "warmup_epochs": train.warmup_epochs},
        "mode": train.mode,
        "diloco": {"inner_steps": diloco.inner_steps, "inner_warmup_steps": diloco.inner_warmup_steps,
                   "outer_lr": diloco.outer_lr, "outer_momentum": diloco.outer_momentum, "overlap": diloco.overlap,
                   "compression": diloco.compression, "error_feedback": diloco.error_feedback},
        "receipt_probability": RECEIPT_PROBABILITY,
        "reward": {"policy": "proportional", "compute_bps": ProportionalPolicy().compute_bps},
        "chain": None,
    }


def new_manifest(run_id: str, overrides: Mapping[str, Any], held_out_sha256: str) -> RunManifest:
    """A checked manifest of ``run_id``: the node defaults, then ``overrides``; RunManifestError names a bad one."""
    settings = node_defaults()
    settings["run_id"] = run_id
    settings["corpus"]["held_out_sha256"] = held_out_sha256
    for path, value in overrides.items():
        if value is None:
            continue
        head, *rest = path.split(".")
        if rest:
            if settings.get(head) is None:
                settings[head] = {}
            settings[head][rest[0]] = value
        else:
            settings[head] = value
    if settings["mode"] != "diloco":
        settings["diloco"] = None
    if settings["corpus"]["shard_ids"] and settings["corpus"]["source"] == "demo":
        settings["corpus"]["source"] = "shards"  # naming shards means training on exactly those
    settings["corpus"]["shard_ids"] = sorted(set(settings["corpus"]["shard_ids"]))
    if settings["chain"] is not None and isinstance(settings["chain"].get("ledger"), str):
        settings["chain"]["ledger"] = settings["chain"]["ledger"].lower()
    try:
        return RunManifest.model_validate_json(canonical_json(settings))
    except ValidationError as e:
        err = e.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "the manifest"
        raise RunManifestError(f"invalid run settings: {where}: {err['msg']}") from None
