"""The validator daemon (``hivenet validator start``): a node's lifecycle around the Validator.

    access = open_chain_access(chain_settings)            # checks everything; writes nothing
    daemon = ValidatorDaemon(settings, access)
    with graceful_signals(daemon.request_stop):           # the CLI installs SIGINT/SIGTERM handlers
        daemon.run()

Start: the side-loop comes up (status endpoint, telemetry; ``node.sideloop``), then the home directory:
the outbox (``<home>/outbox.sqlite``; opening it finishes what a crash left pending) and the journal
(``<home>/journal.json``, ``node.validator.journal``), from which a restarted validator resumes its
book, re-posts a root it wrote down but had not sent, and never settles an epoch twice. Then the model
and corpus load, and the validator joins the run's DHT.

Run, every ``poll_interval``: read receipts of the next epochs from the DHT; settle each epoch whose
receipts are complete (those of the next epoch appeared, or none new came for ``settle_quiet_s``
seconds: so the run's last epoch is settled too; a receipt of a settled epoch is logged and ignored,
and the journal's next epoch keeps it so across a restart): spot-check, journal, post the root (mode
``settle``) or compare it with the root another validator posted and dispute a different one (mode
``watch``); finalize posted epochs whose challenge window has passed. A chain that stops answering
is reported (``chain_reachable``) and retried at the next poll; nothing settled is lost meanwhile.
Verdicts and rewards files of each epoch are written to ``<home>/epochs``.

Stop (first SIGINT/SIGTERM): the epoch being checked finishes, the journal is current, the DHT is
left, telemetry flushes, exit 0. A second signal forces.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from node.ledger.client import LedgerClient
from node.ledger.config import LedgerConfig
from node.sideloop import SideLoop
from node.swarm.config import SwarmConfig
from node.telemetry.config import HttpConfig, TelemetryConfig
from node.telemetry.http import StatusServer
from node.telemetry.publisher import TelemetryPublisher
from node.telemetry.state import DaemonStage
from node.validator.access import ChainAccess
from node.validator.config import ValidatorDaemonConfig
from node.validator.journal import Journal, JournalKey, SettledEpoch
from node.validator.status import ValidatorStage, ValidatorState
from protocol.errors import ChainUnavailable, HivenetError

log = logging.getLogger(__name__)
# Rewards announcements live a day (node.swarm.rewards_board); renewed well within that.
REANNOUNCE_S = 6 * 3600.0

FLUSH_TIMEOUT_S = 3.0  # telemetry's last words; SIGTERM-to-exit stays well under 10 s


@dataclass(frozen=True)
class DaemonSettings:
    """What the daemon runs with, built by the CLI from the config (``node.config`` builds the parts)."""

    validator: ValidatorDaemonConfig
    swarm: SwarmConfig  # run id, initial peers, listen addresses, p2p identity, target batch size
    telemetry: TelemetryConfig
    http: HttpConfig
    train: Callable[[], Any]  # -> TrainConfig (model shape, shard store); called after the endpoint is up (torch)
    manifest: Any = None  # the run's SignedRunManifest when it joined by one (node.validator.run_join)


class ValidatorDaemon:
    def __init__(self, settings: DaemonSettings, access: ChainAccess) -> None:
        self.settings, self.access = settings, access
        self.cfg = settings.validator
        self.state = ValidatorState(settings.swarm.run_id)
        self.stage = DaemonStage.STARTING
        self.publisher = TelemetryPublisher(settings.telemetry, self.state) if settings.telemetry.broker else None
        self.server = StatusServer(settings.http, self.state) if settings.http.listen else None
        self.side = SideLoop(setup=self._open, services=[self.publisher.run] if self.publisher else [],
                             teardown=self._close, name="validator-side")
        self._stop = threading.Event()
        self.journal: Journal | None = None
        self.client: LedgerClient | None = None
        self.validator: Any = None  # node.validator.service.Validator once the model is loaded
        self.dht: Any = None
        self.rewards: Any = None  # node.swarm.rewards_board.RewardsPeer, in settle mode
        self.snapshots: Any = None  # node.work.snapshot_fetch.NetworkSnapshotSource, without a snapshot folder
        self.shards: Any = None  # node.data.serving.ShardService serving the run's shards it fetched
        self._reannounce_at = 0.0
        self.chain_reachable: bool | None = None

    # -- side-loop services ---------------------------------------------------------------

    async def _open(self) -> None:
        if self.server is not None:
            await self.server.start()

    async def _close(self) -> None:
        if self.publisher is not None:
            flushed = await self.publisher.flush(FLUSH_TIMEOUT_S)
            log.info("telemetry %s", "flushed" if flushed else "not flushed (no broker connected)")
        if self.server is not None:
            await self.server.close()

    # -- lifecycle ------------------------------------------------------------------------

    def _set_stage(self, stage: DaemonStage, error: str | None = None) -> None:
        self.stage = stage
        log.info("validator %s%s", stage.value, f": {error}" if error else "")
        self.side.call(self.state.set_stage, stage, error)

    def request_stop(self) -> None:
        """Graceful stop (first SIGINT/SIGTERM): finish the epoch being checked, then leave."""
        if self._stop.is_set():
            return
        self._stop.set()
        self._set_stage(DaemonStage.STOPPING)

    def run(self) -> None:
        """Blocks until a stop is asked; raises (after reporting it) when the validator fails."""
        self.side.start()
        try:
            try:
                self._run()
            finally:
                self._release()
        except BaseException as e:
            reason = str(e) if isinstance(e, HivenetError) else f"{type(e).__name__}: {e}"
            self._set_stage(DaemonStage.FAILED, reason if not isinstance(e, KeyboardInterrupt) else "forced stop")
            self._stop_side()
            raise
        self._report(ValidatorStage.STOPPED)
        self._set_stage(DaemonStage.STOPPED)
        self._stop_side()

    def _run(self) -> None:
        self.open_home()
        if self._stop.is_set():
            return
        from node.validator.run_join import prepare_train

        train, self.shards = prepare_train(self.settings.train(), self.settings.swarm, self.settings.manifest)
        if self._stop.is_set():
            return
        validator = self.build_validator(train)
        self._report(ValidatorStage.JOINING)
        self._join(validator)
        self._set_stage(DaemonStage.RUNNING)
        while not self._stop.is_set():
            self.step()
            self._stop.wait(self.cfg.poll_interval_s)

    def open_home(self) -> None:
        """The journal (refusing a home of another validator) and the outbox, whose opening finishes the
        transactions a crash left pending."""
        a = self.access
        key = JournalKey(self.settings.swarm.run_id, a.deployment.chain_id, a.deployment.ledger.lower(),
                         a.address.lower(), self.cfg.mode)
        self.journal = Journal.open(self.cfg.home / "journal.json", key)
        self.cfg.home.mkdir(parents=True, exist_ok=True)
        self.client = LedgerClient.open(
            LedgerConfig(rpc_url=a.chain.config.rpc_url, outbox_path=self.cfg.home / "outbox.sqlite"),
            a.account, a.deployment, chain=a.chain)
        self.chain_reachable = True
        self._report(ValidatorStage.STARTING)

    def build_validator(self, train: Any) -> Any:
        """The Validator, resumed from the journal: its book, and the roots written down but not final."""
        from node.validator.run_join import compute_bps
        from node.validator.service import Validator, ValidatorConfig  # torch loads here, after the endpoint is up

        s, j = self.settings, self.journal
        assert j is not None
        owners: dict[str, str] = {}
        if train.shard_store is not None:  # data contributors are paid as the ShardRegistry on chain says
            from node.validator.owners import chain_owners, run_shard_ids

            owners = chain_owners(self.client, run_shard_ids(train.shard_store, s.swarm.run_id))
        vcfg = ValidatorConfig(
            run_id=s.swarm.run_id, model=train.model, snapshot_dir=self.cfg.snapshot_dir or self.cfg.home / "snapshots",
            out_dir=self.cfg.home / "epochs", shard_store=train.shard_store,
            target_batch_size=s.swarm.target_batch_size, p=min(1.0, self.cfg.receipt_probability), mode=self.cfg.mode,
            challenge_window_s=self.access.challenge_window_s, poll_s=self.cfg.poll_interval_s, owners=owners,
            compute_bps=compute_bps(s.manifest), settle_quiet_s=self.cfg.settle_quiet_s)
        self.validator = Validator(vcfg, fetch=lambda epoch: [], client=self.client, on_settled=self._journal_settled)
        pending = {}
        for ledger_epoch in j.posted:
            entry = j.settled_entry(ledger_epoch)
            if entry is not None and entry.root is not None:
                pending[ledger_epoch] = (bytes.fromhex(entry.root[2:]), entry.total)
        self.validator.resume(j.next_epoch, j.cumulative, j.carry, j.seed, pending, j.watching)
        if j.settled:
            log.info("resuming at epoch %d (%d settled, %d roots not final)", j.next_epoch, len(j.settled), len(j.posted))
        return self.validator

    def _join(self, validator: Any) -> None:
        from node.swarm.dht import peer_id_of, start_dht, visible_maddrs
        from node.work.board import install_receipt_validator, receipt_board

        self.dht = start_dht(self.settings.swarm)
        install_receipt_validator(self.dht, self.settings.swarm.run_id)
        if self.cfg.mode == "settle":  # claimers fetch each settled epoch's rewards tree from the network
            from node.swarm.rewards_board import RewardsBoard, RewardsPeer

            self.rewards = RewardsPeer(RewardsBoard(self.dht, self.settings.swarm.run_id))
            self._reannounce_at = time.monotonic() + REANNOUNCE_S
        board = receipt_board(self.dht, self.settings.swarm.run_id)
        if self.cfg.snapshot_dir is not None:  # a folder the trainers write to (one machine): read it
            validator.fetch = board.fetch
        else:  # no shared disk: fetch each snapshot from the trainers that hold it, as soon as a receipt names it
            from node.work.snapshot_fetch import NetworkSnapshotSource

            source = NetworkSnapshotSource(self.dht, self.settings.swarm.run_id, self.cfg.home / "snapshots")
            self.snapshots = source
            validator.checker.snapshots = source

            def fetch(epoch: int) -> list[Any]:
                receipts = board.fetch(epoch)
                source.prefetch(validator.checker.model, [(r.receipt.params_hash, epoch) for r in receipts])
                return receipts

            validator.fetch = fetch
        peer, maddrs = str(peer_id_of(self.dht)), visible_maddrs(self.dht)
        log.info("joined run %s as %s", self.settings.swarm.run_id, peer)
        self.side.call(self.state.on_trainer_status, {"peer_id": peer, "maddrs": maddrs})

    def _release(self) -> None:
        if self.shards is not None:
            self.shards.stop()
            self.shards = None
        if self.snapshots is not None:
            self.snapshots.close()
            self.snapshots = None
        if self.rewards is not None:
            self.rewards.close()
            self.rewards = None
        if self.dht is not None:
            self.dht.shutdown()
            self.dht = None
        if self.client is not None:
            self.client.close()
            self.client = None

    def _stop_side(self) -> None:
        if not self.side.stop(timeout=FLUSH_TIMEOUT_S + 2):
            log.warning("side services did not stop in time; exiting anyway")

    # -- one poll -------------------------------------------------------------------------

    def step(self) -> None:
        """One poll: read receipts, post what is pending, settle complete epochs, finalize, report."""
        v = self.validator
        try:
            v.poll()
            if v.pending:
                v.flush_posts()
            if v.watching:
                v.watch_due()
            while not self._stop.is_set() and v.ready():
                self._report(ValidatorStage.CHECKING)
                v.process(v.next_epoch)
            v.finalize_due()
            self.chain_reachable = True
            if self.rewards is not None and time.monotonic() > self._reannounce_at:
                self._reannounce_at = time.monotonic() + REANNOUNCE_S
                self.rewards.reannounce()
        except ChainUnavailable as e:
            if self.chain_reachable:
                log.warning("%s; retrying every %.1f s", e, self.cfg.poll_interval_s)
            self.chain_reachable = False
        self._sync_journal()
        self._report(ValidatorStage.COLLECTING)

    def _journal_settled(self, s: Any) -> None:
        """Before a root leaves: the journal records the settled epoch (the book's new state and its root)."""
        assert self.journal is not None
        v = self.validator
        entry = SettledEpoch(s.epoch, s.ledger_epoch, "0x" + s.root.hex() if s.root else None,
                             s.tree.total if s.tree is not None else 0, len(s.verdicts),
                             sum(x.checked for x in s.verdicts), sum(not x.accepted for x in s.verdicts))
        has_root = s.tree is not None
        self.journal.record(s.epoch, v.next_epoch, v.book.cumulative, v.book.carry, v.book.seed, entry,
                            posting=has_root and self.cfg.mode == "settle", watching=has_root and self.cfg.mode == "watch")
        self._publish_rewards(s)

    def _publish_rewards(self, s: Any) -> None:
        """The settled tree goes to the network, so an account claims with nothing but its keystore. A DHT that
        does not take it costs this epoch's announcement only: settlement goes on, the next reannounce retries."""
        if self.rewards is None:
            return
        from node.validator.settlement import publish
        from protocol.rewards_publication import RewardsUnavailable

        try:
            tree_id = publish(self.rewards, self.settings.swarm.run_id, s)
        except RewardsUnavailable as e:
            log.warning("epoch %d: rewards tree not announced (%s)", s.ledger_epoch, e)
            return
        if tree_id is not None:
            log.info("epoch %d: rewards tree %s published", s.ledger_epoch, tree_id[:16])

    def _sync_journal(self) -> None:
        """The journal follows what the chain took: posted roots become final, compared roots are done."""
        j, v = self.journal, self.validator
        assert j is not None
        posted = sorted(set(v.pending) | set(v.posted))
        if posted != j.posted or v.watching != j.watching:
            j.posted, j.watching = posted, dict(v.watching)
            j.save()

    def _report(self, stage: ValidatorStage) -> None:
        j, v = self.journal, self.validator
        figures: dict[str, Any] = {"mode": self.cfg.mode, "address": self.access.address.lower(),
                                   "chain_reachable": self.chain_reachable}
        if j is not None:
            last = j.settled[-1] if j.settled else None
            figures.update({
                "next_epoch": j.next_epoch, "epochs_settled": len(j.settled),
                "last_settled_epoch": last.epoch if last else None, "last_ledger_epoch": last.ledger_epoch if last else None,
                "last_root": last.root if last else None, "receipts": sum(e.receipts for e in j.settled),
                "receipts_checked": sum(e.checked for e in j.settled),
                "receipts_rejected": sum(e.rejected for e in j.settled),
            })
        if v is not None:
            figures.update({"pending_posts": len(v.pending), "posted_not_final": len(v.posted),
                            "disputes": len(v.disputed)})
        if self.client is not None and self.chain_reachable:
            try:
                figures["chain_latest_epoch"] = self.client.latest_epoch()
                figures["finalized_epoch"] = self.client.finalized()[0]
            except ChainUnavailable:
                figures["chain_reachable"] = self.chain_reachable = False
        self.side.call(self.state.on_validator, stage, figures)
