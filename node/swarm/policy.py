"""Round policy: what a peer does about a round, decided from a frozen snapshot of the swarm's progress.

Pure functions over plain values: no hivemind, no torch, no I/O, no clock. The hivemind layer
(``node.swarm.hivemind_ext.optimizer`` in sync mode, the DiLoCo synchronizer) reads the snapshot from its
tracker and its round, asks here, and carries the decision out. The decisions:

- **apply** a round whose group agreed (or, with no agreement check, that averaged at all);
- **local**: no other peer was there (or the round failed with no check to tell): use this peer's gradients;
- **discard** a round the group did not agree on: every member applies the same zero update;
- **load-state** after the step: this peer held a minority result or other parameters than the group, or the
  swarm averaged this epoch without it;
- **skip-ahead**: the swarm finished this epoch's round already; load its state now instead of averaging
  (averaging with a later round, on parameters one update older, leaves this peer other parameters for good);
- **straggler-skip**: a much slower peer stops accumulating and joins the coming round with what it has, so the
  group does not wait for its next step.

    .venv/bin/python -m pytest tests/swarm/test_policy.py -q
"""

from __future__ import annotations

import enum
import math
from collections.abc import Sequence
from dataclasses import dataclass

# A straggler joins the coming round now when the round is due within this many of its (median) steps: its
# steps vary (a 10x slow peer on a busy machine can take several times its usual step), and a group that
# waits for one member's late call past its timeout is lost for everyone.
LATE_STEPS = 3
# Step intervals a peer needs before it judges its own pace (the median of up to ``2 * STEP_SAMPLES - 1``).
STEP_SAMPLES = 3


class Outcome(enum.Enum):
    """The group's verdict on a round's result (``node.swarm.agreement``)."""

    APPLY = "apply"  # the group agrees: use the averaged gradients
    DISCARD = "discard"  # apply no update from this round (everyone in the group does the same)
    LOAD_STATE = "load-state"  # this peer is the minority: discard, then load state from the peers


@dataclass(frozen=True)
class Verdict:
    outcome: Outcome
    # agreed | minority | incomplete-here | partial-here | failed-here | failed-elsewhere | no-majority | missing
    # | out-of-step
    reason: str
    missing: tuple[str, ...] = ()  # group members that published nothing valid (or a failure) by the decision
    disagreeing: tuple[str, ...] = ()  # members whose sketch differs from this peer's
    load_epoch: int | None = None  # out-of-step: the epoch the state to load must have (the majority's, next)

    @property
    def agreed(self) -> bool:
        return self.outcome is Outcome.APPLY


class Action(enum.Enum):
    APPLY = "apply"  # load the averaged gradients into the optimizer
    LOCAL = "local"  # load this peer's own gradients
    DISCARD = "discard"  # zero gradients: the same empty update on every member
    LOAD_STATE = "load-state"  # discard, then load the swarm's state (of at least ``min_epoch``) after the step
    SKIP_AHEAD = "skip-ahead"  # no round: load the swarm's state now


@dataclass(frozen=True)
class Decision:
    action: Action
    # what the round's record says (RoundResult.agreement): "agreed", a verdict's reason, "behind", or "" (no check)
    reason: str = ""
    min_epoch: int | None = None  # LOAD_STATE: the state loaded must be of this epoch or later
    disagreed: bool = False  # the group checked the round and did not agree on it

    @property
    def averaged(self) -> bool:
        return self.action is Action.APPLY


@dataclass(frozen=True)
class RoundResult:
    """How this peer's latest gradient round went, as the trainer reports it."""

    epoch: int  # the collaborative epoch whose gradients this round averaged
    group_size: int  # peers in the all-reduce group (1 when the peer proceeded alone)
    averaged: bool  # False when hivemind fell back to this peer's local gradients
    # Agreement check after the round (node.swarm.agreement): "agreed", or why the round was discarded
    # ("missing", "no-majority", "minority", "failed-here", "incomplete-here", ...); "behind" when the swarm
    # had finished this epoch's round already and the peer loaded the state instead; "" when no check ran.
    agreement: str = ""
    round_id: str = ""  # the all-reduce group's id (hex), the same on every member; "" when none ran



@dataclass(frozen=True)
class SwarmProgress:
    """What this peer knows of the swarm at a moment (read from its progress tracker)."""

    local_epoch: int  # this peer's epoch
    swarm_epoch: int  # the swarm's epoch (the highest trusted epoch a training peer reports)
    now: float = 0.0  # DHT time of the snapshot
    next_round_at: float = math.inf  # DHT time the swarm is due to average next (inf: unknown)
    step_interval: float = 0.0  # this peer's median seconds between steps (0: not known yet)
    straggler: bool = False  # much slower than the others (node.swarm.pace.is_straggler)

    @property
    def behind(self) -> bool:
        return self.swarm_epoch > self.local_epoch

    @property
    def round_due_in(self) -> float:
        return self.next_round_at - self.now


@dataclass(frozen=True)
class RoundReport:
    """How a gradient round went on this peer, as the averager and the agreement check told it."""

    epoch: int  # the epoch whose gradients the round averaged
    scheduled: bool = True  # False: hivemind saw no other peer and ran no round
    missed: bool = False  # no group took this peer in and the swarm moved past the epoch
    group: tuple[str, ...] | None = None  # the group's members; None: the round failed here
    verdict: Verdict | None = None  # the agreement check's verdict; None: no check ran


