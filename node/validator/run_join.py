"""A validator joins a run the way a trainer does: the run's signed manifest, then the run's shards.

    train, shards = prepare_train(cfg.train(), cfg.swarm, manifest)   # manifest: node.cli.validator_cmd joins the run

The manifest fixes what a validator must agree on with the trainers it checks: the model, the batch
sizes, the corpus, the receipt spot-check probability and the reward policy. A validator setting the
user gave that contradicts it is refused, naming both, as for a node (``node.run.apply``).

With ``[train] fetch_shards`` the corpus comes from the network like a trainer's (``node.data.replicate``):
the shards offered for the run are fetched verified, vetted here with the run's held-out split, and
served on; the validator recomputes receipts over exactly the shards that passed here. Nothing has to
be copied from a trainer's or a contributor's disk.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from node.swarm.config import SwarmConfig
    from protocol.run_manifest import SignedRunManifest

DEFAULT_COMPUTE_BPS = 7000  # the reward policy's compute share when no manifest names one


def compute_bps(manifest: SignedRunManifest | None) -> int:
    return manifest.manifest.reward.compute_bps if manifest is not None else DEFAULT_COMPUTE_BPS


def prepare_train(train: Any, swarm: SwarmConfig, manifest: SignedRunManifest | None) -> tuple[Any, Any]:
    """The validator's TrainConfig (the manifest's model; the shard store filled from the network with
    ``fetch_shards``) and the shard service serving the fetched shards (None without ``fetch_shards``)."""
    if manifest is not None:
        from node.run.apply import apply_to_train

        train = apply_to_train(train, manifest.manifest)
    service = None
    if train.fetch_shards:
        from node.train.data import demo_corpus, fetch_run_shards

        service, train = fetch_run_shards(swarm, train, demo_corpus().val)
    if manifest is not None:
        from node.run.apply import check_corpus

        try:
            check_corpus(train, manifest.manifest)  # a validator on another corpus would reject honest receipts
        except BaseException:
            if service is not None:
                service.stop()
            raise
    return train, service
