"""After each averaging round, the group checks that every member holds the same result.

hivemind can report a successful round while survivors hold a partial average:
when a peer dies mid all-reduce, the others keep their *local* values for the
partition it was reducing, and parts it sent before dying are in some averages
(DESIGN.md: ~24% of elements unaveraged on 2 of 3 survivors). So each member
publishes a sketch of its averaged tensors in the DHT under the round's group
id, waits for the others' and decides:

- every member published and a strict majority (counting itself) matches it:
  **apply** the round;
- a member is missing or reports a failed round, or no majority exists:
  **discard** the round — apply no gradient information (the same zero update
  on every peer keeps their parameters identical); the next round averages
  the survivors again;
- a strict majority holds another result: this peer is the odd one out;
  **discard and load state** from the peers.

``sketch`` and ``decide`` are pure; ``RoundAgreement`` does the DHT part.
A sketch is per-chunk sums (signed, absolute, squared) of the flattened
tensors: one pass, no randomness, and a partial average changes some chunk's
sums far beyond float round-off (members add the reducer's delta back to their
own local values, so results differ by round-off, never bit for bit).
"""

from __future__ import annotations

import enum
import hashlib
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

SKETCH_CHUNKS = 32  # chunks of the flat vector; a partial average touches whole partitions, so a few suffice
SKETCH_RTOL = 1e-4  # float32 round-off of `local + (average - local)` is ~1e-7 relative; a partial average is ~1
_RECORD_TTL = 300.0  # seconds an agreement record lives in the DHT


class Outcome(enum.Enum):
    APPLY = "apply"  # the group agrees: use the averaged gradients
    DISCARD = "discard"  # apply no update from this round (everyone in the group does the same)
    LOAD_STATE = "load-state"  # this peer is the minority: discard, then load state from the peers


@dataclass(frozen=True)
class Verdict:
    outcome: Outcome
    reason: str  # agreed | failed-here | missing | failed-elsewhere | minority | no-majority
    missing: tuple[str, ...] = ()  # group members that published nothing (or a failure) in time
    disagreeing: tuple[str, ...] = ()  # members whose sketch differs from this peer's

    @property
    def agreed(self) -> bool:
        return self.outcome is Outcome.APPLY


def sketch(tensors: Sequence[torch.Tensor], chunks: int = SKETCH_CHUNKS) -> list[float]:
    """``[sum x, sum |x|, sum x^2]`` for each of ``chunks`` contiguous chunks of the flattened tensors."""
    flat = torch.cat([t.detach().reshape(-1).to(torch.float64) for t in tensors]) if tensors else torch.zeros(0)
    out: list[float] = []
    for part in torch.tensor_split(flat, chunks):
        out += [float(part.sum()), float(part.abs().sum()), float((part * part).sum())]
    return out


def sketches_match(a: Sequence[float], b: Sequence[float], rtol: float = SKETCH_RTOL) -> bool:
    """True when two sketches describe the same tensors up to float round-off."""
    if len(a) != len(b) or len(a) % 3:
        return False
    for i in range(0, len(a), 3):
        scale = max(abs(a[i + 1]), abs(b[i + 1]), 1e-30)  # sum |x| bounds the round-off of sum x and sum |x|
        sq_scale = max(abs(a[i + 2]), abs(b[i + 2]), 1e-30)
        if abs(a[i] - b[i]) > rtol * scale or abs(a[i + 1] - b[i + 1]) > rtol * scale:
            return False
        if abs(a[i + 2] - b[i + 2]) > rtol * sq_scale:
            return False
    return True


def group_tag(group: Sequence[str]) -> str:
    """Names a group by its members, so a record of another round under the same key is not mistaken for this one."""
    return hashlib.sha256("\n".join(sorted(group)).encode()).hexdigest()[:16]


