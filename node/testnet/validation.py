"""Validators of a local testnet: a chain, a deployment, V validators in the supervisor's process.

The embedded chain (eth-tester) lives in this process, so the validators do too (threads:
they run no hivemind optimizer, only a DHT client and recomputation). With ``chain="anvil"``
an anvil from ``contracts/node_modules`` is started and reached over JSON-RPC. Validator 0
settles (posts roots); the others watch and dispute roots that differ from theirs. After
training: remaining epochs are settled, the chain's clock is moved past the challenge
window, posted epochs are finalized, and validator 0 relays every account's claim. With
``publish_rewards`` validator 0 also publishes each settled epoch's rewards tree on the network
(``node.swarm.rewards_board``), so that accounts can claim on their own with ``hivenet rewards claim --run-id``.

Validators read the trainers' snapshots from the shared folder (``snapshots="local"``, the default) or
fetch them from the trainers over P2P, as validators on other machines do (``snapshots="network"``:
``node.work.snapshot_fetch``; each keeps what it fetched in ``<out_dir>/validator<i>/snapshots``).
"""

from __future__ import annotations

import logging
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import requests
from eth_account import Account

from node.identity import NodeIdentity, save_keystore, KeystoreConfig
from node.ledger.chain import Chain
from node.ledger.client import LedgerClient
from node.ledger.config import DeployConfig, LedgerConfig
from node.ledger.outbox import Outbox
from node.swarm.config import SwarmConfig
from node.swarm.dht import start_dht
from node.swarm.rewards_board import RewardsBoard, RewardsPeer
from node.validator.service import Validator, ValidatorConfig
from node.validator.settlement import EpochSettlement, publish
from node.work.board import install_receipt_validator, receipt_board
from protocol.rewards_publication import RewardsUnavailable

log = logging.getLogger(__name__)
ANVIL = Path(__file__).resolve().parents[2] / "contracts" / "node_modules" / "@foundry-rs" / "anvil-linux-amd64" / "bin" / "anvil"
PASSWORD = "testnet"  # the testnet's throwaway keystores; never use for real funds


def make_keystore(path: Path) -> str:
    """A fresh keystore (and password file next to it) for a testnet peer; returns its address."""
    identity = NodeIdentity.generate()
    path.parent.mkdir(parents=True, exist_ok=True)
    save_keystore(identity, path, PASSWORD, KeystoreConfig(scrypt_n=2**12))
    path.with_suffix(".pass").write_text(PASSWORD + "\n")
    return identity.address.lower()


