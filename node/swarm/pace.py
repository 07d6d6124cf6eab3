"""Who is a straggler, and which epoch the swarm is at: read from the progress records peers publish.

hivemind's progress tracker already reads every peer's training speed (samples per second, an EMA that
leaves out the time spent in averaging rounds) from the DHT to estimate when the swarm averages next.
``PaceTracker`` (``node.swarm.hivemind_ext.progress_tracker``) keeps those speeds, so a peer can tell whether
it is much slower than the others. Only
such a peer changes how it joins rounds (node.swarm.collab): a peer of the swarm's usual pace must not,
or every epoch would end a step short of its target batch (the tracker's estimate of the next round
treats the last step's samples as arriving continuously).

The swarm's epoch is where a peer behind loads the state and where rounds are judged missed. hivemind takes
the highest epoch any training peer reports, so one hostile record claiming epoch 10^9 would make every
honest peer skip its rounds and load the state at every step. Here an epoch above the median (the upper
one) of the training peers' epochs is not believed: such records are set aside (``trusted_records``). A
peer left behind by a round still sees the swarm move on (the others are the majority); the cost is that a
peer ahead by a step is counted a moment later. With two training peers there is no majority to go by.
"""

from __future__ import annotations

import math
import statistics
from typing import Any

from hivemind.optim.progress_tracker import LocalTrainingProgress

# A peer this many times slower than the median of the others is a straggler. Peers of one pace on a shared
# machine differ by up to ~2x (who gets the CPU); a straggler that holds a round costs the others a whole
# step of its own, so the threshold stays well above that noise.
STRAGGLER_FACTOR = 3.0


def is_straggler(own_rate: float, other_rates: list[float], factor: float = STRAGGLER_FACTOR) -> bool:
    """True when ``own_rate`` (samples/s) is below the others' median by more than ``factor``.

    Unknown paces (no other peer, or no rate measured yet) make nobody a straggler. The rates are what peers
    report: the lower median and finite values only, so one peer claiming a huge pace cannot make the
    others stragglers (with two others, the plain median would be the mean of the liar's and an honest one).
    """
    rates = [r for r in other_rates if 0 < r < math.inf]
    if not rates or not 0 < own_rate < math.inf:
        return False
    return own_rate * factor < statistics.median_low(rates)


def training_progress(record: Any) -> LocalTrainingProgress | None:
    """A training peer's progress record, parsed; None for a client, an empty or an unreadable one."""
    if getattr(record, "value", None) is None:
        return None
    try:
        progress = LocalTrainingProgress.parse_obj(record.value)
    except Exception:  # the DHT's schema validates records on store; a bad one tells nothing
        return None
    return None if progress.client_mode else progress


def training_epoch(record: Any) -> int | None:
    progress = training_progress(record)
    return None if progress is None else int(progress.epoch)


def trusted_records(records: Any) -> Any:
    """``records`` (peer key -> DHT record) without those of training peers ahead of the median epoch.

    The median is the upper one, so an even split (half the swarm has stepped) moves on; a minority cannot
    move the swarm's epoch (see the module docstring). Anything that is not a dict passes unchanged."""
    if not isinstance(records, dict):
        return records
    epochs = {key: training_epoch(record) for key, record in records.items()}
    known = [e for e in epochs.values() if e is not None]
    if len(known) < 3:
        return records
    cap = statistics.median_high(known)
    return {key: record for key, record in records.items() if epochs[key] is None or epochs[key] <= cap}