def parse_record(value: Any, chunks: int = SKETCH_CHUNKS) -> list[float] | None:
    """A peer's published record -> its sketch, or None for a failed round or anything malformed."""
    if not isinstance(value, dict) or value.get("ok") is not True:
        return None
    raw = value.get("sketch")
    if not isinstance(raw, (list, tuple)) or len(raw) != 3 * chunks:
        return None
    if not all(isinstance(v, (int, float)) and math.isfinite(v) for v in raw):
        return None
    return [float(v) for v in raw]


def decide(me: str, mine: Sequence[float] | None, group: Sequence[str], records: Mapping[str, Sequence[float] | None]) -> Verdict:
    """The verdict of peer ``me`` on a round, from the sketches of the ``group`` members (None: failed or absent)."""
    if mine is None:
        return Verdict(Outcome.DISCARD, "failed-here")
    others = [p for p in group if p != me]
    missing = tuple(p for p in others if records.get(p) is None)
    if missing:
        return Verdict(Outcome.DISCARD, "missing", missing=missing)
    sketches = {me: list(mine), **{p: list(records[p]) for p in others}}  # type: ignore[arg-type]
    disagreeing = tuple(p for p in others if not sketches_match(mine, sketches[p]))
    n = len(group)
    if 2 * (n - len(disagreeing)) > n:
        return Verdict(Outcome.APPLY, "agreed", disagreeing=disagreeing)
    for p in disagreeing:  # is there a majority this peer is not part of?
        if 2 * sum(sketches_match(sketches[p], sketches[q]) for q in group) > n:
            return Verdict(Outcome.LOAD_STATE, "minority", disagreeing=disagreeing)
    return Verdict(Outcome.DISCARD, "no-majority", disagreeing=disagreeing)


class RoundAgreement:
    """Publishes this peer's sketch of a round under ``{run_id}_agreement_{round_id}`` and collects the group's.

    ``round_id`` is the all-reduce group's id (hex), the same on every member and new each round: not the
    local epoch, which differs between members when one lags (hivemind lets a peer trail by an epoch), and
    under which the same members' record of an earlier round would be read as this round's.
    """

    def __init__(self, dht: Any, run_id: str, timeout: float, poll: float = 0.1) -> None:
        self.dht, self.run_id, self.timeout, self.poll = dht, run_id, timeout, poll
        self.me = dht.peer_id.to_base58()

    def key(self, round_id: str) -> str:
        return f"{self.run_id}_agreement_{round_id}"

    def publish(self, round_id: str, group: Sequence[str], mine: list[float] | None) -> None:
        from hivemind.utils import get_dht_time

        value = {"ok": mine is not None, "sketch": mine or [], "group": group_tag(group)}
        self.dht.store(self.key(round_id), subkey=self.me, value=value, expiration_time=get_dht_time() + _RECORD_TTL)

    def collect(self, round_id: str, group: Sequence[str]) -> dict[str, list[float] | None]:
        """The group members' parsed records; waits until all are there or ``timeout`` s have passed."""
        deadline = time.monotonic() + self.timeout
        tag = group_tag(group)
        records: dict[str, list[float] | None] = {}
        while True:
            found = self.dht.get(self.key(round_id), latest=True)
            entries = found.value if found is not None and isinstance(found.value, dict) else {}
            values = {p: getattr(entries.get(p), "value", None) for p in group if p in entries}
            # a record naming other members is malformed for this round: treated as no report
            records = {p: parse_record(v) for p, v in values.items() if isinstance(v, dict) and v.get("group") == tag}
            if all(p in records for p in group) or time.monotonic() >= deadline:
                return records
            time.sleep(self.poll)

    def check(self, round_id: str, group: Sequence[str], tensors: Sequence[torch.Tensor] | None) -> Verdict:
        """Publish, collect, decide. ``tensors`` None means this peer's round failed (then nothing is published:
        a failed round has no group id, and the members see this peer missing)."""
        if tensors is None:
            return decide(self.me, None, group, {})
        mine = sketch(tensors)
        self.publish(round_id, group, mine)
        return decide(self.me, mine, group, self.collect(round_id, group))
