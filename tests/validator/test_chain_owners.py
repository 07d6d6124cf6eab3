"""The validator daemon pays data contributors as the ShardRegistry on chain says: a Validator built the daemon's
way (``ValidatorDaemon.build_validator`` on a vetted shard store) pays a registered shard's owner its data share
exactly (ProportionalPolicy, compute_bps), and an unregistered or revoked shard nothing."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import pytest

from node.data.store import ShardStore, StoreConfig
from node.data.vetted import prepare_vetted_shards, split_text
from node.ledger.client import LedgerClient
from node.swarm.config import SwarmConfig
from node.telemetry.config import HttpConfig, TelemetryConfig
from node.train.data import demo_corpus
from node.validator.access import ChainAccess
from node.validator.config import ValidatorDaemonConfig
from node.validator.daemon import DaemonSettings, ValidatorDaemon
from protocol.receipts import Verdict
from protocol.scoring import ProportionalPolicy
from tests.ledger.conftest import WINDOW
from tests.receipts.sim import TINY

RUN = "owners"


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    """A shard store with three shards vetted for the run (their ids in corpus order)."""
    root = tmp_path_factory.mktemp("shards")
    demo = demo_corpus()
    shards = prepare_vetted_shards(ShardStore(StoreConfig(root)), split_text(demo.train[:90_000], 3), run_id=RUN,
                                   eval_text=demo.val[:20_000])
    assert len(shards) == 3
    return root, [str(s.shard_id) for s in shards]


def build(tmp_path: Path, me: LedgerClient, shard_store: Path):  # type: ignore[no-untyped-def]
    """The daemon's Validator: home opened, owners read from the chain in build_validator."""
    assert me.deployment is not None
    settings = DaemonSettings(
        ValidatorDaemonConfig(home=tmp_path / "home", snapshot_dir=tmp_path / "snap", poll_interval_s=0.05),
        SwarmConfig(run_id=RUN, target_batch_size=64), TelemetryConfig(RUN, broker=None), HttpConfig(listen=None),
        train=lambda: SimpleNamespace(model=TINY, shard_store=shard_store))
    daemon = ValidatorDaemon(settings, ChainAccess(me.chain, me.account, me.deployment, WINDOW))
    daemon.open_home()
    return daemon, daemon.build_validator(settings.train())


def accepted(account: str, shard_samples: tuple[tuple[str, int], ...]) -> Verdict:
    receipt = SimpleNamespace(account=account, samples=sum(n for _, n in shard_samples), shard_samples=shard_samples)
    return Verdict(receipt, accepted=True, checked=True)  # type: ignore[arg-type]


def test_registered_owners_earn_the_data_share_and_unregistered_shards_nothing(
        tmp_path: Path, admin: LedgerClient, new_client: Callable[..., LedgerClient],
        store: tuple[Path, list[str]], caplog: pytest.LogCaptureFixture) -> None:
    root, (paid, unregistered, revoked) = store
    owner, quitter = new_client(admin.deployment), new_client(admin.deployment)
    owner.register_shard(bytes.fromhex(paid), "PSF-2.0")
    quitter.register_shard(bytes.fromhex(revoked), "PSF-2.0")
    quitter.revoke_shard(bytes.fromhex(revoked))
    me = new_client(admin.deployment)

    with caplog.at_level(logging.INFO, logger="node.validator.owners"):
        daemon, validator = build(tmp_path, me, root)
    assert [sid for sid, _ in validator.layout.shards] == [paid, unregistered, revoked]
    assert validator.book.owners == {paid: owner.address.lower()}
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2 and unregistered[:16] in warnings[0] and "hivenet shard register" in warnings[0]
    assert revoked[:16] in warnings[1]

    trainer = "0x" + "7a" * 20
    s = validator.book.settle(0, [accepted(trainer, ((paid, 10), (unregistered, 50), (revoked, 40)))])
    cfg = validator.cfg
    pot = cfg.emission
    compute_pool = pot * cfg.compute_bps // 10_000
    assert s.data == {owner.address.lower(): 10}
    assert s.rewards == {trainer: compute_pool, owner.address.lower(): pot - compute_pool}
    assert s.rewards == ProportionalPolicy(cfg.compute_bps).split(pot, s.compute, s.data).rewards
    assert quitter.address.lower() not in s.cumulative and s.carry == 0
    daemon._release()


def test_a_run_without_registered_shards_pays_compute_only(
        tmp_path: Path, admin: LedgerClient, new_client: Callable[..., LedgerClient],
        store: tuple[Path, list[str]]) -> None:
    root, ids = store
    daemon, validator = build(tmp_path, new_client(admin.deployment), root)
    assert validator.book.owners == {}
    trainer = "0x" + "7b" * 20
    s = validator.book.settle(0, [accepted(trainer, tuple((sid, 5) for sid in ids))])
    assert s.rewards == {trainer: validator.cfg.emission} and s.data == {}
    daemon._release()
