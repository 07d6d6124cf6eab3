"""Collaborative optimization: hivemind.Optimizer, configured and instrumented.

``CollaborativeOptimizer`` changes four things in hivemind's optimizer:

- it records how each round went (group size, whether gradients were really
  averaged) and, with the agreement check, applies a round only when the whole
  group holds the same complete result (node.swarm.agreement);
- gradient rounds meet under a key of their epoch (node.swarm.dht.round_bits):
  hivemind's matchmaking key is the same for every round, so a peer that
  missed its epoch's group joined the next epoch's with gradients of older
  parameters (seen here: a straggler out of step with the group after every
  round it missed). A peer still looking for its epoch's group when the swarm
  has moved past that epoch leaves the matchmaking and loads the state;
- a peer that is behind the swarm loads the swarm's state instead of averaging:
  hivemind lets a peer one epoch behind run the swarm's *current* round with
  its older parameters and then skip ahead, so it keeps other parameters
  than everyone else for good (seen here: a peer that missed the first round
  stayed one epoch behind and off by one update for a whole run);
- loading state is exact: hivemind, after downloading a state one epoch older
  than the swarm's, relabels it as the swarm's epoch (same symptom);
- a slow peer does not hold up a round: hivemind puts a peer in a round's group
  when the round is a few seconds away, and the round then waits for that
  peer's next ``step()`` call, up to a full local step of a straggler (past 4 s
  the others drop it and the round is lost). A straggler (much slower than the
  others, node.swarm.pace) in the round's matchmaking joins the round with
  what it accumulated so far once the round is due within three of its
  steps, so the group does not wait for its compute. Peers of the swarm's
  usual pace keep hivemind's rule.
"""

from __future__ import annotations

import logging
import math
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import hivemind
import torch
from hivemind.averaging.control import AveragingStage
from hivemind.utils import get_dht_time

from node.swarm.agreement import Outcome, Record, RoundAgreement, Verdict, sketch
from node.swarm.config import SwarmConfig
from node.swarm.dht import round_bits
from node.swarm.pace import PaceTracker
from node.swarm.robust import make_aggregator
from node.swarm.robust_allreduce import GradientTransform, RobustGradientAverager, RoundGroup, WorkerMomentum, chain
from node.swarm.state_averager import LoadSafeStateAverager

log = logging.getLogger(__name__)

_LOAD_ATTEMPTS = 3  # downloads per load_state_from_peers while the state got is older than the swarm's epoch
_LOAD_RETRY_S = 1.0  # pause between them: the peers still finishing the last round move on meanwhile
_LAST_SENT = object()  # _dump_round: what the gradient averager sent last
_STEP_SAMPLES = 3  # step intervals needed before a peer judges its own pace (median of up to 5)
_TAG_ALONG_EPOCH_S = 3.0  # after tagging along, how long to wait for the members' records (their epoch)
_LATE_STEPS = 3  # a straggler joins a round now when the round is due within this many of its (median) steps
_GROUP_POLL_S = 0.5
_CANCEL_WAIT_S = 5.0  # how long a cancelled round's matchmaking may take to stop before this peer moves on  # while waiting for a round's group: how often to check that the swarm is still on this epoch
_NEVER = 2**62  # average_state_every for an epoch change without a parameters' round (no epoch is a multiple)


class RoundMissed(Exception):
    """No group took this peer in for its epoch's round, and the swarm has moved past that epoch."""


@dataclass(frozen=True)
class RoundResult:
    epoch: int  # the collaborative epoch whose gradients this round averaged
    group_size: int  # peers in the all-reduce group (1 when the peer proceeded alone)
    averaged: bool  # False when hivemind fell back to this peer's local gradients
    # Agreement check after the round (node.swarm.agreement): "agreed", or why the round was discarded
    # ("missing", "no-majority", "minority", "failed-here", "incomplete-here", ...); "behind" when the swarm
    # had finished this epoch's round already and the peer loaded the state instead; "" when no check ran.
    agreement: str = ""
    round_id: str = ""  # the all-reduce group's id (hex), the same on every member; "" when none ran


