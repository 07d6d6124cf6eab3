"""A fix to hivemind's ``StepControl.cancel``: a cancelled averaging round really stops looking for a group.

A round (``StepControl``) is created in the training process and runs in the averager's process. To cancel
it, hivemind's ``cancel`` first wakes the averager (the ``_cancel`` future) and only then marks the round
itself cancelled. The averager, once woken, asks whether the round is cancelled; when it asks before the
mark lands it takes the wake-up for nothing and goes on waiting for its matchmaking (a round alone in the
matchmaking often stays LOOKING_FOR_GROUP long after its cancellation). Such a round goes
on under whatever key the averager looks under next, joins the next epoch's group as a member its trainer
knows nothing of, and the group loses that round (``tests/robust/test_step_control.py``; in the demo a peer
that missed one round missed every later one this way).

``cancel_round`` marks the round cancelled first, then wakes the averager. ``install`` puts it in place of
hivemind's method, so hivemind's own cancellations (its optimizer cancels rounds it will not use) are fixed
too; ``node.swarm.hivemind_ext.robust_allreduce`` (every averager of hivenet) installs it on import.
"""

from __future__ import annotations

from concurrent.futures import InvalidStateError

from hivemind.averaging.control import StepControl
from hivemind.utils.mpfuture import MPFuture


def cancel_round(control: StepControl) -> bool:
    """Cancel ``control`` so that the averager sees it cancelled when it wakes; False when it was done already."""
    cancelled = MPFuture.cancel(control)  # the round's own state first: the averager reads it once woken
    trigger, wake = control._trigger, control._cancel  # noqa: SLF001 (hivemind keeps them private)
    if trigger is not None:
        trigger.cancel()
    if wake is not None and not wake.done():
        try:
            wake.set_result(None)
        except InvalidStateError:  # set meanwhile (the round ended): nothing left to wake
            pass
    return cancelled


def install() -> None:
    StepControl.cancel = cancel_round  # type: ignore[method-assign]
