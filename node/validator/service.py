"""The validator: collects receipts from the DHT, spot-checks them, settles each epoch on the ledger.

    v = Validator(ValidatorConfig(run_id, model_cfg, snapshot_dir, out_dir), fetch=board.fetch, client=ledger)
    v.run(stop=lambda: False, trainers_done=lambda: False, timeout_s=3600)

(``board``: ``node.work.board.receipt_board``; the local testnet runs its validators through
``node.testnet.validation``, and ``hivenet validator start`` through ``node.validator.daemon``, which
journals each settlement (``on_settled``) before its root is posted and ``resume``s from that journal.)

Per epoch ``e`` (processed once receipts of ``e + 1`` appear, or when no new receipt of ``e`` has come
for ``settle_quiet_s`` seconds, which settles the run's last epoch, or when told the trainers are done): receipts -> ``node.validator.checker`` verdicts -> ``node.validator.settlement``
rewards and cumulative root -> ``LedgerClient.post_epoch`` (mode ``settle``), or, in mode
``watch``, a comparison with the root another validator posted and ``dispute_epoch`` when
they differ, inside the challenge window (a root not posted yet is compared again by
``watch_due``). A root is posted only while the chain holds none for its epoch (``flush_posts``). Posted epochs whose window has passed are
finalized. The validator needs what trainers have: the run's corpus (same shard store),
the model config, and the epoch-start parameter snapshots (``snapshot_dir``): it keeps no
replica of its own; it trusts a snapshot only for the hash a receipt names, and only
within ``param_tol`` of the parameters most receipts of the epoch name. What a settling
validator posts passes through ``hooks.rewards_to_post`` (``node.hooks``: a no-op on a real
node; tests overpay a validator there to show that watchers dispute the root).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from node.hooks import NO_HOOKS, Hooks
from node.train.data import Corpus, demo_corpus, vetted_corpus
from node.train.model import GPTConfig
from node.validator.checker import DEFAULT_PARAM_TOL, DEFAULT_TOL, CheckerConfig, ReceiptChecker
from node.validator.settlement import EpochSettlement, RewardBook, dispute_reason, save
from node.work.layout import shard_layout
from protocol.errors import ContractRevert
from protocol.receipts import CorpusLayout, EpochRules, SignedReceipt
from protocol.rewards_tree import RewardsTree
from protocol.scoring import ProportionalPolicy
from protocol.types import Epoch, RunId

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ValidatorConfig:
    run_id: str
    model: GPTConfig  # the run's model config
    snapshot_dir: Path  # where trainers write epoch-start parameters
    out_dir: Path  # rewards and verdict files
    shard_store: Path | None = None  # the run's vetted shards (None: the demo corpus, no data rewards)
    owners: dict[str, str] = field(default_factory=dict)  # shard id -> owner address, paid for data
    target_batch_size: int = 128  # the swarm's samples per epoch; one receipt may claim at most twice this
    p: float = 1.0  # fraction of receipts recomputed
    tol: float = DEFAULT_TOL  # relative sketch error accepted
    param_tol: float = DEFAULT_PARAM_TOL
    emission: int = 1000 * 10**18  # tokens per epoch
    compute_bps: int = 7000  # compute's share of an epoch's tokens; data owners get the rest
    mode: str = "settle"  # settle: post roots | watch: recompute and dispute roots that differ
    challenge_window_s: int = 3600  # must match the deployment's; finalization waits this long
    poll_s: float = 1.0  # DHT polling period
    # An epoch is also complete once no new receipt of it has arrived for this long (0: only when a later epoch
    # has receipts or the trainers are done). Without it a daemon, which cannot know the trainers are done,
    # would never settle the run's last epoch. A receipt that comes later still is logged and ignored.
    settle_quiet_s: float = 0.0


class Validator:
    def __init__(self, cfg: ValidatorConfig, fetch: Callable[[int], list[SignedReceipt]], client: Any = None,
                 corpus: Corpus | None = None, hooks: Hooks = NO_HOOKS,
                 on_settled: Callable[[EpochSettlement], None] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.cfg, self.fetch, self.client, self.hooks = cfg, fetch, client, hooks
        self.clock = clock  # measures the quiet period (tests pass a fake one)
        # Called with each settlement before its root goes to the chain (a daemon writes its journal there).
        self.on_settled = on_settled
        if corpus is None:
            corpus = demo_corpus()
            if cfg.shard_store is not None:
                corpus, _ = vetted_corpus(cfg.shard_store, cfg.run_id, corpus.val)
        self.corpus = corpus
        self.layout = shard_layout(cfg.shard_store, cfg.run_id, len(corpus.train)) if cfg.shard_store is not None else CorpusLayout()
        self.checker = ReceiptChecker(
            CheckerConfig(model=cfg.model, snapshot_dir=cfg.snapshot_dir, tol=cfg.tol, param_tol=cfg.param_tol), corpus)
        self.book = RewardBook(cfg.run_id, ProportionalPolicy(cfg.compute_bps), cfg.emission, dict(cfg.owners))
        self.cache: dict[int, dict[bytes, SignedReceipt]] = {}
        self.last_arrival: dict[int, float] = {}  # epoch -> clock() when its newest receipt reached the cache
        # With a quiet period: the latest epoch settled in this process -> the receipts it was settled with, so
        # that a receipt of it that shows up later is logged (once) and ignored.
        self.settled_with: dict[int, set[bytes]] = {}
        self.late: dict[int, int] = {}  # epoch -> receipts that came after it was settled (and were ignored)
        self.next_epoch = 0
        self.pending: dict[int, tuple[bytes, int]] = {}  # settle mode: ledger epoch -> (root, total) still to post
        self.posted: list[int] = []  # ledger epochs this validator posted, not yet final
        self.watching: dict[int, bytes] = {}  # watch mode: ledger epoch -> our root, not posted by anyone yet
        self.disputed: list[int] = []  # ledger epochs this validator disputed

    def resume(self, next_epoch: int, cumulative: dict[str, int], carry: int, seed: bytes,
               pending: dict[int, tuple[bytes, int]], watching: dict[int, bytes]) -> None:
        """Continues a book settled up to ``next_epoch`` (a restarted daemon's journal); the roots in ``pending``
        are posted by the next :meth:`flush_posts` unless the chain has them already."""
        self.next_epoch = next_epoch
        self.book.cumulative, self.book.carry = dict(cumulative), carry
        self.book.seed = seed or self.book.seed
        self.pending, self.watching = dict(pending), dict(watching)

    # -- receipts -----------------------------------------------------------------------

    def poll(self, ahead: int = 3) -> None:
        """Fetches receipts of the next few epochs into the cache (the DHT forgets; the cache does not)."""
        now = self.clock()
        for epoch in range(self.next_epoch, self.next_epoch + ahead):
            held = self.cache.setdefault(epoch, {})
            for signed in self.fetch(epoch):
                key = signed.receipt.digest() + signed.signature
                if key not in held:
                    held[key] = signed
                    self.last_arrival[epoch] = now
        self._ignore_late()

    def _ignore_late(self) -> None:
        """Logs receipts of the latest settled epoch that arrived after it was settled; they change nothing:
        that epoch's root is out (and a restarted daemon's journal starts after it)."""
        for epoch, seen in self.settled_with.items():
            for signed in self.fetch(epoch):
                key = signed.receipt.digest() + signed.signature
                if key not in seen:
                    seen.add(key)
                    self.late[epoch] = self.late.get(epoch, 0) + 1
                    log.warning("epoch %d: a receipt of %s arrived after the epoch was settled; ignored "
                                "(raise --validator-settle-quiet if trainers publish this late)",
                                epoch, signed.receipt.account)

    def rules(self, epoch: int) -> EpochRules:
        return EpochRules(RunId(self.cfg.run_id), Epoch(epoch), self.corpus.n_train_samples(self.cfg.model.block_size),
                          max_samples=2 * self.cfg.target_batch_size, layout=self.layout)

    def process(self, epoch: int) -> EpochSettlement:
        receipts = list(self.cache.get(epoch, {}).values())
        verdicts = self.checker.check_epoch(receipts, self.rules(epoch), seed=self.book.seed, p=self.cfg.p)
        s = self.book.settle(epoch, verdicts)
        save(self.cfg.out_dir, s)
        rejected = sum(not v.accepted for v in verdicts)
        log.info("epoch %d: %d receipts, %d rejected, rewards %s", epoch, len(verdicts), rejected, s.rewards)
        self.next_epoch = epoch + 1
        held = self.cache.pop(epoch, {})
        self.last_arrival.pop(epoch, None)
        if self.cfg.settle_quiet_s > 0:
            self.settled_with = {epoch: set(held)}
        if self.on_settled is not None:
            self.on_settled(s)
        if self.client is not None and s.tree is not None:
            self._to_chain(s)
        return s

    def ready(self, final: bool = False) -> bool:
        """Whether the next epoch's receipts are complete: a later epoch has receipts, or it has some and
        (``final``) the trainers are done or none new came for ``settle_quiet_s`` seconds."""
        e = self.next_epoch
        if any(self.cache.get(x) for x in self.cache if x > e):
            return True
        return bool(self.cache.get(e)) and (final or self.quiet(e))

    def quiet(self, epoch: int) -> bool:
        """Whether ``epoch`` has had no new receipt for ``settle_quiet_s`` seconds (never, when that is 0)."""
        quiet_s = self.cfg.settle_quiet_s
        arrived = self.last_arrival.get(epoch)
        return quiet_s > 0 and arrived is not None and self.clock() - arrived >= quiet_s

    def settle_ready(self, final: bool = False) -> list[EpochSettlement]:
        """Settles every epoch whose receipts are complete (``final``: the trainers are done)."""
        done = []
        while self.ready(final):
            done.append(self.process(self.next_epoch))
        return done

    # -- chain --------------------------------------------------------------------------

    def _to_chain(self, s: EpochSettlement) -> None:
        assert s.tree is not None and s.root is not None and self.client is not None
        if self.cfg.mode == "settle":
            cumulative = self.hooks.rewards_to_post(s.cumulative, self.client.address.lower())
            tree = s.tree if cumulative == s.cumulative else RewardsTree.build(cumulative)
            self.pending[s.ledger_epoch] = (tree.root, tree.total)
            self.flush_posts()
            return
        self.watching[s.ledger_epoch] = s.root
        self.watch_due()

    def flush_posts(self) -> list[int]:
        """Posts the pending roots, oldest first; an epoch the chain holds already is never posted again.

        A root the chain holds is ours (sent before a restart: the outbox finished it) or another
        settling validator's: ours goes on to finalization, another one is compared as a watcher would.
        Returns the ledger epochs posted now; what the chain did not take stays pending.
        """
        assert self.client is not None
        sent = []
        for ledger_epoch, (root, total) in sorted(self.pending.items()):
            record = self.client.epoch_record(ledger_epoch)
            if record["posted_at"] == 0:
                try:
                    self.client.post_epoch(ledger_epoch, root, total)
                except ContractRevert as e:  # e.g. a later epoch is on chain already: this one can never be posted
                    log.error("ledger epoch %d: the ledger refused our root (%s); not posting it", ledger_epoch, e)
                    del self.pending[ledger_epoch]
                    continue
                sent.append(ledger_epoch)
            elif record["root"] != root:
                log.warning("ledger epoch %d was posted by another validator; comparing instead of posting", ledger_epoch)
                self._compare(ledger_epoch, root)
                del self.pending[ledger_epoch]
                continue
            elif self._should_vote(ledger_epoch):
                try:  # another validator opened our (root, total): our post is a vote towards the quorum
                    self.client.post_epoch(ledger_epoch, root, total)
                except ContractRevert as e:  # e.g. same root with another total: compare instead
                    log.error("ledger epoch %d: the ledger refused our vote (%s)", ledger_epoch, e)
                    self._compare(ledger_epoch, root)
                    del self.pending[ledger_epoch]
                    continue
                sent.append(ledger_epoch)
            else:
                log.info("ledger epoch %d: our root is on chain already (posted before a restart)", ledger_epoch)
            del self.pending[ledger_epoch]
            if ledger_epoch not in self.posted:
                self.posted.append(ledger_epoch)
        return sent

    def _should_vote(self, ledger_epoch: int) -> bool:
        """True when the ledger needs more than one vote and ours is not among the epoch's voters."""
        assert self.client is not None
        if self.client.root_quorum() <= 1:
            return False
        me = self.client.address.lower()
        return all(v.lower() != me for v in self.client.epoch_voters(ledger_epoch))

    def _compare(self, ledger_epoch: int, root: bytes) -> bool | None:
        """None while no root is posted for the epoch; else True when this call disputed it, False when it
        matches ours (or stands disputed already)."""
        assert self.client is not None
        record = self.client.epoch_record(ledger_epoch)
        if record["posted_at"] == 0:
            return None
        if record["disputed"] or record["root"] == root:
            return False
        log.warning("ledger epoch %d: posted root %s differs from ours %s; disputing", ledger_epoch,
                    record["root"].hex()[:16], root.hex()[:16])
        self.client.dispute_epoch(ledger_epoch, dispute_reason(root))
        self.disputed.append(ledger_epoch)
        return True

    def watch(self, s: EpochSettlement, wait_s: float = 0.0) -> bool:
        """Disputes the posted root of ``s``'s epoch if it differs from ours; True when it disputed."""
        assert s.root is not None
        deadline = time.monotonic() + wait_s
        while True:
            outcome = self._compare(s.ledger_epoch, s.root)
            if outcome is not None or time.monotonic() >= deadline:
                return bool(outcome)
            time.sleep(self.cfg.poll_s)

    def watch_due(self) -> list[int]:
        """Compares our roots with those posted since; returns the ledger epochs this call disputed."""
        if self.client is None:
            return []
        disputed = []
        for ledger_epoch, root in sorted(self.watching.items()):
            outcome = self._compare(ledger_epoch, root)
            if outcome is None:
                continue
            del self.watching[ledger_epoch]
            if outcome:
                disputed.append(ledger_epoch)
        return disputed

    def finalize_due(self) -> list[int]:
        """Finalizes the posted epochs whose challenge window has passed without a dispute."""
        if self.client is None or not self.posted:
            return []
        now = self.client.chain.timestamp()
        done = []
        for ledger_epoch in list(self.posted):
            record = self.client.epoch_record(ledger_epoch)
            if record["disputed"]:
                self.posted.remove(ledger_epoch)
                continue
            if now < record["posted_at"] + self.cfg.challenge_window_s:
                break
            try:
                self.client.finalize_epoch(ledger_epoch)
                done.append(ledger_epoch)
            except ContractRevert as e:
                log.warning("finalizing ledger epoch %d: %s", ledger_epoch, e)
            self.posted.remove(ledger_epoch)
        return done

    # -- loop ---------------------------------------------------------------------------

    def run(self, stop: Callable[[], bool], trainers_done: Callable[[], bool], timeout_s: float) -> None:
        """Polls, settles and finalizes until ``stop()``, or until the trainers are done and all is settled."""
        deadline = time.monotonic() + timeout_s
        while not stop() and time.monotonic() < deadline:
            done = trainers_done()
            self.poll()
            self.settle_ready(final=done)
            self.finalize_due()
            if done:
                self.poll()
                self.settle_ready(final=True)
                return
            time.sleep(self.cfg.poll_s)
