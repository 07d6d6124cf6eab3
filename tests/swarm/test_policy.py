"""Round policy (node.swarm.policy): apply, discard, load-state, skip-ahead and straggler cases, decided from
snapshots alone; no p2p process, no hivemind.

    .venv/bin/python -m pytest tests/swarm/test_policy.py -q
"""

import math
import subprocess
import sys

import pytest

from node.swarm import policy
from node.swarm.policy import Action, Outcome, RoundReport, SwarmProgress, Verdict

GROUP = ("peerA", "peerB", "peerC")


# -- after a round: apply / local / discard / load-state --------------------------------------------------------


def test_an_agreed_round_is_applied_and_named_agreed():
    decision = policy.after_round(RoundReport(7, group=GROUP, verdict=Verdict(Outcome.APPLY, "agreed")))
    assert (decision.action, decision.reason, decision.averaged, decision.disagreed) == (Action.APPLY, "agreed", True, False)


def test_without_an_agreement_check_a_round_with_a_group_is_applied_and_a_failed_one_falls_back_to_local():
    applied = policy.after_round(RoundReport(7, group=GROUP))
    failed = policy.after_round(RoundReport(7, group=None))
    assert (applied.action, applied.reason, applied.averaged) == (Action.APPLY, "", True)
    assert (failed.action, failed.reason, failed.averaged) == (Action.LOCAL, "", False)


def test_no_other_peer_means_local_gradients():
    decision = policy.after_round(RoundReport(3, scheduled=False))
    assert (decision.action, decision.averaged, decision.min_epoch) == (Action.LOCAL, False, None)


@pytest.mark.parametrize("reason", ["no-majority", "missing", "failed-here", "failed-elsewhere", "partial-here"])
def test_a_round_the_group_did_not_agree_on_is_discarded_with_its_reason(reason):
    decision = policy.after_round(RoundReport(7, group=GROUP, verdict=Verdict(Outcome.DISCARD, reason)))
    assert (decision.action, decision.reason, decision.disagreed, decision.min_epoch) == (Action.DISCARD, reason, True, None)
    assert not decision.averaged


def test_the_minority_discards_and_loads_the_state_after_this_round():
    decision = policy.after_round(RoundReport(7, group=GROUP, verdict=Verdict(Outcome.LOAD_STATE, "minority")))
    assert (decision.action, decision.reason, decision.min_epoch, decision.disagreed) == (Action.LOAD_STATE, "minority", 8, True)


def test_a_peer_out_of_step_loads_the_majoritys_next_epoch_not_its_own():
    verdict = Verdict(Outcome.LOAD_STATE, "out-of-step", disagreeing=("peerB", "peerC"), load_epoch=12)
    decision = policy.after_round(RoundReport(7, group=GROUP, verdict=verdict))
    assert (decision.action, decision.reason, decision.min_epoch) == (Action.LOAD_STATE, "out-of-step", 12)


def test_a_round_missed_while_the_swarm_moved_on_loads_the_state_of_the_next_epoch_without_counting_a_disagreement():
    decision = policy.after_round(RoundReport(5, missed=True))
    assert (decision.action, decision.reason, decision.min_epoch, decision.disagreed) == (Action.LOAD_STATE, "behind", 6, False)


# -- before a round: skip ahead --------------------------------------------------------------------------------


def test_a_peer_behind_the_swarm_skips_ahead_instead_of_averaging_and_one_in_step_takes_part():
    behind = policy.before_round(SwarmProgress(local_epoch=4, swarm_epoch=5))
    assert behind is not None and (behind.action, behind.reason, behind.averaged) == (Action.SKIP_AHEAD, "behind", False)
    assert policy.before_round(SwarmProgress(local_epoch=5, swarm_epoch=5)) is None
    assert policy.before_round(SwarmProgress(local_epoch=6, swarm_epoch=5)) is None  # ahead: its round comes


@pytest.mark.parametrize(("swarm_epoch", "looking", "past_due", "missed"), [
    (6, True, True, True),  # still looking after the round's time, the swarm moved on: missed
    (5, True, True, False),  # the swarm is on this epoch: its group may still form
    (None, True, True, False),  # nothing known of the swarm
    (6, False, True, False),  # in a group already: the round goes on
    (6, True, False, False),  # before the round's time: keep looking
])
def test_a_round_is_missed_only_when_still_looking_past_its_time_with_the_swarm_ahead(swarm_epoch, looking, past_due,
                                                                                       missed):
    assert policy.round_missed(5, swarm_epoch, looking, past_due) is missed


def test_a_load_is_repeated_until_the_state_is_the_swarms_and_at_least_the_epoch_asked_for():
    assert not policy.state_is_current(loaded_epoch=4, swarm_epoch=5, min_epoch=None)
    assert policy.state_is_current(loaded_epoch=5, swarm_epoch=5, min_epoch=None)
    assert not policy.state_is_current(loaded_epoch=5, swarm_epoch=5, min_epoch=6)
    assert policy.state_is_current(loaded_epoch=6, swarm_epoch=5, min_epoch=6)