def before_round(progress: SwarmProgress) -> Decision | None:
    """At this peer's epoch change: SKIP_AHEAD when the swarm has finished this epoch's round already (a member
    of that round cannot see the next epoch before it joined the round: the others publish it only after the
    round and its agreement); None: take part in the round."""
    if progress.behind:
        return Decision(Action.SKIP_AHEAD, "behind")
    return None


def round_missed(epoch: int, swarm_epoch: int | None, looking_for_group: bool, past_scheduled_time: bool) -> bool:
    """A peer still in the matchmaking for ``epoch`` after the round's scheduled time, while the swarm is past
    that epoch, will find no group: it leaves the round (and loads the state)."""
    return looking_for_group and past_scheduled_time and swarm_epoch is not None and swarm_epoch > epoch


def after_round(report: RoundReport) -> Decision:
    """What to do with a round's gradients (see the module docstring)."""
    if not report.scheduled:
        return Decision(Action.LOCAL)
    if report.missed:
        return Decision(Action.LOAD_STATE, "behind", min_epoch=report.epoch + 1)
    if report.verdict is None:
        return Decision(Action.LOCAL) if report.group is None else Decision(Action.APPLY)
    verdict = report.verdict
    if verdict.agreed:
        return Decision(Action.APPLY, verdict.reason)
    if verdict.outcome is Outcome.LOAD_STATE:
        # A majority applied this round: their state must include it. Loading whatever answers first can get a
        # peer still before its step (the state of this very epoch), out of step again at the next round.
        min_epoch = verdict.load_epoch if verdict.load_epoch is not None else report.epoch + 1
        return Decision(Action.LOAD_STATE, verdict.reason, min_epoch=min_epoch, disagreed=True)
    return Decision(Action.DISCARD, verdict.reason, disagreed=True)


def step_pace(intervals: Sequence[float], samples: int = STEP_SAMPLES) -> float:
    """This peer's pace: the median of its latest step intervals (one long pause, a checkpoint or an
    evaluation, is no pace); 0 (unknown) with fewer than ``samples``."""
    if len(intervals) < samples:
        return 0.0
    ordered = sorted(intervals)
    return ordered[len(ordered) // 2]


def straggler_joins_now(progress: SwarmProgress, waiting_in_matchmaking: bool, has_gradients: bool) -> bool:
    """Straggler-skip: a straggler waiting in the matchmaking for the coming round, with gradients to give,
    whose next ``LATE_STEPS`` steps could come after the round is due, joins it now with what it has."""
    if progress.step_interval <= 0 or not waiting_in_matchmaking or not has_gradients:
        return False
    return progress.round_due_in < LATE_STEPS * progress.step_interval and progress.straggler


def straggler_schedules_early(progress: SwarmProgress, matchmaking_time: float) -> bool:
    """hivemind joins the matchmaking when the round is due within ``matchmaking_time``; a straggler whose steps
    take longer joins as early as one step ahead (at the round's due time, so the group still forms when the
    others are ready), or its next chance would come too late. False: hivemind's rule."""
    eta = progress.round_due_in
    return matchmaking_time < eta <= progress.step_interval and progress.straggler


def state_is_current(loaded_epoch: int, swarm_epoch: int, min_epoch: int | None) -> bool:
    """The state just loaded is the swarm's (and at least ``min_epoch``): no need to download it again."""
    return loaded_epoch >= max(swarm_epoch, min_epoch or 0)


def leave_round_by_cancelling(progress: SwarmProgress, sent: bool, looking_for_group: bool) -> bool:
    """Before a load: a peer behind the swarm still looking for its epoch's group cancels (no group of that
    epoch will form); otherwise it leaves as hivemind does, joining the round with weight 0."""
    return progress.behind and not sent and looking_for_group


def matchmaking_after_load(progress: SwarmProgress, averaging_timeout: float) -> float | None:
    """After a load: when to be in this epoch's matchmaking for (DHT time), so a peer that loaded mid-epoch joins
    the group the others are forming now; None when it is still behind or the swarm's pace is unknown (then
    hivemind's rule decides). The due time stays well inside the round's deadline, counted from now."""
    if progress.behind or progress.local_epoch != progress.swarm_epoch or not math.isfinite(progress.next_round_at):
        return None
    return min(progress.next_round_at, progress.now + averaging_timeout / 2)


# -- DiLoCo ------------------------------------------------------------------------------------------------------


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
    return ahead.pop() - mine if len(ahead) == 1 and others[0] > mine else 0  # type: ignore[operator]


def rounds_to_skip(behind: int, shift: int, skipped_by_then: int, skipping: int) -> int:
    """DiLoCo skip-ahead: rounds to add to this peer's round counter after a round it was ``behind`` the rest of
    its group by (0: not behind). ``shift`` is what it had skipped when it sent that round; ``skipped_by_then``
    and ``skipping`` are the rounds skipped since and still to skip: rounds sent after this one (overlap) were
    behind by as much, so the skip counts from what had been skipped when this one was sent."""
    needed = shift + behind - skipped_by_then - skipping
    return needed if behind > 0 and needed > 0 else 0
