"""DiLoCo mode: H local steps, then the swarm averages how far everyone moved.

Each peer keeps the run's *shared* parameters ``g`` (identical on every peer)
and its own *local* model. A round is:

1. H inner steps (AdamW) on the local model, batches from ``protocol.assignment``
   with the round as the epoch (the loop's local steps);
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
utilization: the share of wall time spent in local steps rather than waiting
for the swarm.

Limits, for now: a peer that restarts resumes its own checkpoint and cannot load
the others' state, so rounds pause until every peer holds the same round again;
work receipts are not signed in this mode (the validator replays sync epochs).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FuturesTimeout
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch

from node.hooks import NO_HOOKS, Hooks
from node.records import RoundRecord
from node.swarm import codecs, models
from node.swarm.agreement import Outcome, RoundAgreement
from node.swarm.config import SwarmConfig
from node.swarm.dht import round_bits
from node.swarm.outer import OuterState, initial_state, outer_step, pseudo_gradient
from node.swarm.hivemind_ext.pseudo_averager import PseudoGradientAverager
from node.swarm.policy import rounds_behind, rounds_to_skip
from node.swarm.robust import make_aggregator
from node.train.config import TrainConfig
from node.train.evaluation import param_digest
from node.sync.base import SwarmSync
from node.train.synchronizer import EpochEnd
from protocol.errors import ConfigError

log = logging.getLogger(__name__)

STOP_WAIT_S = 3.0  # on a graceful stop, how long a round in flight may still take (SIGTERM to exit stays < 10 s)


def inner_lr_factor(step: int, warmup_steps: int) -> float:
    """Linear warm-up to 1 over ``warmup_steps``, then constant (also the DDP baseline's schedule in bench/efficiency.py).

    Constant rather than decayed: with a cosine decay DDP gains more from the annealing than DiLoCo does
    (docs/results).
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
    """Where a peer's wall time goes: local steps (compute) or waiting for the swarm."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.compute_s = 0.0
        self.wait_s = 0.0

    @property
    def utilization(self) -> float:
        return self.compute_s / max(1e-9, time.monotonic() - self.started)


class DilocoSync(SwarmSync):
    """``train.mode = "diloco"``: the loop's epochs are outer rounds (``max_epochs`` counts them)."""

    mode = "diloco"
    signs_receipts = False

    def __init__(self, swarm: SwarmConfig, train: TrainConfig, hooks: Hooks = NO_HOOKS) -> None:
        if train.keystore is not None:
            raise ConfigError("receipts.keystore is set, but DiLoCo mode does not sign work receipts yet; "
                              "use train.mode = \"sync\" for receipts")
        if not 0.0 <= train.diloco.outer_momentum < 1.0:
            raise ConfigError(f"train.outer_momentum must be in [0, 1), got {train.diloco.outer_momentum}")
        codecs.compression(train.diloco.compression)  # an unknown name fails here, before the swarm is joined
        super().__init__(swarm, train, hooks)
        self.averager: PseudoGradientAverager | None = None
        self.agreement: RoundAgreement | None = None
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="diloco-round")
        self.inner: torch.optim.Optimizer | None = None
        self.shared: OuterState | None = None
        self.residual: list[torch.Tensor] | None = None  # error feedback: what compression dropped last round
        self.clock = Clock()
        self.pending: SentRound | None = None  # the round averaging in the background
        self.round = 0  # the round this peer trains now (rounds count attempts; shared.step counts applied ones)
        self.rounds_applied = 0
        self.rounds_failed = 0
        self.skip_rounds = 0  # rounds to skip before the next, to catch up with the swarm (set by _apply)
        self.rounds_skipped = 0  # rounds skipped so far

    # -- setup ---------------------------------------------------------------------------------

    def check_resume(self, saved: dict[str, Any]) -> None:
        if saved.get("diloco") is None:
            raise ConfigError(f"checkpoint {self.cfg.checkpoint_path} was written in sync mode; "
                              "use another --checkpoint or --fresh for a DiLoCo run")

    def prepare(self, model: torch.nn.Module, resume: dict[str, Any] | None, fingerprint: str, describe: str) -> None:
        cfg, swarm = self.cfg, self.swarm
        self.fingerprint = fingerprint
        self.inner = torch.optim.AdamW(model.parameters(), lr=cfg.lr, betas=(0.9, 0.95), weight_decay=cfg.weight_decay)
        self.shared = initial_state(model.parameters())
        if resume is not None:
            state = resume["diloco"]
            self.inner.load_state_dict(state["inner"])
            device = next(model.parameters()).device
            self.shared = OuterState(tuple(state["shared"]), tuple(state["momentum"]), int(state["outer_steps"])).to(device)
            self.round = int(state["round"])
            log.info("resumed from %s at round %d", cfg.checkpoint_path, self.round)
        # everything averaged is keyed by the run and the model: peers of other models never meet (node.swarm.models)
        key = models.join(self.dht, swarm.run_id, fingerprint, describe)
        self.averager = PseudoGradientAverager(
            [torch.zeros_like(p, device="cpu") for p in model.parameters()], self.dht,
            aggregator=make_aggregator(swarm.aggregator, tau=swarm.clip_tau, iterations=swarm.clip_iterations,
                                       trim_fraction=swarm.trim_fraction),
            compression=cfg.diloco.compression, prefix=f"{key}_diloco", start=True,
            target_group_size=swarm.expected_peers, min_group_size=swarm.expected_peers,
            initial_group_bits=round_bits(self.round),
            min_matchmaking_time=swarm.matchmaking_time, request_timeout=min(3.0, 0.6 * swarm.matchmaking_time),
            # A round stuck on a member that fell out of the group ends at these limits; with overlap the
            # others keep computing meanwhile, so they only cost time when longer than a round of inner steps.
            allreduce_timeout=swarm.averaging_timeout, sender_timeout=swarm.averaging_timeout / 2,
            reducer_timeout=swarm.averaging_timeout, allow_state_sharing=False)
        self.agreement = RoundAgreement(self.dht, key, swarm.agreement_timeout) if swarm.agreement_timeout > 0 else None

    @property
    def epoch(self) -> int:
        return self.round

    def start_fields(self) -> dict[str, Any]:
        return {"mode": "diloco", "inner_steps": self.cfg.diloco.inner_steps, "compression": self.cfg.diloco.compression}

    def warm_up(self, first_step: Any) -> int:
        self.clock = Clock()  # utilization counts from the first round on, not from the start barrier
        return 0

    # -- the rounds ----------------------------------------------------------------------------

    def step(self, model: torch.nn.Module, step: int, compute_s: float) -> EpochEnd | None:
        cfg, inner = self.cfg, self.inner
        assert inner is not None
        started = time.monotonic()
        lr = cfg.lr * inner_lr_factor(self.round * cfg.diloco.inner_steps + step, cfg.diloco.inner_warmup_steps)
        for group in inner.param_groups:
            group["lr"] = lr
        inner.step()
        inner.zero_grad(set_to_none=True)
        self.clock.compute_s += compute_s + time.monotonic() - started
        if self.pending is not None and self.pending.future.done():
            self._apply(self.pending, model)
            self.pending = None
        if step + 1 < cfg.diloco.inner_steps:
            return None
        return self._end_round(model)

    def _end_round(self, model: torch.nn.Module) -> EpochEnd:
        rnd = self.round
        if self.pending is not None:  # the previous round is still averaging: wait for it before sending the next
            self._finish_round(self.pending, model)
        self.pending = self._send(rnd, model)
        if not self.cfg.diloco.overlap or rnd == self.cfg.max_epochs - 1:
            self._finish_round(self.pending, model)
            self.pending = None
        assert self.shared is not None
        end = EpochEnd(
            epoch=rnd, new_epoch=rnd + 1,
            counted=False,  # rounds earn no receipts yet (see the module's limits)
            rounds=self.rounds_applied,
            fields=dict(outer_steps=self.shared.step, shared_digest=param_digest(self.shared.params),
                        **self.final_fields()),
            status=self._traffic_status(),
        )
        self.round = rnd + 1 + self.skip_rounds
        self.rounds_skipped += self.skip_rounds
        self.skip_rounds = 0
        return end

    def _send(self, rnd: int, model: torch.nn.Module) -> SentRound:
        assert self.shared is not None and self.averager is not None
        averager = self.averager
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
        future = self.pool.submit(self._await_round, rnd, control)
        return SentRound(rnd, local, future, shift=self.rounds_skipped)

    def _with_error_feedback(self, delta: list[torch.Tensor]) -> list[torch.Tensor]:
        """Add what compression dropped last round; keep what it drops of this one (per-tensor estimate)."""
        codec = codecs.compression(self.cfg.diloco.compression)
        if self.residual is None:
            self.residual = [torch.zeros_like(d) for d in delta]
        corrected = [d + r for d, r in zip(delta, self.residual)]
        self.residual = [c - codecs.roundtrip(c, codec) for c in corrected]
        return corrected

    def _await_round(self, rnd: int, control: Any) -> RoundOutcome:
        """Background thread: the round's all-reduce, then the group's agreement on its result."""
        assert self.averager is not None
        try:
            gathered = control.result()
        except BaseException as e:  # hivemind's contract: any failure means no result this round
            return RoundOutcome(rnd, False, f"failed: {e!r}", 1, None)
        if gathered is None:
            return RoundOutcome(rnd, False, "failed: no group", 1, None)
        group = [peer.to_base58() for peer in gathered]
        with self.averager.get_tensors() as tensors:
            result = [t.detach().clone() for t in tensors]
        reason = "agreed"
        if len(group) < self.swarm.expected_peers:
            reason = f"partial group ({len(group)} of {self.swarm.expected_peers})"
        elif sorted(set(gathered.values())) != [rnd]:
            reason = f"rounds differ in the group: {sorted(set(map(str, gathered.values())))}"
            return RoundOutcome(rnd, False, reason, len(group), None, behind=rounds_behind(rnd, list(gathered.values())))
        # A partial group or mixed rounds: every member saw the same gathered data and skips alike. Otherwise
        # the members compare what they hold (a member whose round broke late holds nothing, and says so).
        if self.agreement is not None and reason == "agreed":
            verdict = self.agreement.check(gathered.group_id.hex(), group, result)
            if verdict.outcome is not Outcome.APPLY:
                reason = verdict.reason
        return RoundOutcome(rnd, reason == "agreed", reason, len(group), result if reason == "agreed" else None)

    def _finish_round(self, pending: SentRound, model: torch.nn.Module, timeout: float | None = None) -> None:
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
    def _apply(self, pending: SentRound, model: torch.nn.Module) -> None:
        assert self.shared is not None and self.ctx is not None
        outcome: RoundOutcome = pending.future.result()
        if not outcome.applied:
            self.rounds_failed += 1
            log.warning("round %d not applied (%s); its steps ride along in the next round", outcome.round, outcome.reason)
            # A peer that missed a round's matchmaking stays a round behind for good (groups are the whole swarm,
            # keyed by round). No round applies without every peer, so the shared state is the same on all:
            # skipping ahead to the others' round count is safe. Rounds sent after this one (overlap) were behind
            # by as much, so the skip counts from what had been skipped when this one was sent.
            needed = rounds_to_skip(outcome.behind, pending.shift, self.rounds_skipped, self.skip_rounds)
            if needed > 0:
                log.warning("this peer is %d round(s) behind the swarm: skipping ahead", needed)
                self.skip_rounds += needed
            self.ctx.record(RoundRecord, round=outcome.round, applied=False, reason=outcome.reason,
                            group_size=outcome.group_size, outer_steps=self.shared.step)
            return
        assert outcome.delta is not None
        device = next(model.parameters()).device
        self.shared = outer_step(self.shared, [d.to(device) for d in outcome.delta], self.cfg.diloco.outer_lr,
                                 self.cfg.diloco.outer_momentum)
        for param, new_g, local_at_send in zip(model.parameters(), self.shared.params, pending.local_at_send):
            # keep the steps taken since the round was sent: local = new g + (local now - local at send)
            param.copy_(new_g + (param - local_at_send.to(param.device)))
        self.rounds_applied += 1
        log.info("round %d: averaged pseudo-gradients with %d peers; outer step %d", outcome.round,
                 outcome.group_size, self.shared.step)
        self.ctx.record(RoundRecord, round=outcome.round, applied=True, reason=outcome.reason,
                        group_size=outcome.group_size, outer_steps=self.shared.step,
                        shared_digest=param_digest(self.shared.params))

    # -- what the loop reports -------------------------------------------------------------------

    def _traffic_status(self) -> dict[str, Any]:
        assert self.averager is not None
        return {"bytes_sent": self.averager.bytes_sent, "bytes_received": self.averager.bytes_received,
                "utilization": round(self.clock.utilization, 4)}

    def final_fields(self) -> dict[str, Any]:
        if self.averager is None:
            return {}
        return {"bytes_sent": self.averager.bytes_sent, "bytes_received": self.averager.bytes_received,
                "compute_s": round(self.clock.compute_s, 3), "wait_s": round(self.clock.wait_s, 3),
                "utilization": round(self.clock.utilization, 4), "rounds_applied": self.rounds_applied,
                "rounds_failed": self.rounds_failed}

    @contextmanager
    def shared_view(self, model: torch.nn.Module) -> Iterator[None]:
        """The shared parameters (the model every peer agrees on), not this peer's local ones."""
        assert self.shared is not None
        with torch.no_grad():
            local = [p.detach().clone() for p in model.parameters()]
            for param, g in zip(model.parameters(), self.shared.params):
                param.copy_(g)
        try:
            yield
        finally:
            with torch.no_grad():
                for param, saved in zip(model.parameters(), local):
                    param.copy_(saved)

    def shared_tensors(self, model: torch.nn.Module) -> list[torch.Tensor]:
        assert self.shared is not None
        return list(self.shared.params)

    def checkpoint_state(self) -> dict[str, Any]:
        if self.shared is None or self.inner is None:
            return {}
        return {"diloco": {"round": self.round, "outer_steps": self.shared.step, "shared": list(self.shared.params),
                           "momentum": list(self.shared.momentum), "inner": self.inner.state_dict()}}

    def finish(self, model: torch.nn.Module, stopped: bool) -> None:
        if self.pending is not None:  # stopping with a round in flight: give it a moment, not the whole timeout
            self._finish_round(self.pending, model, timeout=STOP_WAIT_S if stopped else None)
            self.pending = None

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)
        try:
            if self.averager is not None:
                self.averager.shutdown()
        finally:
            if self.dht is not None:
                self.dht.shutdown()