def start_anvil(port: int, timeout_s: float = 20.0) -> tuple[subprocess.Popen[bytes], str]:
    if not ANVIL.exists():
        raise FileNotFoundError(f"{ANVIL} missing: run `npm ci` in contracts/")
    proc = subprocess.Popen([str(ANVIL), "--host", "127.0.0.1", "--port", str(port), "--silent"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            requests.post(url, json={"jsonrpc": "2.0", "id": 1, "method": "eth_chainId"}, timeout=1)
            return proc, url
        except requests.ConnectionError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError(f"anvil did not start on port {port}") from None
            time.sleep(0.05)


@dataclass
class ServiceConfig:
    run_id: str
    bootstrap: str  # multiaddr of a trainer to join the DHT through
    validators: int
    validator: ValidatorConfig  # shared settings; out_dir gets a per-validator suffix
    chain: str = "embedded"  # embedded | anvil
    anvil_port: int = 0
    challenge_window_s: int = 600  # the testnet moves the chain's clock past it at the end
    roles: dict[str, str] = field(default_factory=dict)  # address -> "peer" | "data", for the summary
    snapshots: str = "local"  # local: the shared snapshot folder | network: fetched from the trainers over P2P
    # The settling validator publishes each epoch's rewards tree on the network (claims by run id). Off by
    # default: the testnet relays every claim itself, and serving trees costs a P2P handler per validator.
    publish_rewards: bool = False


class PublishingValidator(Validator):
    """A validator that publishes each settled epoch's rewards tree (``settlement.publish``) right after it."""

    def __init__(self, *args: Any, publisher: RewardsPeer, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.publisher = publisher
        self.published: dict[int, str] = {}  # ledger epoch -> content id of its tree
        self.publish_errors: list[str] = []

    def process(self, epoch: int) -> EpochSettlement:
        s = super().process(epoch)
        try:
            tree_id = publish(self.publisher, self.cfg.run_id, s)
        except RewardsUnavailable as e:  # the tree stays on disk; claims by run id wait for a later epoch
            log.warning("ledger epoch %d: rewards tree not published: %s", s.ledger_epoch, e)
            self.publish_errors.append(f"ledger epoch {s.ledger_epoch}: {e}")
            return s
        if tree_id is not None:
            self.published[s.ledger_epoch] = tree_id
        return s


class ValidationService:
    def __init__(self, cfg: ServiceConfig) -> None:
        self.cfg = cfg
        self.anvil: subprocess.Popen[bytes] | None = None
        self.validators: list[Validator] = []
        self.clients: list[LedgerClient] = []
        self.dhts: list[Any] = []
        self.publishers: list[RewardsPeer] = []
        self.sources: list[Any] = []  # network snapshot sources (snapshots="network"), closed before the DHTs
        self.threads: list[threading.Thread] = []
        self._stop = False
        self._trainers_done = False
        self.errors: list[str] = []

    def start(self) -> None:
        c = self.cfg
        rpc = None
        if c.chain == "anvil":
            self.anvil, rpc = start_anvil(c.anvil_port)
        chain = Chain.connect(LedgerConfig(rpc_url=rpc))
        for i in range(c.validators):
            account = Account.create()
            chain.faucet(account.address, 10**20)
            self.clients.append(LedgerClient(chain, account, Outbox(None)))
        admin = self.clients[0]
        deployment = admin.deploy(DeployConfig(challenge_window_s=c.challenge_window_s))
        for other in self.clients[1:]:
            other.attach(deployment)
            admin.grant_validator(other.address)
        pot = c.validator.emission * 10_000  # enough for 10 000 epochs
        admin.mint(admin.address, pot)
        admin.fund(pot)
        self.chain, self.deployment = chain, deployment
        for i, client in enumerate(self.clients):
            dht = start_dht(SwarmConfig(run_id=c.run_id, initial_peers=(c.bootstrap,)))
            install_receipt_validator(dht, c.run_id)
            board = receipt_board(dht, c.run_id)
            vcfg = ValidatorConfig(**{**c.validator.__dict__, "out_dir": c.validator.out_dir / f"validator{i}",
                                      "mode": "settle" if i == 0 else "watch",
                                      "challenge_window_s": c.challenge_window_s})
            self.dhts.append(dht)
            publisher = None
            if c.publish_rewards and i == 0:
                publisher = RewardsPeer(RewardsBoard(dht, c.run_id))
                self.publishers.append(publisher)
            make = partial(PublishingValidator, publisher=publisher) if publisher is not None else Validator
            if c.snapshots == "network":
                validator = self._fetching_validator(vcfg, board, dht, make)
            else:
                validator = make(vcfg, board.fetch, None)
            self.validators.append(validator)
        for v, client in zip(self.validators, self.clients):
            t = threading.Thread(target=self._run, args=(v, client.account), daemon=True, name="validator")
            t.start()
            self.threads.append(t)

    def _fetching_validator(self, vcfg: ValidatorConfig, board: Any, dht: Any,
                            make: Callable[..., Validator] = Validator) -> Validator:
        """A validator whose checker fetches snapshots over P2P, each as soon as a receipt names it (while the
        trainers that hold it are still up: the last epochs settle after they left)."""
        from node.work.snapshot_fetch import NetworkSnapshotSource

        source = NetworkSnapshotSource(dht, self.cfg.run_id, vcfg.out_dir / "snapshots")
        self.sources.append(source)
        holder: list[Validator] = []

        def fetch(epoch: int) -> list[Any]:
            receipts = board.fetch(epoch)
            # The checker's model is scratch space between checks (each check loads its snapshot first).
            source.prefetch(holder[0].checker.model, [(s.receipt.params_hash, epoch) for s in receipts])
            return receipts

        validator = make(vcfg, fetch, None)
        validator.checker.snapshots = source
        holder.append(validator)
        return validator

    def _client(self, account: Any) -> LedgerClient:
        """A client of this thread: the outbox's SQLite connection must not cross threads."""
        return LedgerClient(self.chain, account, Outbox(None), self.deployment)

    def _run(self, v: Validator, account: Any) -> None:
        try:
            v.client = self._client(account)
            v.run(lambda: self._stop, lambda: self._trainers_done, timeout_s=24 * 3600)
        except Exception as e:  # reported in the summary; the supervisor must still stop the peers
            log.exception("validator failed")
            self.errors.append(f"{type(e).__name__}: {e}")

    def finish(self, timeout_s: float = 120.0) -> dict[str, Any]:
        """Trainers are done: settle the rest, finalize past the window, relay claims; returns the summary part."""
        self._trainers_done = True
        for t in self.threads:
            t.join(timeout_s)
        main = self.validators[0]
        main.client = self._client(self.clients[0].account)  # this thread's own
        if main.client is not None and main.posted:
            main.client.chain.advance_time(self.cfg.challenge_window_s + 1)
            main.finalize_due()
        cumulative = main.book.cumulative
        final = main.book.settled[-1] if main.book.settled else None
        tokens: dict[str, int] = {}
        if final is not None and final.tree is not None and main.client is not None:
            for account, amount in final.tree.amounts.items():
                main.client.claim(account, amount, final.tree.proof(account))
            tokens = {a: main.client.token_balance(a) for a in cumulative}
        verified: dict[str, int] = {}
        for s in main.book.settled:
            for account, n in {**s.compute, **{k: v for k, v in s.data.items()}}.items():
                verified[account] = verified.get(account, 0) + n
        rejected = [v.as_dict() for s in main.book.settled for v in s.verdicts if not v.accepted]
        accounts = set(cumulative) | set(self.cfg.roles)
        published = {}
        if isinstance(main, PublishingValidator):
            published = {"rewards_trees": {str(e): t for e, t in main.published.items()},
                         "rewards_publish_errors": main.publish_errors}
        return {
            **published,
            "rewards": {a: {"role": self.cfg.roles.get(a, "unknown"), "verified_samples": verified.get(a, 0),
                            "tokens": str(tokens.get(a, 0))} for a in sorted(accounts)},
            "receipts_rejected": len(rejected),
            "receipts_rejected_detail": rejected,
            "receipts_checked": sum(v.checked for s in main.book.settled for v in s.verdicts),
            "receipts": sum(len(s.verdicts) for s in main.book.settled),
            "sketch_error_max_accepted": max((v.error or 0.0 for s in main.book.settled for v in s.verdicts
                                              if v.accepted and v.checked), default=None),
            "epochs_settled": len(main.book.settled),
            "finalized_epoch": main.client.finalized()[0] if main.client is not None else None,
            "disputes": sum(len(v.disputed) for v in self.validators),
            "validator_errors": self.errors,
            "settled": [{"epoch": s.epoch, "compute": s.compute, "data": s.data} for s in main.book.settled],
        }

    def close(self) -> None:
        self._stop = True
        for t in self.threads:
            t.join(10)
        for source in self.sources:
            source.close()
        for publisher in self.publishers:
            publisher.close()
        for dht in self.dhts:
            dht.shutdown()
        for client in self.clients:
            client.close()
        if self.anvil is not None:
            self.anvil.terminate()
            try:
                self.anvil.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.anvil.kill()
