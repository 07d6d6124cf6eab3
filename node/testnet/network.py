"""A local testnet: N peer processes of one run, the first one the bootstrap.

    with Testnet(TestnetConfig(peers=3, run_dir=Path("runs/x"))) as net:
        net.wait_finished(timeout=900)
    print(net.summary())
"""

from __future__ import annotations

import json
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from node.records import FinalRecord, Record, RecordTail, StartRecord, StopRecord, read_records
from node.testnet.metrics import summarize
from node.testnet.peers import PeerProcess, bootstrap_address, free_port, wait_until


@dataclass(frozen=True)
class TestnetConfig:
    run_dir: Path  # per-peer logs, metrics, checkpoints, and summary.json go here
    peers: int = 3  # peer processes; each gets one torch thread
    run_id: str = "testnet"  # DHT prefix of the run
    epochs: int = 60  # collaborative epochs to train before the peers stop
    target_batch_size: int = 128  # samples per collaborative epoch, summed over peers
    batch_size: int = 16  # samples per local step of each peer
    n_layer: int = 4
    n_embd: int = 256
    device: str = "auto"
    lr: float | None = None  # every peer's peak learning rate (None: the node's default)
    peer_wait_timeout: float = 120.0  # how long peers wait for each other at the start
    extra_args: tuple[str, ...] = ()  # further `hivenet node start` flags for every peer
    peer_env: dict[str, str] = field(default_factory=dict)  # extra environment for every peer
    contributors: int = 3  # data contributors: the demo corpus is packed into one vetted shard each (0: raw corpus)
    # Receipts and rewards: trainers sign receipts; `validators` run in this process
    # (node.testnet.validation), check them and settle each epoch on `chain` (embedded | anvil). 0: off.
    validators: int = 0
    chain: str = "embedded"
    receipt_p: float = 1.0  # fraction of receipts the validators recompute
    # MQTT broker for the peers' telemetry: None starts an in-process amqtt broker for the testnet's
    # lifetime; a URL (mqtt://host:port, e.g. a mosquitto) is used as it is; "" turns telemetry off.
    broker: str | None = None
    # Robust averaging under attack: the last `byzantine` peers run `attack` (node.testnet.attacks);
    # `aggregator` None keeps the peers' default (centered-clip). `peer_args` adds flags to single peers by index.
    byzantine: int = 0
    attack: str = "sign-flip"
    aggregator: str | None = None
    peer_args: dict[int, tuple[str, ...]] = field(default_factory=dict)
    # Further contributions (UTF-8 text) vetted after the contributors' shards, e.g. a scenario's poisoned or
    # duplicate shard (node.testnet.scenario): vetted like any other, so a failed one never reaches a peer.
    extra_shards: tuple[bytes, ...] = ()

    __test__ = False  # not a pytest test class, despite the name


