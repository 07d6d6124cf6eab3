"""Collaborative optimization: hivemind.Optimizer, instrumented, with hivenet's round policy.

``CollaborativeOptimizer`` overrides hivemind's optimizer template methods (listed in PATCHES.md) to carry out
the decisions of ``node.swarm.policy``, made from a snapshot of the swarm's progress; what it changes:

- it records how each round went (group size, whether gradients were really
  averaged) and, with the agreement check, applies a round only when the whole
  group holds the same complete result (node.swarm.agreement);
- gradient rounds meet under a key of their epoch (node.swarm.dht.round_bits):
  hivemind's matchmaking key is the same for every round, so a peer that
  missed its epoch's group joined the next epoch's with gradients of older
  parameters (a straggler was out of step with the group after every round
  it missed). A peer still looking for its epoch's group when the swarm
  has moved past that epoch leaves the matchmaking and loads the state;
- a peer that is behind the swarm loads the swarm's state instead of averaging:
  hivemind lets a peer one epoch behind run the swarm's *current* round with
  its older parameters and then skip ahead, so it keeps other parameters
  than everyone else for good (a peer that missed the first round would stay
  one epoch behind and off by one update for a whole run);
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

Each round is reported to the injected ``Hooks.on_round`` (what was sent and got, the verdict, the parameters
the next epoch starts from); a real node's hooks ignore it.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import hivemind
import torch
from hivemind.averaging.control import AveragingStage
from hivemind.utils import get_dht_time

from node.hooks import NO_HOOKS, Hooks
from node.swarm import policy
from node.swarm.agreement import Record, RoundAgreement, sketch
from node.swarm.dht import round_bits
from node.swarm.hivemind_ext.progress_tracker import PaceTracker
from node.swarm.hivemind_ext.robust_allreduce import RoundGroup
from node.swarm.hivemind_ext.round_control import RoundMissed, await_group, cancel_matchmaking, download_state
from node.swarm.hivemind_ext.state_averager import LoadSafeStateAverager
from node.swarm.policy import Action, Decision, Outcome, RoundReport, RoundResult, SwarmProgress, Verdict

log = logging.getLogger(__name__)

_LOAD_ATTEMPTS = 3  # downloads per load_state_from_peers while the state got is older than the swarm's epoch
_LOAD_RETRY_S = 1.0  # pause between them: the peers still finishing the last round move on meanwhile
_LAST_SENT = object()  # _report_round: what the gradient averager sent last
_TAG_ALONG_EPOCH_S = 3.0  # after tagging along, how long to wait for the members' records (their epoch)
_NEVER = 2**62  # average_state_every for an epoch change without a parameters' round (no epoch is a multiple)


class CollaborativeOptimizer(hivemind.Optimizer):
    """hivemind.Optimizer that remembers the outcome of its last gradient-averaging round."""

    # hivemind's attributes this class reads and sets (declared for the type checker)
    average_state_every: int
    tracker: PaceTracker
    scheduled_grads: Any
    scheduled_state: Any

    def __init__(self, *args: Any, agreement_timeout: float | None = None, hooks: Hooks = NO_HOOKS,
                 **kwargs: Any) -> None:
        self.last_round: RoundResult | None = None
        self.disagreements = 0  # rounds whose group did not agree on the result (discarded or repaired)
        self.hooks = hooks
        # Building a round's record clones tensors: only for hooks that look at it.
        self._reports_rounds = type(hooks).on_round is not Hooks.on_round
        # load the swarm's state after this step, of at least this epoch (None: any), and why: this peer held a
        # minority result or other parameters than the group's, or the swarm averaged without it
        self._needs_state: tuple[int | None, str] | None = None
        self._step_returned: float | None = None  # when step() last returned (time.monotonic())
        # seconds between step() calls, not counting step() itself (the compute): median of the latest few; 0 unknown
        self.step_interval = 0.0
        self._intervals: deque[float] = deque(maxlen=2 * policy.STEP_SAMPLES - 1)
        self._off_pace_s = 0.0  # time since step() last returned that the caller spent on other work (off_pace)
        self._next_round_epoch: int | None = None  # after tagging along: the epoch that round's members move on to
        super().__init__(*args, **kwargs)
        self._average_state_every = self.average_state_every  # as configured (set to _NEVER for one epoch change)
        self.agreement = RoundAgreement(self.dht, self.run_id, agreement_timeout) if agreement_timeout else None
        self._key_rounds_to_epoch()

    def step(self, *args: Any, **kwargs: Any) -> Any:
        if self._step_returned is not None:
            self._intervals.append(max(0.0, time.monotonic() - self._step_returned - self._off_pace_s))
            self.step_interval = policy.step_pace(self._intervals)
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
            self._report_parameters(loaded)
        self._step_returned, self._off_pace_s = time.monotonic(), 0.0
        return loss

    @contextmanager
    def off_pace(self) -> Iterator[None]:
        """Work between steps that is not training (an evaluation, a checkpoint, a receipt at an epoch's end):
        its time does not count as this peer's step time, so such work does not make it a straggler (a peer
        that evaluated every epoch would judge itself one)."""
        started = time.monotonic()
        try:
            yield
        finally:
            self._off_pace_s += time.monotonic() - started

    def _progress(self) -> SwarmProgress:
        """A snapshot of the swarm's progress as this peer's tracker sees it now (for ``node.swarm.policy``)."""
        return SwarmProgress(local_epoch=self.local_epoch, swarm_epoch=self.tracker.global_epoch, now=get_dht_time(),
                             next_round_at=self.tracker.estimated_next_update_time,
                             step_interval=self.step_interval, straggler=self._is_straggler())

    def _joins_round_now(self) -> bool:
        """A straggler in the matchmaking for the coming round joins it now (``policy.straggler_joins_now``)."""
        control = self.scheduled_grads
        if self.auxiliary or not self.use_gradient_averaging:
            return False
        waiting = control is not None and not control.triggered and not control.done()
        has_gradients = self.grad_averager.local_samples_accumulated > 0
        return policy.straggler_joins_now(self._progress(), waiting, has_gradients)

    def _is_straggler(self) -> bool:
        """Much slower than the other peers (node.swarm.pace), by this peer's median step time."""
        rate = (self.batch_size_per_step or 0) / self.step_interval if self.step_interval > 0 else 0.0
        return self.tracker.is_straggler(rate)

    def _maybe_schedule_gradient_averaging(self) -> None:
        progress = self._progress()
        if not policy.straggler_schedules_early(progress, self.matchmaking_time):
            super()._maybe_schedule_gradient_averaging()
            return
        eta = progress.round_due_in
        if self.scheduled_grads is None or self.scheduled_grads.triggered or self.scheduled_grads.done():
            log.debug("pre-scheduling gradient averaging in %.2f s (steps take %.2f s)", eta, self.step_interval)
            self.scheduled_grads = self.grad_averager.schedule_step(
                scheduled_time=get_dht_time() + eta, timeout=self.averaging_timeout)

    def _make_progress_tracker(self, target_batch_size: int, **kwargs: Any) -> PaceTracker:
        return PaceTracker(dht=self.dht, prefix=self.run_id, target_batch_size=target_batch_size,
                           client_mode=self.client_mode, status_loglevel=self.status_loglevel, start=True, **kwargs)

    def _make_state_averager(self, **kwargs: Any) -> Any:
        # A background state-averaging round ends by copying its result over the parameters. If it lands
        # after the next optimizer step, that step is silently undone (training stalls). The delta rule adds
        # (average - snapshot) instead, which keeps every local update and still repairs drift between peers.
        kwargs["delta_rule_averaging"] = True
        # hivemind's construction, with the averager that lets a peer load state without waiting for its
        # background round (node.swarm.hivemind_ext.state_averager)
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
        decision = policy.before_round(SwarmProgress(self.local_epoch, self.tracker.global_epoch))
        if decision is not None and decision.action is Action.SKIP_AHEAD:
            # hivemind would average with whatever round runs now, using parameters an update older than
            # everyone's, and then jump to the swarm's epoch: identical epochs, different parameters.
            log.info("epoch %d: the swarm is at epoch %d already; loading its state instead of averaging",
                     self.local_epoch, self.tracker.global_epoch)
            self.last_round = RoundResult(epoch=self.local_epoch, group_size=1, averaged=False,
                                          agreement=decision.reason)
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

    def _report_parameters(self, loaded: bool) -> None:
        """To the hooks: the parameters this peer starts its new epoch with (after loading state, when the round
        told it to), named by the round that ended the last one."""
        if not self._reports_rounds or self.last_round is None:
            return
        name = f"params-{self.local_epoch:05d}-{self.last_round.round_id or 'none'}-{time.time():.3f}"
        params = [p.detach().clone() for p in self.state_averager.main_parameters]
        self.hooks.on_round(name, {"epoch": self.local_epoch, "round": self.last_round.round_id,
                                   "agreement": self.last_round.agreement, "loaded_state": loaded, "params": params})

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
                download_state(self.state_averager, self.load_state_timeout, **kwargs)
                self.tracker.report_local_progress(local_epoch=self.local_epoch, samples_accumulated=0)
                if not self.client_mode:
                    self.state_averager.state_sharing_priority = self.local_epoch
                if self.use_gradient_averaging:
                    self.grad_averager.reset_accumulated_grads_()
                    if not self.client_mode:
                        self.grad_averager.state_sharing_priority = self.local_epoch
            if policy.state_is_current(self.local_epoch, self.tracker.global_epoch, min_epoch):
                break
            if attempt == _LOAD_ATTEMPTS - 1:
                break
            log.info("loaded the state of epoch %d, the swarm is at %d: loading again", self.local_epoch,
                     max(self.tracker.global_epoch, min_epoch or 0))
            time.sleep(_LOAD_RETRY_S)
        self._key_rounds_to_epoch()
        self._join_matchmaking_now()

    def _join_matchmaking_now(self) -> None:
        """After a load: join this epoch's matchmaking at once, for the time the swarm is due to average.

        hivemind joins at the first step within ``matchmaking_time`` of that time. A peer that loads the state
        mid-epoch (it missed a round) often finds the others in the matchmaking already; by its next step their
        group had formed, it missed that round too, loaded again, and so on, round after round after one late
        step. In the matchmaking now, it joins their group."""
        if self.auxiliary or not self.use_gradient_averaging or self.scheduled_grads is not None:
            return
        try:
            self.tracker.refresh()
        except Exception as e:  # the DHT shutting down, say: hivemind's rule joins at a later step
            log.debug("could not read the swarm's progress after the load (%r)", e)
            return
        due = policy.matchmaking_after_load(self._progress(), self.averaging_timeout)
        if due is None:
            return  # still behind (the next step loads again), or no pace known yet: hivemind's rule decides
        log.debug("epoch %d: joining the matchmaking after the load (the swarm averages in %.1f s)",
                  self.local_epoch, due - get_dht_time())
        self.scheduled_grads = self.grad_averager.schedule_step(scheduled_time=due, timeout=self.averaging_timeout)

    def _leave_scheduled_rounds(self) -> None:
        """Before loading state, leave the rounds this peer joined the matchmaking for as hivemind does: a
        gradient round with weight 0 (cancelling it can cross the group's forming: "Can't
        set_result to a future that is CANCELLED" after the group ran with this peer), the parameters' round
        cancelled (hivemind's ``_update_global_epoch`` does so with one it will not use; waiting for it
        would make the load land after the swarm's next round). A peer behind the swarm that is still looking for
        its epoch's group cancels instead: no group of that epoch will form (the others are past it), and tagging
        along would wait for the matchmaking's deadline."""
        control = self.scheduled_grads
        if control is not None and not control.done():
            looking = control.stage is AveragingStage.LOOKING_FOR_GROUP
            if policy.leave_round_by_cancelling(SwarmProgress(self.local_epoch, self.tracker.global_epoch),
                                                sent=control.triggered, looking_for_group=looking):
                cancel_matchmaking(control)
            else:
                self._tag_along_with_zero_weight(control)
        if self.scheduled_state is not None and not self.scheduled_state.done():
            self.scheduled_state.cancel()
        self.scheduled_grads = self.scheduled_state = None

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
        self._report_round(f"round-{self.local_epoch:05d}-{time.time():.3f}", self.local_epoch, gathered.group_id.hex(),
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
            self._carry_out(epoch, policy.after_round(RoundReport(epoch, scheduled=False)))
            return
        group: list[str] | None = None
        round_id = ""  # the all-reduce group's id: names this round in the agreement records and reports
        complete, reduced_all = True, True
        failed: tuple[str, ...] = ()
        try:
            gathered = await_group(maybe_step_control, epoch, self.averaging_timeout, self.tracker.fetch_swarm_epoch)
            group = [peer.to_base58() for peer in gathered]
            if isinstance(gathered, RoundGroup):
                round_id, complete, reduced_all, failed = (gathered.group_id.hex(), gathered.complete,
                                                           gathered.reduced_all, gathered.failed)
        except RoundMissed:
            log.info("epoch %d: the swarm finished this epoch's round without this peer; loading its state", epoch)
            self._carry_out(epoch, policy.after_round(RoundReport(epoch, missed=True)))
            return
        except BaseException as e:  # hivemind's contract: any failure falls back to local gradients
            if isinstance(e, KeyboardInterrupt):
                raise
            log.warning("epoch %d: averaging gradients failed (%r)", epoch, e)
        verdict = self._check_round(epoch, round_id, group, complete, reduced_all, failed)
        decision = policy.after_round(RoundReport(epoch, group=tuple(group) if group is not None else None,
                                                  verdict=verdict))
        if decision.action is Action.LOCAL:
            log.warning("epoch %d: proceeding with local gradients", epoch)
        # without the agreement check the round has no record to name it by
        self._carry_out(epoch, decision, group, round_id if verdict is not None else "", verdict)

    def _check_round(self, epoch: int, round_id: str, group: list[str] | None, complete: bool, reduced_all: bool,
                     failed: tuple[str, ...]) -> Verdict | None:
        """The group's verdict on the round (``node.swarm.agreement``); None when no check is configured."""
        if self.agreement is None:
            return None
        with self.grad_averager.get_tensors() as averaged:
            result = [t.clone() for t in averaged] if group is not None else None
        name = f"round-{epoch:05d}-{time.time():.3f}"
        # reported before publishing too: a peer killed right after still leaves what it sent
        self._report_round(name, epoch, round_id, group, result, None)
        verdict = self.agreement.check(round_id, group or [], result, complete, reduced_all,
                                       epoch=epoch, params=self.state_averager.main_parameters)
        self._report_round(name, epoch, round_id, group, result, verdict)
        if not (complete and reduced_all):
            log.warning("epoch %d: parts of the round failed here (%s; peers: %s)", epoch,
                        "a partition missing" if not complete else "a sender dropped", list(failed))
        return verdict

    def _carry_out(self, epoch: int, decision: Decision, group: list[str] | None = None, round_id: str = "",
                   verdict: Verdict | None = None) -> None:
        """Load the gradients ``decision`` says into the optimizer, and record the round."""
        if decision.action is Action.APPLY:
            assert group is not None
            log.info("epoch %d: averaged gradients with %d peers%s", epoch, len(group),
                     "; the group agrees" if verdict is not None else "")
            self._load_averaged_gradients_into_optimizer_()
        elif decision.action is Action.LOCAL:
            self._load_local_gradients_into_optimizer()
        else:
            if decision.disagreed:
                self.disagreements += 1
                assert verdict is not None
                log.warning("epoch %d: discarding the round (%s; missing %s, differing %s)", epoch, verdict.reason,
                            list(verdict.missing), list(verdict.disagreeing))
            # Everyone who sees the round broken applies the same empty update, so parameters stay identical.
            with torch.no_grad(), self.grad_averager.get_tensors() as averaged:
                for t in averaged:
                    t.zero_()
            self._load_averaged_gradients_into_optimizer_()
            if decision.action is Action.LOAD_STATE:
                why = ("the swarm averaged without this peer" if not decision.disagreed
                       else "this peer's result or parameters differed from the majority's")
                self._needs_state = (decision.min_epoch, why)
                # No parameters' round at this epoch change (hivemind decides on it right after this call): this
                # peer replaces its parameters right after the step, and loading waits for a round it is in (~5 s:
                # the load then lands after the swarm's next round, and the peer is behind again, round after round).
                self.average_state_every = _NEVER
        self.last_round = RoundResult(epoch=epoch, group_size=len(group or []) or 1, averaged=decision.averaged,
                                      agreement=decision.reason, round_id=round_id)

    def _report_round(self, name: str, epoch: int, round_id: str, group: list[str] | None,
                      result: list[torch.Tensor] | None, verdict: Verdict | None, sent: Any = _LAST_SENT) -> None:
        """To the hooks: what this peer sent (None: nothing that counts, it joined with weight 0) and got in a
        round, and the verdict (None: still pending)."""
        if not self._reports_rounds:
            return
        sent = getattr(self.grad_averager, "last_sent", []) if sent is _LAST_SENT else sent
        self.hooks.on_round(name, {
            "epoch": epoch, "round": round_id, "peer": self.agreement.me if self.agreement else "", "group": group,
            "sent": sent, "result": result,
            "outcome": verdict.outcome.value if verdict else "pending", "reason": verdict.reason if verdict else ""})