class CollaborativeOptimizer(hivemind.Optimizer):
    """hivemind.Optimizer that remembers the outcome of its last gradient-averaging round."""

    # hivemind's attributes this class reads and sets (declared for the type checker)
    average_state_every: int
    tracker: PaceTracker
    scheduled_grads: Any
    scheduled_state: Any

    def __init__(self, *args: Any, agreement_timeout: float | None = None, round_dump_dir: Path | None = None,
                 **kwargs: Any) -> None:
        self.last_round: RoundResult | None = None
        self.disagreements = 0  # rounds whose group did not agree on the result (discarded or repaired)
        self.round_dump_dir = round_dump_dir  # tests only: what was sent and received each round, as .pt files
        # load the swarm's state after this step, of at least this epoch (None: any), and why: this peer held a
        # minority result or other parameters than the group's, or the swarm averaged without it
        self._needs_state: tuple[int | None, str] | None = None
        self._step_returned: float | None = None  # when step() last returned (time.monotonic())
        # seconds between step() calls, not counting step() itself (the compute): median of the latest few; 0 unknown
        self.step_interval = 0.0
        self._intervals: deque[float] = deque(maxlen=2 * _STEP_SAMPLES - 1)
        self._off_pace_s = 0.0  # time since step() last returned that the caller spent on other work (off_pace)
        self._next_round_epoch: int | None = None  # after tagging along: the epoch that round's members move on to
        super().__init__(*args, **kwargs)
        self._average_state_every = self.average_state_every  # as configured (set to _NEVER for one epoch change)
        self.agreement = RoundAgreement(self.dht, self.run_id, agreement_timeout) if agreement_timeout else None
        self._key_rounds_to_epoch()

    def step(self, *args: Any, **kwargs: Any) -> Any:
        if self._step_returned is not None:
            self._intervals.append(max(0.0, time.monotonic() - self._step_returned - self._off_pace_s))
            # the median: one long pause between steps (a checkpoint, an evaluation, the start barrier) is no pace
            ordered = sorted(self._intervals)
            self.step_interval = ordered[len(ordered) // 2] if len(ordered) >= _STEP_SAMPLES else 0.0
        round_before, epoch_before = self.last_round, self.local_epoch
        loss = super().step(*args, **kwargs)
        if self.local_epoch == epoch_before and self.last_round is round_before and self._joins_round_now():
            log.info("epoch %d: a straggler in the matchmaking (steps of %.1f s; the swarm averages in %.1f s): "
                     "averaging now", self.local_epoch, self.step_interval,
                     self.tracker.estimated_next_update_time - get_dht_time())
            self._update_global_epoch(kwargs.get("grad_scaler"))
        loaded = self._needs_state is not None
        if self._needs_state is not None:  # after the step, so hivemind's epoch bookkeeping is complete
            (min_epoch, why), self._needs_state = self._needs_state, None
            log.warning("epoch %d: %s; loading state", self.local_epoch, why)
            self.load_state_from_peers(min_epoch=min_epoch)
        if self.last_round is not round_before:
            self._dump_parameters(loaded)
        self._step_returned, self._off_pace_s = time.monotonic(), 0.0
        return loss

    @contextmanager
    def off_pace(self) -> Iterator[None]:
        """Work between steps that is not training (an evaluation, a checkpoint, a receipt at an epoch's end):
        its time does not count as this peer's step time, so such work does not make it a straggler (seen in a
        scenario: a peer that evaluated every epoch judged itself one)."""
        started = time.monotonic()
        try:
            yield
        finally:
            self._off_pace_s += time.monotonic() - started

    def _joins_round_now(self) -> bool:
        """This peer is a straggler in the matchmaking for the coming round, has gradients to give, and its next
        steps could come after the swarm is due to average: it joins the round with what it has now. A group
        waits for each member's call until the others drop that member and the round is lost for all, and a
        straggler's steps vary (a 10x slow peer on a busy machine took 6 s for a step that usually took 1, seen
        here), so it allows for ``_LATE_STEPS`` of its steps, not one."""
        control = self.scheduled_grads
        if self.auxiliary or not self.use_gradient_averaging or self.step_interval <= 0:
            return False
        if control is None or control.triggered or control.done() or self.grad_averager.local_samples_accumulated == 0:
            return False
        late = get_dht_time() + _LATE_STEPS * self.step_interval > self.tracker.estimated_next_update_time
        return late and self._is_straggler()

    def _is_straggler(self) -> bool:
        """Much slower than the other peers (node.swarm.pace), by this peer's median step time."""
        rate = (self.batch_size_per_step or 0) / self.step_interval if self.step_interval > 0 else 0.0
        return self.tracker.is_straggler(rate)

    def _maybe_schedule_gradient_averaging(self) -> None:
        # hivemind joins the matchmaking when the swarm is due to average within matchmaking_time; a straggler
        # whose steps take longer joins as early as one step ahead (at the swarm's due time, so the group still forms
        # when the others are ready), or its next chance would come too late.
        eta = self.tracker.estimated_next_update_time - get_dht_time()
        if eta <= self.matchmaking_time or eta > self.step_interval or not self._is_straggler():
            super()._maybe_schedule_gradient_averaging()
            return
        if self.scheduled_grads is None or self.scheduled_grads.triggered or self.scheduled_grads.done():
            log.debug("pre-scheduling gradient averaging in %.2f s (steps take %.2f s)", eta, self.step_interval)
            self.scheduled_grads = self.grad_averager.schedule_step(
                scheduled_time=get_dht_time() + eta, timeout=self.averaging_timeout)

    def _make_progress_tracker(self, target_batch_size: int, **kwargs: Any) -> PaceTracker:
        return PaceTracker(dht=self.dht, prefix=self.run_id, target_batch_size=target_batch_size,
                           client_mode=self.client_mode, status_loglevel=self.status_loglevel, start=True, **kwargs)

    def _make_state_averager(self, **kwargs: Any) -> Any:
        # A background state-averaging round ends by copying its result over the parameters. If it lands
        # after the next optimizer step, that step is silently undone (seen here: with a 3M-parameter model
        # the held-out loss stalled near 3.2 nats/byte). The delta rule adds (average - snapshot) instead,
        # which keeps every local update and still repairs drift between peers.
        kwargs["delta_rule_averaging"] = True
        # hivemind's construction, with the averager that lets a peer load state without waiting for its
        # background round (node.swarm.state_averager)
        return LoadSafeStateAverager(
            dht=self.dht, prefix=f"{self.run_id}_state_averager", min_matchmaking_time=self.matchmaking_time,
            allreduce_timeout=self.allreduce_timeout, shutdown_timeout=self.shutdown_timeout,
            offload_optimizer=self.offload_optimizer, custom_gradients=self.offload_optimizer,
            status_loglevel=self.status_loglevel, next_chunk_timeout=self.next_chunk_timeout,
            client_mode=self.client_mode, auxiliary=self.auxiliary, start=True, **kwargs,
        )

    def _update_global_epoch(self, grad_scaler: Any) -> None:
        # Until the averaging below proves otherwise, this epoch's update used local gradients only
        # (hivemind skips the averaging call entirely when it sees no other peer).
        self.last_round = RoundResult(epoch=self.local_epoch, group_size=1, averaged=False)
        if self.tracker.global_epoch > self.local_epoch:
            # The swarm already finished this epoch's round (a member of that round cannot see the next epoch
            # before it joined the round: the others publish it only after the round and its agreement). hivemind
            # would average with whatever round runs now, using parameters an update older than everyone's, and
            # then jump to the swarm's epoch: identical epochs, different parameters. Load the state instead.
            log.info("epoch %d: the swarm is at epoch %d already; loading its state instead of averaging",
                     self.local_epoch, self.tracker.global_epoch)
            self.last_round = RoundResult(epoch=self.local_epoch, group_size=1, averaged=False, agreement="behind")
            self.load_state_from_peers()
            return
        try:
            super()._update_global_epoch(grad_scaler)
        finally:
            self.average_state_every = self._average_state_every
            self._key_rounds_to_epoch()

    def _key_rounds_to_epoch(self) -> None:
        """Look for the next gradient round's group under this peer's epoch only."""
        if self.use_gradient_averaging and getattr(self, "grad_averager", None) is not None:
            self.grad_averager.set_group_bits(round_bits(self.local_epoch))

    def _dump_parameters(self, loaded: bool) -> None:
        """Tests: the parameters this peer starts its new epoch with (after loading state, when the round told it
        to), named by the round that ended the last one."""
        if self.round_dump_dir is None or self.last_round is None:
            return
        self.round_dump_dir.mkdir(parents=True, exist_ok=True)
        name = f"params-{self.local_epoch:05d}-{self.last_round.round_id or 'none'}-{time.time():.3f}.pt"
        params = [p.detach().clone() for p in self.state_averager.main_parameters]
        torch.save({"epoch": self.local_epoch, "round": self.last_round.round_id, "agreement": self.last_round.agreement,
                    "loaded_state": loaded, "params": params}, self.round_dump_dir / (name + ".part"))
        (self.round_dump_dir / (name + ".part")).replace(self.round_dump_dir / name)

    def load_state_from_peers(self, min_epoch: int | None = None, **kwargs: Any) -> None:
        """hivemind's, made exact: download the newest state and take its epoch as it is.

        hivemind sets the local epoch to the swarm's when the state it got is one epoch older, so the peer
        claims an epoch whose update it never applied. Here a state older than the swarm's epoch (or than
        ``min_epoch``) is downloaded again (peers still finishing the last round serve the new one a moment
        later), a few times; a peer still behind after that finds out again at its next epoch update or
        round. The gradient averager's buffers are not downloaded (hivemind fetches and then ignores them).
        """
        self._leave_scheduled_rounds()
        if self._next_round_epoch is not None:  # it tagged along: the state must be that round's outcome
            min_epoch, self._next_round_epoch = max(min_epoch or 0, self._next_round_epoch), None
        for attempt in range(_LOAD_ATTEMPTS):
            # hivemind waits here for the background parameters' round; LoadSafeStateAverager drops its result
            with self.tracker.pause_updates():
                self._download_state(**kwargs)
                self.tracker.report_local_progress(local_epoch=self.local_epoch, samples_accumulated=0)
                if not self.client_mode:
                    self.state_averager.state_sharing_priority = self.local_epoch
                if self.use_gradient_averaging:
                    self.grad_averager.reset_accumulated_grads_()
                    if not self.client_mode:
                        self.grad_averager.state_sharing_priority = self.local_epoch
            wanted = max(self.tracker.global_epoch, min_epoch or 0)
            if self.local_epoch >= wanted or attempt == _LOAD_ATTEMPTS - 1:
                break
            log.info("loaded the state of epoch %d, the swarm is at %d: loading again", self.local_epoch, wanted)
            time.sleep(_LOAD_RETRY_S)
        self._key_rounds_to_epoch()
        self._join_matchmaking_now()

    def _join_matchmaking_now(self) -> None:
        """After a load: join this epoch's matchmaking at once, for the time the swarm is due to average.

        hivemind joins at the first step within ``matchmaking_time`` of that time. A peer that loads the state
        mid-epoch (it missed a round) often finds the others in the matchmaking already; by its next step their
        group had formed, it missed that round too, loaded again, and so on (seen in the demo: 7 rounds in a row
        after one evaluation made the first peer late). In the matchmaking now, it joins their group."""
        if self.auxiliary or not self.use_gradient_averaging or self.scheduled_grads is not None:
            return
        try:
            self.tracker.refresh()
        except Exception as e:  # the DHT shutting down, say: hivemind's rule joins at a later step
            log.debug("could not read the swarm's progress after the load (%r)", e)
            return
        due = self.tracker.estimated_next_update_time
        if self.tracker.global_epoch != self.local_epoch or not math.isfinite(due):
            return  # still behind (the next step loads again), or no pace known yet: hivemind's rule decides
        # the round's deadline is counted from now: keep the due time well inside it
        due = min(due, get_dht_time() + self.averaging_timeout / 2)
        log.debug("epoch %d: joining the matchmaking after the load (the swarm averages in %.1f s)",
                  self.local_epoch, due - get_dht_time())
        self.scheduled_grads = self.grad_averager.schedule_step(scheduled_time=due, timeout=self.averaging_timeout)

    def _leave_scheduled_rounds(self) -> None:
        """Before loading state, leave the rounds this peer joined the matchmaking for as hivemind does: a
        gradient round with weight 0 (cancelling it can cross the group's forming; seen here: "Can't
        set_result to a future that is CANCELLED" after the group ran with this peer), the parameters' round
        cancelled (hivemind's ``_update_global_epoch`` does so with one it will not use; waiting for it
        would make the load land after the swarm's next round). A peer behind the swarm that is still looking for
        its epoch's group cancels instead: no group of that epoch will form (the others are past it), and tagging
        along would wait for the matchmaking's deadline."""
        control = self.scheduled_grads
        if control is not None and not control.done():
            behind = self.tracker.global_epoch > self.local_epoch
            if behind and not control.triggered and control.stage is AveragingStage.LOOKING_FOR_GROUP:
                self._cancel_matchmaking(control)
            else:
                self._tag_along_with_zero_weight(control)
        if self.scheduled_state is not None and not self.scheduled_state.done():
            self.scheduled_state.cancel()
        self.scheduled_grads = self.scheduled_state = None

    def _download_state(self, **kwargs: Any) -> None:
        deadline = time.monotonic() + self.load_state_timeout
        while True:
            try:
                self.state_averager.load_state_from_peers(timeout=self.load_state_timeout, **kwargs)
                return
            except (KeyboardInterrupt, SystemExit):
                raise
            except BaseException as e:  # hivemind retries forever; here until load_state_timeout
                if time.monotonic() >= deadline:
                    log.warning("could not load the state from peers in %.0f s (%r); training on", self.load_state_timeout, e)
                    return
                log.warning("loading the state from peers failed (%r); retrying", e)
                time.sleep(_LOAD_RETRY_S)  # an error that comes back at once (a DHT shutting down) must not spin

    def _tag_along_with_zero_weight(self, control: Any) -> None:
        # hivemind joins a round it had scheduled with weight 0 (its gradients do not count) before loading
        # state. The others' agreement waits for a record from every member, this one included: publish it.
        already_done, triggered = control.done(), control.triggered  # triggered: it sent its gradients, weight > 0
        super()._tag_along_with_zero_weight(control)
        if already_done or self.agreement is None or not control.done() or control.cancelled():
            return
        if control.exception() is not None or not isinstance(control.result(), RoundGroup):
            return  # a failed round (the others see this peer missing) or a state-averaging round
        gathered = control.result()
        group = [peer.to_base58() for peer in gathered]
        with self.grad_averager.get_tensors() as averaged:
            result = [t.clone() for t in averaged]
        # no parameters in it: this peer is about to replace its own, they say nothing about the group's
        self.agreement.publish(gathered.group_id.hex(), group,
                               Record(sketch(result), complete=gathered.complete) if gathered.reduced_all else None)
        self._dump_round(f"round-{self.local_epoch:05d}-{time.time():.3f}.pt", self.local_epoch, gathered.group_id.hex(),
                         group, result, Verdict(Outcome.DISCARD, "tag-along"), sent=_LAST_SENT if triggered else None)
        epoch = self.agreement.member_epoch(gathered.group_id.hex(), group, timeout=_TAG_ALONG_EPOCH_S)
        if epoch is not None:
            self._next_round_epoch = epoch + 1

    def _average_gradients_and_load_into_optimizer(self, maybe_step_control: Any) -> None:
        # Same flow as hivemind's, plus recording the group and, when enabled, checking that the whole
        # group holds the same result before using it (hivemind can report success with a partial average).
        epoch = self.local_epoch
        if maybe_step_control is None:
            log.info("epoch %d: no other peers; proceeding with local gradients", epoch)
            self._load_local_gradients_into_optimizer()
            return
        group: list[str] | None = None
        round_id = ""  # the all-reduce group's id: names this round in the agreement records and dumps
        complete, reduced_all = True, True
        failed: tuple[str, ...] = ()
        try:
            gathered = self._await_group(maybe_step_control, epoch)
            group = [peer.to_base58() for peer in gathered]
            if isinstance(gathered, RoundGroup):
                round_id, complete, reduced_all, failed = (gathered.group_id.hex(), gathered.complete,
                                                           gathered.reduced_all, gathered.failed)
        except RoundMissed:
            self._skip_missed_round(epoch)
            return
        except BaseException as e:  # hivemind's contract: any failure falls back to local gradients
            if isinstance(e, KeyboardInterrupt):
                raise
            log.warning("epoch %d: averaging gradients failed (%r)", epoch, e)
        if self.agreement is None:
            self._use_round_without_check(epoch, group)
            return
        with self.grad_averager.get_tensors() as averaged:
            result = [t.clone() for t in averaged] if group is not None else None
        dump_name = f"round-{epoch:05d}-{time.time():.3f}.pt"
        self._dump_round(dump_name, epoch, round_id, group, result, None)  # before publishing: a peer killed
        verdict = self.agreement.check(round_id, group or [], result, complete, reduced_all,  # right after still
                                       epoch=epoch, params=self.state_averager.main_parameters)  # leaves what it sent
        self._dump_round(dump_name, epoch, round_id, group, result, verdict)
        if not (complete and reduced_all):
            log.warning("epoch %d: parts of the round failed here (%s; peers: %s)", epoch,
                        "a partition missing" if not complete else "a sender dropped", list(failed))
        if verdict.agreed:
            log.info("epoch %d: averaged gradients with %d peers; the group agrees", epoch, len(group or []))
            self._load_averaged_gradients_into_optimizer_()
        else:
            # Everyone who sees the round broken applies the same empty update, so parameters stay identical.
            self.disagreements += 1
            log.warning("epoch %d: discarding the round (%s; missing %s, differing %s)", epoch, verdict.reason,
                        list(verdict.missing), list(verdict.disagreeing))
            with torch.no_grad(), self.grad_averager.get_tensors() as averaged:
                for t in averaged:
                    t.zero_()
            self._load_averaged_gradients_into_optimizer_()
            if verdict.outcome is Outcome.LOAD_STATE:
                # A majority applied this round (minority, incomplete-here): their state must include it. Loading
                # whatever came first got a peer still before its step (this one decides first, having no part to
                # wait for): the state of this very epoch, and the peer was out of step at the next round too.
                min_epoch = verdict.load_epoch if verdict.load_epoch is not None else epoch + 1
                self._needs_state = (min_epoch, "this peer's result or parameters differed from the majority's")
                # No parameters' round at this epoch change (hivemind decides on it right after this call): this
                # peer replaces its parameters right after the step, and loading waits for a round it is in (~5 s:
                # the load then lands after the swarm's next round, and the peer is behind again, round after round).
                self.average_state_every = _NEVER
        self.last_round = RoundResult(epoch=epoch, group_size=len(group or []) or 1, averaged=verdict.agreed,
                                      agreement=verdict.reason, round_id=round_id)

    def _await_group(self, control: Any, epoch: int) -> Any:
        """The round's outcome (its group), as hivemind's ``control.result(averaging_timeout)``; raises RoundMissed
        when no group has taken this peer in by the round's scheduled time and the swarm is past this epoch
        already (its progress records, read from the DHT: the tracker does not fetch while this peer is in a
        round)."""
        deadline = time.monotonic() + self.averaging_timeout
        while True:
            try:
                return control.result(timeout=max(0.0, min(_GROUP_POLL_S, deadline - time.monotonic())))
            except TimeoutError:
                if time.monotonic() >= deadline:
                    raise
            # only once the group should have formed: every waiting peer polling the DHT loads it (2 cores here)
            if control.stage is AveragingStage.LOOKING_FOR_GROUP and get_dht_time() > control.scheduled_time:
                swarm_epoch = self.tracker.fetch_swarm_epoch()
                if swarm_epoch is not None and swarm_epoch > epoch and self._cancel_matchmaking(control):
                    raise RoundMissed(f"the swarm is at epoch {swarm_epoch}")

    @staticmethod
    def _cancel_matchmaking(control: Any) -> bool:
        """Cancel a round still in its matchmaking, and wait (a few seconds at most) until the averager has let
        it go: the averager looks for groups under its *current* key, so a cancelled search still running when
        this peer moves on to the next epoch's key could join that epoch's group as a member this peer's
        optimizer knows nothing of (seen here: the others waited for its agreement record and lost the round)."""
        if not control.cancel():
            return False
        deadline = time.monotonic() + _CANCEL_WAIT_S
        while control.stage is not AveragingStage.FINISHED and time.monotonic() < deadline:
            time.sleep(0.05)
        if control.stage is not AveragingStage.FINISHED:
            log.warning("a cancelled averaging round is still %s after %.0f s", control.stage.name, _CANCEL_WAIT_S)
        return True

    def _skip_missed_round(self, epoch: int) -> None:
        """The swarm averaged this epoch's gradients without this peer: apply no update, and load the swarm's
        state right after the step (as after a round this peer held a minority result of)."""
        log.info("epoch %d: the swarm finished this epoch's round without this peer; loading its state", epoch)
        with torch.no_grad(), self.grad_averager.get_tensors() as averaged:
            for t in averaged:
                t.zero_()
        self._load_averaged_gradients_into_optimizer_()
        self._needs_state = (epoch + 1, "the swarm averaged without this peer")
        self.average_state_every = _NEVER
        self.last_round = RoundResult(epoch=epoch, group_size=1, averaged=False, agreement="behind")

    def _use_round_without_check(self, epoch: int, group: list[str] | None) -> None:
        if group is None:
            log.warning("epoch %d: proceeding with local gradients", epoch)
            self.last_round = RoundResult(epoch=epoch, group_size=1, averaged=False)
            self._load_local_gradients_into_optimizer()
            return
        log.info("epoch %d: averaged gradients with %d peers", epoch, len(group))
        self._load_averaged_gradients_into_optimizer_()
        self.last_round = RoundResult(epoch=epoch, group_size=len(group), averaged=True)

    def _dump_round(self, name: str, epoch: int, round_id: str, group: list[str] | None,
                    result: list[torch.Tensor] | None, verdict: Verdict | None, sent: Any = _LAST_SENT) -> None:
        """Tests: what this peer sent (None: nothing that counts, it joined with weight 0) and got in a round,
        and the verdict."""
        if self.round_dump_dir is None:
            return
        self.round_dump_dir.mkdir(parents=True, exist_ok=True)
        # Written aside, then renamed: a reader polling the directory (or a SIGKILL mid-write) never sees half a file.
        partial_path = self.round_dump_dir / (name + ".part")
        sent = getattr(self.grad_averager, "last_sent", []) if sent is _LAST_SENT else sent
        torch.save({"epoch": epoch, "round": round_id, "peer": self.agreement.me if self.agreement else "", "group": group,
                    "sent": sent, "result": result,
                    "outcome": verdict.outcome.value if verdict else "pending", "reason": verdict.reason if verdict else ""},
                   partial_path)
        partial_path.replace(self.round_dump_dir / name)


def _mark_sending(directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"sending-{time.time():.3f}").touch()


def make_optimizer(
    dht: hivemind.DHT,
    cfg: SwarmConfig,
    params: Iterable[torch.nn.Parameter],
    optimizer: Callable[[Any], torch.optim.Optimizer],
    scheduler: Callable[[torch.optim.Optimizer], Any] | None,
    batch_size_per_step: int,
    gradient_transform: GradientTransform | None = None,
    send_delay: float = 0.0,
    round_dump_dir: Path | None = None,
) -> CollaborativeOptimizer:
    """The run's collaborative optimizer, with the settings that make separate processes really average.

    Gradients are reduced with ``cfg.aggregator`` (robust by default), after ``cfg.worker_momentum`` and
    then ``gradient_transform`` (testnet attacks) shape what this peer sends; ``send_delay`` and
    ``round_dump_dir`` are fault-injection and inspection hooks for tests.
    """
    aggregator = make_aggregator(cfg.aggregator, tau=cfg.clip_tau, iterations=cfg.clip_iterations,
                                 trim_fraction=cfg.trim_fraction)
    momentum = WorkerMomentum(cfg.worker_momentum) if cfg.worker_momentum > 0 else None
    # With a send delay and dumps (kill tests), each round's start of sending is marked by a file
    # sending-<unix time>, so a test can kill this peer at a chosen moment of the round.
    on_send_start = partial(_mark_sending, round_dump_dir) if send_delay > 0 and round_dump_dir is not None else None
    factory = partial(RobustGradientAverager, aggregator=aggregator, send_delay=send_delay, on_send_start=on_send_start,
                      transform=chain(momentum, gradient_transform), min_group_size=cfg.min_group_size)
    return CollaborativeOptimizer(
        grad_averager_factory=factory,
        agreement_timeout=cfg.agreement_timeout if cfg.agreement_timeout > 0 else None,
        round_dump_dir=round_dump_dir,
        dht=dht,
        run_id=cfg.run_id,
        params=params,
        optimizer=optimizer,
        scheduler=scheduler,
        batch_size_per_step=batch_size_per_step,
        target_batch_size=cfg.target_batch_size,
        matchmaking_time=cfg.matchmaking_time,
        averaging_timeout=cfg.averaging_timeout,
        load_state_timeout=cfg.load_state_timeout,
        average_state_every=cfg.average_state_every,
        # Parameters are averaged in the background so a slow peer does not stall the others' steps.
        delay_state_averaging=True,
        # Progress records of a dead peer expire after this, so survivors stop counting its samples.
        # Every peer refreshes its view of the swarm's progress at least every 2 s (hivemind's default is 10 s, and a
        # slow start makes its first estimates far too long: a straggler then missed the first round, seen here).
        tracker_opts=dict(metadata_expiration=20.0, max_refresh_period=2.0),
        verbose=False,
    )


def samples_in_swarm(opt: hivemind.Optimizer) -> int:
    """Samples the whole swarm has accumulated toward the current epoch, as the tracker sees it."""
    return int(opt.tracker.global_progress.samples_accumulated)


def peers_in_swarm(opt: hivemind.Optimizer) -> int:
    return int(opt.tracker.global_progress.num_peers)