class Testnet:
    __test__ = False

    def __init__(self, cfg: TestnetConfig) -> None:
        self.cfg = cfg
        self.peers: list[PeerProcess] = []
        self.started_at = 0.0
        self.finished_at: float | None = None
        self.bootstrap = ""
        self._tails: dict[str, RecordTail] = {}
        self.shards: list[dict[str, Any]] = []
        self.accounts: dict[int, str] = {}  # peer index -> reward address (receipts on)
        self.validation: Any = None  # node.testnet.validation.ValidationService while running
        self.validation_result: dict[str, Any] = {}  # rewards, receipts_rejected, ... once finished
        self.broker_url = ""  # the peers' --broker, once started
        self._embedded_broker: Any = None

    @property
    def shard_store(self) -> Path:
        return self.cfg.run_dir / "shards"

    def __enter__(self) -> "Testnet":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _args(self, index: int) -> list[str]:
        c = self.cfg
        args = [
            "--run-id", c.run_id, "--expected-peers", str(c.peers), "--peer-wait-timeout", str(c.peer_wait_timeout),
            "--max-epochs", str(c.epochs), "--target-batch-size", str(c.target_batch_size),
            "--batch-size", str(c.batch_size), "--n-layer", str(c.n_layer), "--n-embd", str(c.n_embd),
            "--device", c.device, "--identity", str(self.cfg.run_dir / f"peer{index}" / "identity.key"),
            "--broker", self.broker_url, "--status-listen", "127.0.0.1:0",
            "--status-url-file", str(self.cfg.run_dir / f"peer{index}" / "status.url"),
            *(("--lr", repr(c.lr)) if c.lr is not None else ()),
            *c.extra_args,
        ]
        if c.contributors > 0:
            args += ["--shard-store", str(self.shard_store)]
        if c.aggregator is not None:
            args += ["--aggregator", c.aggregator]
        if c.peers - c.byzantine <= index < c.peers:  # peers added later (scenarios' add_peer) are honest
            args += ["--attack", c.attack]
        args += list(c.peer_args.get(index, ()))
        if c.validators > 0:
            d = c.run_dir / f"peer{index}"
            args += ["--keystore", str(d / "node.key"), "--password-file", str(d / "node.pass"),
                     "--snapshot-dir", str(c.run_dir / "snapshots")]
        if index > 0:  # peers hold the same model after each round: one periodic evaluation is enough
            args += ["--eval-every", "0"]
        if index == 0:
            return [*args, "--listen", self.bootstrap.split("/p2p/")[0]]
        return [*args, "--initial-peers", self.bootstrap]

    def start(self) -> None:
        self.cfg.run_dir.mkdir(parents=True, exist_ok=True)
        self.started_at = time.time()
        if self.cfg.contributors > 0:
            from node.testnet.data import prepare_shards

            self.shards = prepare_shards(self.shard_store, self.cfg.run_id, self.cfg.contributors,
                                         extra=list(self.cfg.extra_shards))
            (self.cfg.run_dir / "shards.json").write_text(json.dumps(self.shards, indent=2) + "\n")
        if self.cfg.broker is None:
            from node.telemetry.broker import EmbeddedBroker

            self._embedded_broker = EmbeddedBroker()
            self._embedded_broker.start()
            self.broker_url = self._embedded_broker.url
        else:
            self.broker_url = self.cfg.broker
        (self.cfg.run_dir / "broker.txt").write_text(self.broker_url + "\n")
        self.bootstrap = bootstrap_address(self.cfg.run_dir / "peer0", free_port())
        (self.cfg.run_dir / "bootstrap.txt").write_text(self.bootstrap + "\n")
        if self.cfg.validators > 0:
            from node.testnet.validation import make_keystore

            self.accounts = {i: make_keystore(self.cfg.run_dir / f"peer{i}" / "node.key") for i in range(self.cfg.peers)}
        for i in range(self.cfg.peers):
            peer = PeerProcess(index=i, dir=self.cfg.run_dir / f"peer{i}", args=self._args(i), env=dict(self.cfg.peer_env))
            self.peers.append(peer)
            peer.start()
            if i == 0:  # the others bootstrap through it: it must be listening first
                wait_until(lambda: any(isinstance(r, StartRecord) for r in read_records(peer.metrics_path))
                           or not peer.alive(), 60)
        if self.cfg.validators > 0:
            self._start_validation()

    def _start_validation(self) -> None:
        from eth_account import Account

        from node.train.model import GPTConfig
        from node.testnet.validation import ServiceConfig, ValidationService
        from node.validator.service import ValidatorConfig

        c = self.cfg
        owners = {s["shard_id"]: Account.create().address.lower() for s in self.shards if s["shard_id"]}
        roles = {**{a: "peer" for a in self.accounts.values()}, **{a: "data" for a in owners.values()}}
        vcfg = ValidatorConfig(c.run_id, GPTConfig(n_layer=c.n_layer, n_embd=c.n_embd), c.run_dir / "snapshots",
                               c.run_dir / "validation", shard_store=self.shard_store if c.contributors > 0 else None,
                               owners=owners, target_batch_size=c.target_batch_size, p=c.receipt_p)
        self.validation = ValidationService(ServiceConfig(c.run_id, self.bootstrap, c.validators, vcfg, chain=c.chain,
                                                          anvil_port=free_port(), roles=roles))
        self.validation.start()

    def finish_validation(self) -> dict[str, Any]:
        """After the trainers stopped: settle, finalize and claim; the summary's rewards part."""
        if self.validation is None:
            return {}
        try:
            self.validation_result = self.validation.finish()
        finally:
            self.validation.close()
            self.validation = None
        return self.validation_result

    def metrics(self) -> dict[str, list[Record]]:
        """Every peer's metrics records so far (read incrementally: the live view polls this every second)."""
        for p in self.peers:
            if p.name not in self._tails or self._tails[p.name].path != p.metrics_path:
                self._tails[p.name] = RecordTail(p.metrics_path)
        return {p.name: list(self._tails[p.name].read()) for p in self.peers}

    def finished(self) -> bool:
        return all(not p.alive() for p in self.peers)

    def wait_finished(self, timeout: float) -> bool:
        done = wait_until(self.finished, timeout, poll=1.0)
        if done and self.finished_at is None:
            self.finished_at = time.time()
        return done

    def failed_peers(self) -> list[str]:
        """Peers that exited non-zero without having been killed on purpose."""
        return [p.name for p in self.peers if not p.alive() and not p.killed and p.returncode() not in (0, None)]

    def failure_reason(self, name: str) -> str:
        """The peer's own one-line error (``error: ...`` on its stderr), or where to look."""
        peer = next(p for p in self.peers if p.name == name)
        out = peer.dir / "stdout.txt"
        lines = out.read_text(errors="replace").splitlines() if out.exists() else []
        errors = [line for line in lines if line.startswith("error: ")]
        return errors[-1][len("error: "):] if errors else f"exit {peer.returncode()}; see {peer.log_path} and {out}"

    def stop(self, timeout: float = 60.0) -> None:
        """SIGTERM every peer (they checkpoint and leave), then SIGKILL whatever is left of each group.

        A second Ctrl-C during the wait (KeyboardInterrupt) skips straight to the kill: no peer,
        DHT or p2pd process outlives the testnet either way.
        """
        try:
            for p in self.peers:
                p.signal(signal.SIGTERM)
            for p in self.peers:
                p.stop(timeout)
        finally:
            for p in self.peers:
                p.kill_group()
        if self._embedded_broker is not None:  # after the peers: their last status still reaches it
            self._embedded_broker.stop()
            self._embedded_broker = None
        if self.finished_at is None:
            self.finished_at = time.time()
        self.finish_validation()  # trainers are gone: settle the rest, finalize, claim (and stop chain + DHTs)

    def summary(self) -> dict[str, Any]:
        end = self.finished_at or time.time()
        per_peer = self.metrics()
        first = [r.t for recs in per_peer.values() for r in recs if isinstance(r, StartRecord)]
        last = [r.t for recs in per_peer.values() for r in recs if isinstance(r, (FinalRecord, StopRecord))]
        train_s = max(last) - min(first) if first and last else None
        out = summarize(per_peer, wall_s=end - self.started_at, train_s=train_s)
        out.update(peers=self.cfg.peers, run_id=self.cfg.run_id, failed_peers=self.failed_peers(), shards=self.shards)
        out.update(self.validation_result)
        return out

    def write_summary(self) -> dict[str, Any]:
        summary = self.summary()
        (self.cfg.run_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
        return summary