def test_before_a_load_a_peer_behind_still_looking_for_a_group_cancels_and_any_other_tags_along():
    behind, in_step = SwarmProgress(4, 5), SwarmProgress(5, 5)
    assert policy.leave_round_by_cancelling(behind, sent=False, looking_for_group=True)
    assert not policy.leave_round_by_cancelling(behind, sent=True, looking_for_group=True)
    assert not policy.leave_round_by_cancelling(behind, sent=False, looking_for_group=False)
    assert not policy.leave_round_by_cancelling(in_step, sent=False, looking_for_group=True)


def test_after_a_load_a_peer_in_step_joins_the_matchmaking_for_the_swarms_due_time_within_half_the_timeout():
    soon = SwarmProgress(5, 5, now=100.0, next_round_at=103.0)
    late = SwarmProgress(5, 5, now=100.0, next_round_at=200.0)
    assert policy.matchmaking_after_load(soon, averaging_timeout=30.0) == 103.0
    assert policy.matchmaking_after_load(late, averaging_timeout=30.0) == 115.0
    assert policy.matchmaking_after_load(SwarmProgress(4, 5, now=100.0, next_round_at=103.0), 30.0) is None
    assert policy.matchmaking_after_load(SwarmProgress(5, 5, now=100.0, next_round_at=math.inf), 30.0) is None


# -- stragglers ------------------------------------------------------------------------------------------------


def _straggler(due_in: float, step: float = 2.0, straggler: bool = True) -> SwarmProgress:
    return SwarmProgress(5, 5, now=1000.0, next_round_at=1000.0 + due_in, step_interval=step, straggler=straggler)


def test_a_straggler_in_the_matchmaking_joins_now_when_the_round_is_due_within_its_late_steps():
    assert policy.straggler_joins_now(_straggler(due_in=5.0), waiting_in_matchmaking=True, has_gradients=True)
    # due later than LATE_STEPS of its steps: it has time for another step
    far = policy.LATE_STEPS * 2.0 + 1.0
    assert not policy.straggler_joins_now(_straggler(due_in=far), waiting_in_matchmaking=True, has_gradients=True)


def test_only_a_straggler_waiting_with_gradients_and_a_known_pace_skips_its_remaining_steps():
    assert not policy.straggler_joins_now(_straggler(5.0, straggler=False), True, True)  # a peer of the usual pace
    assert not policy.straggler_joins_now(_straggler(5.0), waiting_in_matchmaking=False, has_gradients=True)
    assert not policy.straggler_joins_now(_straggler(5.0), waiting_in_matchmaking=True, has_gradients=False)
    assert not policy.straggler_joins_now(_straggler(5.0, step=0.0), True, True)  # pace unknown yet


def test_a_straggler_schedules_its_matchmaking_one_step_ahead_and_others_keep_hiveminds_rule():
    assert policy.straggler_schedules_early(_straggler(due_in=6.0, step=8.0), matchmaking_time=3.0)
    assert not policy.straggler_schedules_early(_straggler(due_in=2.0, step=8.0), matchmaking_time=3.0)  # hivemind's window
    assert not policy.straggler_schedules_early(_straggler(due_in=9.0, step=8.0), matchmaking_time=3.0)  # a step away still
    assert not policy.straggler_schedules_early(_straggler(6.0, step=8.0, straggler=False), matchmaking_time=3.0)


def test_a_peers_pace_is_the_median_interval_once_there_are_enough():
    assert policy.step_pace([1.0, 1.2]) == 0.0
    assert policy.step_pace([1.0, 30.0, 1.2]) == 1.2  # one long pause (a checkpoint) is no pace
    assert policy.step_pace([0.5, 0.6, 0.7, 40.0, 0.55]) == 0.6


# -- DiLoCo ------------------------------------------------------------------------------------------------------


def test_rounds_behind_counts_only_when_every_other_member_is_on_one_later_round():
    assert policy.rounds_behind(3, [3, 5, 5]) == 2
    assert policy.rounds_behind(3, [3, 3, 5]) == 0  # one member far off moves nobody
    assert policy.rounds_behind(3, [3, 4, 5]) == 0  # the others disagree
    assert policy.rounds_behind(5, [5, 3, 3]) == 0  # ahead is not behind
    assert policy.rounds_behind(3, [3]) == 0
    assert policy.rounds_behind(3, [3, True, True]) == 0  # not round numbers
    assert policy.rounds_behind(3, [3, "5"]) == 0


def test_skip_ahead_counts_from_what_was_skipped_when_the_round_was_sent():
    assert policy.rounds_to_skip(behind=2, shift=0, skipped_by_then=0, skipping=0) == 2
    # a later round sent before this one's outcome was behind by as much: skipped already, not again
    assert policy.rounds_to_skip(behind=2, shift=0, skipped_by_then=2, skipping=0) == 0
    assert policy.rounds_to_skip(behind=2, shift=0, skipped_by_then=0, skipping=2) == 0
    assert policy.rounds_to_skip(behind=3, shift=1, skipped_by_then=2, skipping=0) == 2
    assert policy.rounds_to_skip(behind=0, shift=5, skipped_by_then=0, skipping=0) == 0  # not behind: no skip


@pytest.mark.process
def test_the_policy_imports_neither_hivemind_nor_torch():
    code = ("import sys, node.swarm.policy; bad = [m for m in ('hivemind', 'torch') if m in sys.modules]; "
            "print(','.join(bad))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == ""
