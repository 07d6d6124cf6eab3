"""hivemind's training-state averager, made safe to load state while a parameters' round runs.

hivemind averages parameters in the background (``delay_state_averaging``) by
the delta rule: a round snapshots the parameters, averages them with the group,
and a later ``step()`` adds ``average - snapshot`` to the parameters. A peer that
loads the swarm's state meanwhile must not get that delta on top of the loaded
parameters (the snapshot was of the old ones), so hivemind's optimizer waits for
the round before loading: its matchmaking and all-reduce, ~5 s here, after
which the loaded state is often one round old already and the peer is behind
again (node.swarm.hivemind_ext.optimizer). ``LoadSafeStateAverager`` instead drops the result of
a round whose snapshot predates the last load, so loading need not wait.

It also serves a consistent state to peers that load it. hivemind raises the
epoch counter before its optimizer step runs (in a background thread) and
reads the state without the optimizer's lock, so a peer loading right at an
epoch change could get the new epoch's number with the old epoch's
parameters, or parameters half way through the step (a straggler
that loaded state right after a round it missed was out of step with every
other peer at the next round, and loaded again, round after round). Here the
state is read under the optimizer's lock and labelled with the epoch its
parameters belong to.

Finally, a background round's result is applied at an epoch boundary only
(hivemind applies it at whichever local step comes after the round ends).
The parameters then stay the same through an epoch, so every gradient of an
epoch is computed on the parameters its work receipt names
(``node.train.sketch``), and peers that apply the same round do so at the
same point of training. (In one CI run the epoch-start parameters of three
peers that had agreed on the previous round differed, and an honest receipt
was rejected as naming parameters nobody else used; a round's result landing
at different steps on different peers is one way to get there.)
"""

from __future__ import annotations

import logging
from typing import Any

from hivemind.optim.state_averager import TrainingStateAverager

log = logging.getLogger(__name__)


class LoadSafeStateAverager(TrainingStateAverager):
    """``TrainingStateAverager`` that ignores a background round's result when the state was loaded after the
    round took its snapshot."""

    def __init__(self, **kwargs: Any) -> None:
        self._snapshot_before_load = False  # the current snapshot (delta rule) predates the last load
        self._params_epoch = 0  # the epoch the parameters and optimizer statistics belong to
        self._loading = self._load_applied = False  # in load_state_from_peers; it replaced the state
        super().__init__(**kwargs)

    def _update_scheduler(self) -> None:
        # hivemind calls this right after each optimizer step (under the optimizer's lock) and at the end of a
        # load that replaced the state: the two moments the parameters catch up with ``local_epoch``.
        super()._update_scheduler()
        self._params_epoch = self.local_epoch
        if self._loading:
            self._load_applied = True

    def step(self, wait_for_delayed_updates: bool | None = None, apply_delayed_updates: bool = True,
             increment_epoch: bool = False, **kwargs: Any) -> Any:
        # hivemind's Optimizer.step calls step(apply_delayed_updates=True) and nothing else before every local
        # step: such a call leaves the result for the next epoch boundary. Every other call (an epoch change,
        # an optimizer step, a wait for the round at a load or the end) applies it as hivemind does.
        updates_state = increment_epoch or bool(wait_for_delayed_updates) or any(
            kwargs.get(k) for k in ("optimizer_step", "zero_grad", "averaging_round"))
        return super().step(wait_for_delayed_updates=wait_for_delayed_updates,
                            apply_delayed_updates=apply_delayed_updates and updates_state,
                            increment_epoch=increment_epoch, **kwargs)

    def get_current_state(self) -> Any:
        """hivemind's state for a peer that loads it, never mid-step, labelled with its parameters' epoch (one
        less than ``local_epoch`` between the epoch change and the optimizer step: the loader then sees a state
        older than the swarm's and downloads again)."""
        with self.lock_optimizer:
            metadata, tensors, infos = super().get_current_state()
            metadata["epoch"] = min(metadata["epoch"], self._params_epoch)
        return metadata, tensors, infos

    # hivemind's round sets `_old_tensors` (its snapshot, in the background thread) right before it averages;
    # a property notices each new snapshot.
    @property  # type: ignore[override]
    def _old_tensors(self) -> Any:
        return self.__dict__.get("_snapshot")

    @_old_tensors.setter
    def _old_tensors(self, value: Any) -> None:
        self.__dict__["_snapshot"] = value
        self._snapshot_before_load = False

    def load_state_from_peers(self, **kwargs: Any) -> Any:
        self._loading, self._load_applied = True, False
        try:
            loaded = super().load_state_from_peers(**kwargs)
        finally:
            self._loading = False
        if self._load_applied and self._old_tensors is not None:  # a failed download leaves the parameters be
            self._snapshot_before_load = True
        return loaded

    def _apply_averaging_results_(self) -> None:
        if self.delta_rule_averaging and self._snapshot_before_load:
            log.info("dropping a parameters' round that began before this peer loaded the state")
            return
        super()._apply_averaging_results_()
