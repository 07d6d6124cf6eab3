"""Waiting on, and leaving, one averaging round (hivemind's ``StepControl``), and downloading the swarm's state
with a deadline: the blocking parts of ``CollaborativeOptimizer``, each bounded in time.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from hivemind.averaging.control import AveragingStage
from hivemind.utils import get_dht_time

from node.swarm import policy

log = logging.getLogger(__name__)

GROUP_POLL_S = 0.5  # while waiting for a round's group: how often to check that the swarm is still on this epoch
CANCEL_WAIT_S = 5.0  # how long a cancelled round's matchmaking may take to stop before this peer moves on
LOAD_RETRY_S = 1.0  # pause between failed state downloads


class RoundMissed(Exception):
    """No group took this peer in for its epoch's round, and the swarm has moved past that epoch."""


def await_group(control: Any, epoch: int, timeout: float, swarm_epoch: Callable[[], int | None]) -> Any:
    """The round's outcome (its group), as hivemind's ``control.result(timeout)``; raises RoundMissed when no
    group has taken this peer in by the round's scheduled time and the swarm is past ``epoch`` already
    (``swarm_epoch()`` reads it from the DHT: the tracker does not fetch while this peer is in a round)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return control.result(timeout=max(0.0, min(GROUP_POLL_S, deadline - time.monotonic())))
        except TimeoutError:
            if time.monotonic() >= deadline:
                raise
        looking = control.stage is AveragingStage.LOOKING_FOR_GROUP
        past_due = get_dht_time() > control.scheduled_time
        # only once the group should have formed: every waiting peer polling the DHT loads it
        if looking and past_due:
            swarm = swarm_epoch()
            if policy.round_missed(epoch, swarm, looking, past_due) and cancel_matchmaking(control):
                raise RoundMissed(f"the swarm is at epoch {swarm}")


def cancel_matchmaking(control: Any) -> bool:
    """Cancel a round still in its matchmaking, and wait (a few seconds at most) until the averager has let it
    go: the averager looks for groups under its *current* key, so a cancelled search still running when this
    peer moves on to the next epoch's key could join that epoch's group as a member this peer's optimizer knows
    nothing of (the others would wait for its agreement record and lose the round). False: it was done."""
    if not control.cancel():
        return False
    deadline = time.monotonic() + CANCEL_WAIT_S
    while control.stage is not AveragingStage.FINISHED and time.monotonic() < deadline:
        time.sleep(0.05)
    if control.stage is not AveragingStage.FINISHED:
        log.warning("a cancelled averaging round is still %s after %.0f s", control.stage.name, CANCEL_WAIT_S)
    return True


def download_state(state_averager: Any, timeout: float, **kwargs: Any) -> None:
    """``state_averager.load_state_from_peers``, retried until ``timeout`` s (hivemind retries forever); a
    peer that gets no state trains on with its own."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            state_averager.load_state_from_peers(timeout=timeout, **kwargs)
            return
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as e:
            if time.monotonic() >= deadline:
                log.warning("could not load the state from peers in %.0f s (%r); training on", timeout, e)
                return
            log.warning("loading the state from peers failed (%r); retrying", e)
            time.sleep(LOAD_RETRY_S)  # an error that comes back at once (a DHT shutting down) must not spin
