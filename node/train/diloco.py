"""DiLoCo-style training: H local steps, then the swarm averages how far everyone moved.

Each peer keeps the run's *shared* parameters ``g`` (identical on every peer)
and its own *local* model. A round is:

1. H inner steps (AdamW) on the local model, batches from ``protocol.assignment``
   with the round as the epoch;
2. the pseudo-gradient ``g - local`` goes to ``PseudoGradientAverager``, which
   averages it over the whole swarm (robust reduce, optional 8-bit or float16
   compression) and gives every member bit-identical results, or fails;
3. a background thread waits for that round and for the group's agreement
   (``node.swarm.agreement``: every member holds the same result) while the
   next round's inner steps already run (``overlap``, on by default);
4. when the round is done, every peer applies the same outer step
   (``node.swarm.outer``: SGD with Nesterov momentum) to ``g`` and moves its
   local model to ``new g + (steps taken since the round was sent)``, so no
   local step is lost and nothing is counted twice.

A round applies only with the whole expected swarm in the group, so every peer
applies it or none does and ``g`` stays identical everywhere; a round that fails
(a peer missing, a dead reducer, a disagreement) is skipped by all, and its
local progress rides along in the next pseudo-gradient.

Each peer reports the bytes its averager sent and received, and its compute
utilization: the share of wall time spent in inner steps rather than waiting
for the swarm.

Limits, for now: a peer that restarts resumes its own checkpoint and cannot load
the others' state, so rounds pause until every peer holds the same round again;
work receipts are not signed in this mode (the validator replays sync epochs).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FuturesTimeout
from dataclasses import asdict, dataclass
from typing import Any

import torch

from node.swarm import codecs, models
from node.swarm.agreement import Outcome, RoundAgreement, sketch
from node.swarm.dht import peer_id_of, round_bits, start_dht, visible_maddrs
from node.swarm.outer import OuterState, initial_state, outer_step, pseudo_gradient
from node.swarm.pseudo_averager import PseudoGradientAverager
from node.swarm.robust import make_aggregator
from node.train.checkpoint import save_checkpoint
from node.train.data import assigned_batch, val_batches
from node.train.model import GPT, build_model, describe_model, model_fingerprint
from node.train.trainer import Trainer, evaluate, param_digest, run_seed
from protocol.errors import ConfigError, PeersNotFound
from protocol.types import Epoch, PeerId, RunId

log = logging.getLogger(__name__)

STOP_WAIT_S = 3.0  # on a graceful stop, how long a round in flight may still take (SIGTERM to exit stays < 10 s)


def inner_lr_factor(step: int, warmup_steps: int) -> float:
    """Linear warm-up to 1 over ``warmup_steps``, then constant (also the DDP baseline's schedule in bench/efficiency.py).

    Constant rather than decayed: with a cosine decay to 10% DDP gains more from the annealing than DiLoCo does
    (measured here, 2 peers, 2,000 steps: DiLoCo 6.9% above DDP with the decay, 1.7% with a constant rate).
    """
    return min(1.0, (step + 1) / max(1, warmup_steps))


@dataclass(frozen=True)
class RoundOutcome:
    round: int
    applied: bool
    reason: str  # agreed | failed: ... | partial group ... | <agreement reason>
    group_size: int
    delta: list[torch.Tensor] | None  # the swarm's averaged pseudo-gradient when applied
    behind: int = 0  # rounds differed: how many rounds this peer is behind all the others of its group (0: not)


@dataclass
class SentRound:
    round: int
    local_at_send: list[torch.Tensor]  # this peer's local parameters when it sent the round
    future: Future  # -> RoundOutcome, from the background thread
    shift: int = 0  # rounds this peer had skipped (to catch up with the swarm) when it sent this one


class Clock:
    """Where a peer's wall time goes: inner steps (compute) or waiting for the swarm."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.compute_s = 0.0
        self.wait_s = 0.0

    @property
    def utilization(self) -> float:
        return self.compute_s / max(1e-9, time.monotonic() - self.started)


class DilocoTrainer(Trainer):
    """A training peer in DiLoCo mode (``train.mode = "diloco"``); ``max_epochs`` counts outer rounds."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.cfg.keystore is not None:
            raise ConfigError("receipts.keystore is set, but DiLoCo mode does not sign work receipts yet; "
                              "use train.mode = \"sync\" for receipts")
        if not 0.0 <= self.cfg.diloco.outer_momentum < 1.0:
            raise ConfigError(f"train.outer_momentum must be in [0, 1), got {self.cfg.diloco.outer_momentum}")
        codecs.compression(self.cfg.diloco.compression)  # an unknown name fails here, before the swarm is joined
        self.shared: OuterState | None = None
        self.residual: list[torch.Tensor] | None = None  # error feedback: what compression dropped last round
        self.clock = Clock()
        self.rounds_applied = 0
        self.rounds_failed = 0
        self.inner: torch.optim.Optimizer | None = None
        self.next_round = 0  # the round this peer trains next (rounds count attempts; shared.step counts applied ones)
        self.skip_rounds = 0  # rounds to skip before the next, to catch up with the swarm (set by _apply)
        self.rounds_skipped = 0  # rounds skipped so far

    # -- setup -------------------------------------------------------------------------------

    def run(self) -> None:
        torch.set_num_threads(self.cfg.threads)
        model = build_model(self.cfg.model, seed=run_seed(self.swarm.run_id)).to(self.device)
        inner = self.inner = torch.optim.AdamW(model.parameters(), lr=self.cfg.lr, betas=(0.9, 0.95),
                                               weight_decay=self.cfg.weight_decay)
        self.shared, first_round = initial_state(model.parameters()), 0
        if self._resume is not None:
            first_round = self._load_resume(model, inner)
        val = val_batches(self.corpus, self.cfg.model.block_size, self.cfg.eval_windows)
        self.fingerprint = model_fingerprint(self.cfg.model, model)
        self._emit(stage="joining")
        dht = start_dht(self.swarm)
        averager = None
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="diloco-round")
        try:
            peer = peer_id_of(dht)
            self._emit(peer_id=peer, maddrs=visible_maddrs(dht))
            # everything averaged is keyed by the run and the model: peers of other models never meet (node.swarm.models)
            key = models.join(dht, self.swarm.run_id, self.fingerprint, describe_model(self.cfg.model))
            averager = PseudoGradientAverager(
                [torch.zeros_like(p, device="cpu") for p in model.parameters()], dht,
                aggregator=make_aggregator(self.swarm.aggregator, tau=self.swarm.clip_tau,
                                           iterations=self.swarm.clip_iterations, trim_fraction=self.swarm.trim_fraction),
                compression=self.cfg.diloco.compression, prefix=f"{key}_diloco", start=True,
                target_group_size=self.swarm.expected_peers, min_group_size=self.swarm.expected_peers,
                initial_group_bits=round_bits(first_round),
                min_matchmaking_time=self.swarm.matchmaking_time, request_timeout=min(3.0, 0.6 * self.swarm.matchmaking_time),
                # A round stuck on a member that fell out of the group ends at these limits; with overlap the
                # others keep computing meanwhile, so they only cost time when longer than a round of inner steps.
                allreduce_timeout=self.swarm.averaging_timeout, sender_timeout=self.swarm.averaging_timeout / 2,
                reducer_timeout=self.swarm.averaging_timeout, allow_state_sharing=False)
            agreement = RoundAgreement(dht, key, self.swarm.agreement_timeout) \
                if self.swarm.agreement_timeout > 0 else None
            self._metric("start", epoch=first_round, val_loss=evaluate(model, val, self.device),
                         resumed=self._resume is not None, device=str(self.device), params=model.num_params(),
                         shards=self.shard_ids, train_bytes=len(self.corpus.train), maddrs=self.status.maddrs, model=self.fingerprint,
                         mode="diloco", inner_steps=self.cfg.diloco.inner_steps, compression=self.cfg.diloco.compression)
            self._emit(stage="waiting-for-peers")
            models.wait_for_peers(dht, self.swarm.run_id, self.fingerprint, "start", self.swarm.expected_peers,
                                  self.swarm.peer_wait_timeout)
            self._train_rounds(dht, averager, agreement, pool, model, inner, val, PeerId(peer), first_round)
        finally:
            self._emit(stage="stopping")
            pool.shutdown(wait=False, cancel_futures=True)
            if averager is not None:
                averager.shutdown()
            dht.shutdown()
            self._emit(stage="stopped")

    def _load_resume(self, model: GPT, inner: torch.optim.Optimizer) -> int:
        state = self._resume.get("diloco") if self._resume else None
        if state is None:
            raise ConfigError(f"checkpoint {self.cfg.checkpoint_path} was written in sync mode; "
                              "use another --checkpoint or --fresh for a DiLoCo run")
        model.load_state_dict(self._resume["model"])
        inner.load_state_dict(state["inner"])
        self.shared = OuterState(tuple(state["shared"]), tuple(state["momentum"]), int(state["outer_steps"]))
        log.info("resumed from %s at round %d", self.cfg.checkpoint_path, int(state["round"]))
        return int(state["round"])

    # -- the rounds ------------------------------------------------------------------------------

    def _train_rounds(self, dht: Any, averager: PseudoGradientAverager, agreement: RoundAgreement | None,
                      pool: ThreadPoolExecutor, model: GPT, inner: torch.optim.Optimizer, val: list, peer: PeerId,
                      first_round: int) -> None:
        cfg = self.cfg
        self._emit(stage="training", epoch=first_round)
        self.clock = Clock()
        pending: SentRound | None = None
        self.next_round = first_round
        self.skip_rounds = self.rounds_skipped = 0
        rnd = first_round - 1
        while rnd + 1 + self.skip_rounds < cfg.max_epochs:
            rnd, self.rounds_skipped = rnd + 1 + self.skip_rounds, self.rounds_skipped + self.skip_rounds
            self.skip_rounds = 0
            if self._stop_requested:
                break
            self.next_round = rnd + 1
            losses, started = [], time.monotonic()
            for h in range(cfg.diloco.inner_steps):
                lr = cfg.lr * inner_lr_factor(rnd * cfg.diloco.inner_steps + h, cfg.diloco.inner_warmup_steps)
                losses.append(self._inner_step(model, inner, lr, peer, rnd, h))
                if pending is not None and pending.future.done():
                    self._apply(pending, model)
                    pending = None
                if self._stop_requested:
                    break
            if self._stop_requested:  # a stop mid-round sends nothing: the others' round goes on without this peer
                self.next_round = rnd  # a resumed peer trains this round again (its steps so far are in the model)
                break
            if pending is not None:  # the previous round is still averaging: wait for it before sending the next
                self._finish_round(pending, model)
            pending = self._send(rnd, averager, agreement, pool, model)
            if not cfg.diloco.overlap or rnd == cfg.max_epochs - 1:
                self._finish_round(pending, model)
                pending = None
            self._end_round(model, val, rnd, losses, started, averager)
        if pending is not None:  # stopping with a round in flight: give it a moment, not the whole timeout
            self._finish_round(pending, model, timeout=STOP_WAIT_S if self._stop_requested else None)
        self._metric("final", epoch=self.next_round, val_loss=self._evaluate_shared(model, val),
                     **self._accounting(averager))
        if not self._stop_requested:
            try:
                models.wait_for_peers(dht, self.swarm.run_id, self.fingerprint, "end", self.swarm.expected_peers,
                                      cfg.end_barrier_timeout)
            except PeersNotFound as e:
                log.warning("end barrier: %s", e)
        self._checkpoint_diloco(model, self.next_round)
        self._metric("stop", epoch=self.next_round, param_digest=param_digest(model), requested=self._stop_requested)

    def _inner_step(self, model: GPT, inner: torch.optim.Optimizer, lr: float, peer: PeerId, rnd: int, h: int) -> float:
        started = time.monotonic()
        x, y = assigned_batch(self.corpus, RunId(self.swarm.run_id), Epoch(rnd), peer, h, self.cfg.batch_size,
                              self.cfg.model.block_size)
        for group in inner.param_groups:
            group["lr"] = lr
        _, loss = model(x.to(self.device), y.to(self.device))
        assert loss is not None
        loss.backward()
        inner.step()
        inner.zero_grad(set_to_none=True)
        value = loss.item()
        self.clock.compute_s += time.monotonic() - started
        if self.faults is not None:
            self.faults.after_step(time.monotonic() - started)
        self._emit(local_steps=h + 1, loss=value)
        return value

    def _send(self, rnd: int, averager: PseudoGradientAverager, agreement: RoundAgreement | None,
              pool: ThreadPoolExecutor, model: GPT) -> SentRound:
        assert self.shared is not None
        local = [p.detach().to("cpu").clone() for p in model.parameters()]
        delta = pseudo_gradient([g.to("cpu") for g in self.shared.params], local)
        if self.cfg.diloco.error_feedback and self.cfg.diloco.compression != "none":
            delta = self._with_error_feedback(delta)
        with averager.get_tensors() as tensors:
            for tensor, d in zip(tensors, delta, strict=True):
                tensor.copy_(d)
        # Matchmaking key per round: peers still on another round (or retrying a failed one) never join this
        # round's group. (hivemind changes the bits after a group assembles, so a retry after a failed
        # all-reduce finds nobody and the round fails, rather than mixing rounds.)
        averager.set_group_bits(round_bits(rnd))
        control = averager.step(gather=rnd, wait=False, timeout=self.swarm.averaging_timeout)
        future = pool.submit(self._await_round, rnd, control, averager, agreement)
        return SentRound(rnd, local, future, shift=self.rounds_skipped)

    def _with_error_feedback(self, delta: list[torch.Tensor]) -> list[torch.Tensor]:
        """Add what compression dropped last round; keep what it drops of this one (per-tensor estimate)."""
        codec = codecs.compression(self.cfg.diloco.compression)
        if self.residual is None:
            self.residual = [torch.zeros_like(d) for d in delta]
        corrected = [d + r for d, r in zip(delta, self.residual)]
        self.residual = [c - codecs.roundtrip(c, codec) for c in corrected]
        return corrected

    def _await_round(self, rnd: int, control: Any, averager: PseudoGradientAverager,
                     agreement: RoundAgreement | None) -> RoundOutcome:
        """Background thread: the round's all-reduce, then the group's agreement on its result."""
        try:
            gathered = control.result()
        except BaseException as e:  # hivemind's contract: any failure means no result this round
            return RoundOutcome(rnd, False, f"failed: {e!r}", 1, None)
        if gathered is None:
            return RoundOutcome(rnd, False, "failed: no group", 1, None)
        group = [peer.to_base58() for peer in gathered]
        with averager.get_tensors() as tensors:
            result = [t.detach().clone() for t in tensors]
        reason = "agreed"
        if len(group) < self.swarm.expected_peers:
            reason = f"partial group ({len(group)} of {self.swarm.expected_peers})"
        elif sorted(set(gathered.values())) != [rnd]:
            reason = f"rounds differ in the group: {sorted(set(map(str, gathered.values())))}"
            return RoundOutcome(rnd, False, reason, len(group), None, behind=rounds_behind(rnd, list(gathered.values())))
        # A partial group or mixed rounds: every member saw the same gathered data and skips alike. Otherwise
        # the members compare what they hold (a member whose round broke late holds nothing, and says so).
        if agreement is not None and reason == "agreed":
            verdict = agreement.check(gathered.group_id.hex(), group, result)
            if verdict.outcome is not Outcome.APPLY:
                reason = verdict.reason
        return RoundOutcome(rnd, reason == "agreed", reason, len(group), result if reason == "agreed" else None)

    def _finish_round(self, pending: SentRound, model: GPT, timeout: float | None = None) -> None:
        started = time.monotonic()
        try:
            pending.future.result(timeout)  # without a timeout still bounded: matchmaking, all-reduce, agreement have theirs
        except FuturesTimeout:
            log.warning("stopping: round %d still averaging after %.0f s; leaving without it", pending.round, timeout)
            return
        finally:
            self.clock.wait_s += time.monotonic() - started
        self._apply(pending, model)

    @torch.no_grad()
    def _apply(self, pending: SentRound, model: GPT) -> None:
        assert self.shared is not None
        outcome: RoundOutcome = pending.future.result()
        if not outcome.applied:
            self.rounds_failed += 1
            log.warning("round %d not applied (%s); its steps ride along in the next round", outcome.round, outcome.reason)
            # A peer that missed a round's matchmaking stays a round behind for good (groups are the whole swarm,
            # keyed by round). No round applies without every peer, so the shared state is the same on all:
            # skipping ahead to the others' round count is safe. Rounds sent after this one (overlap) were behind
            # by as much, so the skip counts from what had been skipped when this one was sent.
            needed = pending.shift + outcome.behind - self.rounds_skipped - self.skip_rounds
            if outcome.behind > 0 and needed > 0:
                log.warning("this peer is %d round(s) behind the swarm: skipping ahead", needed)
                self.skip_rounds += needed
            self._metric("round", round=outcome.round, applied=False, reason=outcome.reason, group_size=outcome.group_size,
                         outer_steps=self.shared.step)
            return
        assert outcome.delta is not None
        before = self.shared
        self.shared = outer_step(before, [d.to(self.device) for d in outcome.delta], self.cfg.diloco.outer_lr, self.cfg.diloco.outer_momentum)
        for param, new_g, now_cpu_before in zip(model.parameters(), self.shared.params, pending.local_at_send):
            # keep the steps taken since the round was sent: local = new g + (local now - local at send)
            param.copy_(new_g + (param - now_cpu_before.to(param.device)))
        self.rounds_applied += 1
        log.info("round %d: averaged pseudo-gradients with %d peers; outer step %d", outcome.round,
                 outcome.group_size, self.shared.step)
        self._metric("round", round=outcome.round, applied=True, reason=outcome.reason, group_size=outcome.group_size,
                     outer_steps=self.shared.step, shared_digest=param_digest_of(self.shared.params))

    def _end_round(self, model: GPT, val: list, rnd: int, losses: Sequence[float], started: float,
                   averager: PseudoGradientAverager) -> None:
        new_round = rnd + 1
        evaluate_now = self.cfg.eval_every > 0 and new_round % self.cfg.eval_every == 0
        val_loss = self._evaluate_shared(model, val) if evaluate_now else None
        if new_round % max(1, self.cfg.checkpoint_every) == 0:
            self._checkpoint_diloco(model, new_round)
        elapsed = time.monotonic() - started
        assert self.shared is not None
        self._metric(
            "epoch", epoch=rnd, new_epoch=new_round, local_steps=len(losses), samples=len(losses) * self.cfg.batch_size,
            loss=sum(losses) / max(1, len(losses)), outer_steps=self.shared.step, val_loss=val_loss, elapsed_s=elapsed,
            shared_digest=param_digest_of(self.shared.params), param_sketch=sketch(list(self.shared.params), chunks=4),
            **self._accounting(averager),
        )
        self._emit(epoch=new_round, rounds=self.rounds_applied, samples_per_s=len(losses) * self.cfg.batch_size / max(elapsed, 1e-9),
                   bytes_sent=averager.bytes_sent, bytes_received=averager.bytes_received,
                   utilization=round(self.clock.utilization, 4),
                   **({"val_loss": val_loss} if val_loss is not None else {}))

    def _accounting(self, averager: PseudoGradientAverager) -> dict[str, Any]:
        return {"bytes_sent": averager.bytes_sent, "bytes_received": averager.bytes_received,
                "compute_s": round(self.clock.compute_s, 3), "wait_s": round(self.clock.wait_s, 3),
                "utilization": round(self.clock.utilization, 4), "rounds_applied": self.rounds_applied,
                "rounds_failed": self.rounds_failed}

    @torch.no_grad()
    def _evaluate_shared(self, model: GPT, val: list) -> float:
        """Held-out loss of the shared parameters (the model every peer agrees on), not of this peer's local one."""
        assert self.shared is not None
        local = [p.detach().clone() for p in model.parameters()]
        for param, g in zip(model.parameters(), self.shared.params):
            param.copy_(g)
        try:
            return evaluate(model, val, self.device)
        finally:
            for param, saved in zip(model.parameters(), local):
                param.copy_(saved)

    def _checkpoint_diloco(self, model: GPT, next_round: int) -> None:
        if self.cfg.checkpoint_path is None or self.shared is None or self.inner is None:
            return
        save_checkpoint(self.cfg.checkpoint_path, {
            "format": 1, "run_id": self.swarm.run_id, "model_config": asdict(self.cfg.model), "model": model.state_dict(),
            "diloco": {"round": next_round, "outer_steps": self.shared.step, "shared": list(self.shared.params),
                       "momentum": list(self.shared.momentum), "inner": self.inner.state_dict()},
        })


def rounds_behind(mine: int, group_rounds: Sequence[object]) -> int:
    """How many rounds ``mine`` trails the others of its group (``group_rounds``: every member's round, this
    peer's included) when all the others are on one round ahead of it; 0 otherwise. One member reporting some
    far-off round among others on this peer's round moves nobody."""
    others = list(group_rounds)
    if mine in others:
        others.remove(mine)
    if not others or any(not isinstance(r, int) or isinstance(r, bool) for r in others):
        return 0
    ahead = set(others)
    return ahead.pop() - mine if len(ahead) == 1 and others[0] > mine else 0


def param_digest_of(tensors: Sequence[torch.Tensor]) -> str:
    """A short hash of exact tensor bytes: equal digests mean bit-identical shared parameters."""
    import hashlib

    h = hashlib.sha256()
    for t in tensors:
        h.update(t.detach().to("cpu").contiguous().numpy().tobytes())
    return h.hexdigest()[:16]
