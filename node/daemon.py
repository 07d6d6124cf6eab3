"""A node's lifecycle: start -> run -> graceful stop, with its stage reported everywhere.

    daemon = Daemon(load_config(path, os.environ, flags))
    with graceful_signals(daemon.request_stop):   # the CLI installs SIGINT/SIGTERM handlers
        daemon.run()

Start: the side-loop comes up first (status endpoint, telemetry), so a node that fails
later still says why on /status and MQTT. Run: the trainer blocks the main thread.
Stop (first SIGINT/SIGTERM): the trainer finishes its step and writes its checkpoint;
while it is still in the DHT it publishes the signed receipts the DHT has not accepted
yet (for at most ``node.train.loop.STOP_FLUSH_S``) and writes those it still refuses
to ``<checkpoint>.receipts``, which the next start publishes; then it leaves the DHT.
Telemetry sends what it holds (``FLUSH_TIMEOUT_S`` at most) and the process exits 0.
A second signal forces: KeyboardInterrupt unwinds through the same stop path.

A trainer node holds no ledger outbox: trainers sign, validators and relayers send
transactions (DESIGN.md, "Who touches the chain"), and the ``[ledger]`` keys serve
``hivenet doctor`` only. The commands that send transactions (``hivenet ledger``,
``hivenet rewards claim``) keep a SQLite outbox and finish what it left pending when they
open it (``LedgerClient.open`` reconciles), so no intent waits on a node's stop.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from node.config import NodeConfig
from node.hooks import NO_HOOKS, Hooks
from node.peer_key import ensure_key_file
from node.sideloop import SideLoop
from node.telemetry.http import StatusServer
from node.telemetry.publisher import TelemetryPublisher
from node.telemetry.state import DaemonStage, NodeState
from protocol.errors import HivenetError

if TYPE_CHECKING:
    from protocol.run_manifest import SignedRunManifest

log = logging.getLogger(__name__)

FLUSH_TIMEOUT_S = 3.0  # telemetry's last words may take this long; SIGTERM-to-exit must stay well under 10 s


class Daemon:
    def __init__(self, cfg: NodeConfig, on_status: Callable[[Any], None] | None = None, hooks: Hooks = NO_HOOKS,
                 manifest: SignedRunManifest | None = None) -> None:
        self.cfg = cfg
        # The run manifest ``cfg`` was built from (node.cli.node_cmd.join_run), or None: the node's own settings.
        # It also fixes what has no config key (the model's heads, the warm-up) and is checked against the corpus.
        self.manifest = manifest
        self.hooks = hooks  # node.hooks: the testnet's and tests' injection points; no-ops on a real node
        self.state = NodeState(cfg.swarm.run_id)
        self.stage = DaemonStage.STARTING
        self._extra_status = on_status  # e.g. the terminal progress line
        self._trainer: Any = None
        self._shards: Any = None  # node.data.serving.ShardService when the node fetches the run's shards
        self._stop_requested = False
        self.publisher = TelemetryPublisher(cfg.telemetry, self.state) if cfg.telemetry.broker else None
        self.server = StatusServer(cfg.http, self.state) if cfg.http.listen else None
        self.side = SideLoop(setup=self._open, services=[self.publisher.run] if self.publisher else [], teardown=self._close)
        self.stopped_at: float | None = None

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

    # -- main thread ----------------------------------------------------------------------

    def _set_stage(self, stage: DaemonStage, error: str | None = None) -> None:
        self.stage = stage
        log.info("node %s%s", stage.value, f": {error}" if error else "")
        self.side.call(self.state.set_stage, stage, error)

    def _on_status(self, status: Any) -> None:
        self.side.call(self.state.on_trainer_status, dataclasses.asdict(status))
        if self._extra_status is not None:
            self._extra_status(status)

    def _on_event(self, record: Any) -> None:
        from node.records import record_json

        self.side.call(self.state.on_metrics, record_json(record))  # telemetry carries the JSON form

    def request_stop(self) -> None:
        """Graceful stop (first SIGINT/SIGTERM): the trainer checkpoints and leaves at its next step."""
        if self._stop_requested:
            return
        self._stop_requested = True
        self._set_stage(DaemonStage.STOPPING)
        if self._trainer is not None:
            self._trainer.request_stop()

    def run(self) -> None:
        """Blocks until training ends or a stop is asked; raises (after reporting it) when the node fails."""
        self.side.start()  # a taken status port fails here, before any model is built
        try:
            try:
                self._run_trainer()
            finally:
                if self._shards is not None:  # after the trainer: peers may still be fetching from this one
                    self._shards.stop()
        except BaseException as e:
            reason = str(e) if isinstance(e, HivenetError) else f"{type(e).__name__}: {e}"
            self._set_stage(DaemonStage.FAILED, reason if not isinstance(e, KeyboardInterrupt) else "forced stop")
            self._stop_side()
            raise
        self._set_stage(DaemonStage.STOPPED)
        self._stop_side()

    def _run_trainer(self) -> None:
        swarm = self.cfg.swarm
        if swarm.identity_path is not None:  # name the peer before torch loads: a monitor sees it start at once
            peer = ensure_key_file(swarm.identity_path)
            if peer:
                self.side.call(self.state.on_trainer_status, {"stage": "starting", "peer_id": peer})
        # torch and hivemind load here, after the endpoint is up
        from node.sync import make_synchronizer
        from node.train.loop import Trainer

        train = self.cfg.train()
        if self.manifest is not None:
            from node.run.apply import apply_to_train

            train = apply_to_train(train, self.manifest.manifest)
        if train.fetch_shards:  # the corpus comes from the network: fetched and vetted here, served on while training
            from node.train.data import demo_corpus, fetch_run_shards

            self._shards, train = fetch_run_shards(swarm, train, demo_corpus().val)
        if self.manifest is not None:
            from node.run.apply import check_corpus

            check_corpus(train, self.manifest.manifest)  # before joining: a wrong corpus must not train
            log.info("run %s: manifest %s by %s", swarm.run_id, self.manifest.content_id, self.manifest.creator)
        sync = make_synchronizer(swarm, train, self.hooks)

        def receipts(joined: Any, corpus: Any, shard_ids: list[str]) -> Any:
            from node.work.board import install_receipt_validator, receipt_board
            from node.work.recorder import RecorderConfig, open_recorder

            install_receipt_validator(joined.dht, swarm.run_id)  # every peer refuses forged receipts, signer or not
            if train.keystore is None:
                return None
            snapshots = None
            if train.snapshot_dir is not None:  # a bounded store; served so that validators elsewhere can fetch
                from node.work.snapshot_store import SnapshotLimits, SnapshotStore

                store = SnapshotStore(train.snapshot_dir, SnapshotLimits(
                    cap_bytes=train.snapshot_cap_mb << 20, keep_epochs=train.snapshot_keep_epochs))
                snapshots = store
                if train.snapshot_serve:
                    from node.swarm.streams import StreamError
                    from node.work.snapshot_service import serve_snapshots

                    try:
                        snapshots = serve_snapshots(joined.dht, swarm.run_id, store)
                    except (TimeoutError, OSError, StreamError) as e:  # training goes on; only remote checks need it
                        log.warning("snapshots are stored but not served (%s); validators on other machines "
                                    "cannot check this node's receipts", e)
            return open_recorder(RecorderConfig(
                run_id=swarm.run_id, peer_id=joined.peer_id, batch_size=train.batch_size,
                n_samples=corpus.n_train_samples(train.model.block_size), train_bytes=len(corpus.train),
                keystore=train.keystore, password_file=train.password_file, shard_store=train.shard_store,
                snapshot_dir=train.snapshot_dir, checkpoint=train.checkpoint_path),
                receipt_board(joined.dht, swarm.run_id).publish, snapshots)

        self._trainer = Trainer(swarm, train, sync=sync, receipts=receipts if sync.signs_receipts else None,
                                hooks=self.hooks, on_status=self._on_status, on_event=self._on_event)
        if self._stop_requested:
            return
        self._set_stage(DaemonStage.RUNNING)
        self._trainer.run()

    def _stop_side(self) -> None:
        if not self.side.stop(timeout=FLUSH_TIMEOUT_S + 2):
            log.warning("side services did not stop in time; exiting anyway")
        self.stopped_at = time.time()
