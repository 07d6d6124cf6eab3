"""After each averaging round, the group checks that every member holds the same result.

hivemind can report a successful round while survivors hold a partial average:
when a peer dies mid all-reduce, the others keep their *local* values for the
partition it was reducing, and parts it sent before dying are in some averages
(DESIGN.md: ~24% of elements unaveraged on 2 of 3 survivors). So each member
publishes a record of the round in the DHT under the round's group id (a
sketch of its averaged tensors, and whether it got every partition back),
reads the others' and decides:

- every member published a record and a strict majority of the group (this
  peer included) got every partition back and holds the same result:
  **apply** the round;
- the same, with this peer outside that majority (its result differs, or a
  reducer never returned a partition to it): **discard and load state**;
- a member reports the round broken for everyone (it reduced its partition
  without some sender's parts: every member got that partition without
  them), or no such majority can form any more whatever the silent members
  report: **discard** the round at once — no gradient information is applied
  (the same zero update on every member keeps their parameters identical),
  and the next round averages the survivors again;
- otherwise wait for the silent members, and **discard** after ``timeout``.

When a member dies mid-round every survivor misses its partition, so no
majority can form and the survivors discard as soon as a majority of them
reported, without waiting out the timeout for the dead member's record.
Applying needs every member's record: a member that dropped a sender is the
only one that knows the round is not the aggregate of its whole group.

Each record also carries the member's epoch and a sketch of the parameters the
round's update goes onto. A member whose parameters differ from those of a
strict majority of the group (``out_of_step``) also **loads state** (to the
majority's epoch after this round), whatever the verdict on the gradients:
applying the same update to other parameters keeps them other for good. That
is how a peer that fell behind (it missed a round, or loaded a state older than
the swarm's) finds out, in the first round it shares with the others.

``sketch``, ``decide`` and ``out_of_step`` are pure; ``RoundAgreement`` does the DHT part. ``Outcome`` and
``Verdict`` are declared with the rest of the round policy (``node.swarm.policy``).
A sketch is per-chunk sums (signed, absolute, squared) of the flattened
tensors: one pass, no randomness, and a partial average changes some chunk's
sums far beyond float round-off (members add the reducer's delta back to their
own local values, so results differ by round-off, never bit for bit).
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from node.swarm.policy import Outcome, Verdict

SKETCH_CHUNKS = 32  # chunks of the flat vector; a partial average touches whole partitions, so a few suffice
SKETCH_RTOL = 1e-4  # float32 round-off of `local + (average - local)` is ~1e-7 relative; a partial average is ~1
_RECORD_TTL = 300.0  # seconds an agreement record lives in the DHT


FAILED = "failed"  # a parsed record: that member's round is broken for the whole group (see ``parse_record``)


@dataclass(frozen=True)
class Record:
    """One member's published account of a round."""

    result: list[float]  # sketch of the averaged tensors it got
    epoch: int | None = None  # its local epoch during the round
    params: list[float] | None = None  # sketch of its parameters (those the round's update goes onto)
    complete: bool = True  # False: a reducer never returned its partition to this member (its result is unusable)


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


def _parse_sketch(raw: Any, chunks: int) -> list[float] | None:
    if not isinstance(raw, (list, tuple)) or len(raw) != 3 * chunks:
        return None
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in raw):
        return None
    return [float(v) for v in raw]


def parse_record(value: Any, chunks: int = SKETCH_CHUNKS) -> Record | str | None:
    """A peer's published record -> a ``Record``, ``FAILED`` for a reported failure, None for anything malformed.
    ``epoch`` and ``params`` are optional (None when absent); present but malformed, they void the record."""
    if isinstance(value, dict) and value.get("ok") is False:
        return FAILED
    if not isinstance(value, dict) or value.get("ok") is not True:
        return None
    result = _parse_sketch(value.get("sketch"), chunks)
    if result is None:
        return None
    epoch = value.get("epoch")
    if epoch is not None and (not isinstance(epoch, int) or isinstance(epoch, bool) or not 0 <= epoch < 2**53):
        return None
    params = None
    if value.get("params") is not None:
        params = _parse_sketch(value["params"], chunks)
        if params is None:
            return None
    complete = value.get("complete", True)
    if not isinstance(complete, bool):
        return None
    return Record(result, epoch, params, complete)


def decide(me: str, group: Sequence[str], records: Mapping[str, Record | str | None],
           final: bool = True) -> Verdict | None:
    """The verdict of peer ``me`` on a round from the ``group`` members' records (``records[me]`` is its own;
    a ``Record``, ``FAILED``, None or absent: nothing valid yet). None while it cannot be decided yet and
    ``final`` is False (more records may come)."""
    mine = records.get(me)
    if not isinstance(mine, Record):
        return Verdict(Outcome.DISCARD, "failed-here")
    failed = tuple(p for p in group if p != me and records.get(p) == FAILED)
    if failed:
        return Verdict(Outcome.DISCARD, "failed-elsewhere", missing=failed)
    n = len(group)
    silent = tuple(p for p in group if not isinstance(records.get(p), Record))
    usable = {p: r for p, r in records.items() if p in group and isinstance(r, Record) and r.complete}
    largest = 0
    for r in usable.values():
        agree = {q for q, other in usable.items() if sketches_match(r.result, other.result)}
        largest = max(largest, len(agree))
        if 2 * len(agree) > n and not silent:
            others = tuple(sorted(set(group) - agree))
            if me in agree:
                return Verdict(Outcome.APPLY, "agreed", disagreeing=others)
            return Verdict(Outcome.LOAD_STATE, "minority" if mine.complete else "incomplete-here", disagreeing=others)
    if 2 * (largest + len(silent)) <= n:  # no majority can form, whatever the silent members report
        return Verdict(Outcome.DISCARD, "no-majority" if mine.complete else "incomplete-here", missing=silent)
    if final:
        return Verdict(Outcome.DISCARD, "missing", missing=silent)
    return None


def out_of_step(me: str, group: Sequence[str], records: Mapping[str, Record]) -> Verdict | None:
    """A LOAD_STATE verdict when this peer's parameters (``records[me]``) are not the group's: a strict majority
    of ``group`` holds parameters matching each other but not this peer's or, when no such majority exists,
    parameters other than this peer's at a later epoch (in a group of two, the one behind is the one out of
    step). None when this peer is in step or nothing tells."""
    mine = records.get(me)
    if mine is None or mine.params is None:
        return None
    with_params = {p: r for p, r in records.items() if p in group and r.params is not None}
    n = len(group)
    for p, r in with_params.items():
        assert r.params is not None
        peers = [q for q, other in with_params.items() if sketches_match(r.params, other.params)]  # type: ignore[arg-type]
        if 2 * len(peers) > n:
            if me in peers:
                return None
            epochs = [e for e in (with_params[q].epoch for q in peers) if e is not None]
            return Verdict(Outcome.LOAD_STATE, "out-of-step", disagreeing=tuple(sorted(peers)),
                           load_epoch=max(epochs) + 1 if epochs else None)
    if mine.epoch is None:
        return None
    ahead = {p: r.epoch for p, r in with_params.items() if r.epoch is not None and r.epoch > mine.epoch
             and not sketches_match(mine.params, r.params)}  # type: ignore[arg-type]
    if ahead:
        return Verdict(Outcome.LOAD_STATE, "out-of-step", disagreeing=tuple(sorted(ahead)),
                       load_epoch=max(ahead.values()) + 1)
    return None


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

    def publish(self, round_id: str, group: Sequence[str], mine: Record | None) -> None:
        """Store this peer's record of the round, or (``mine`` None) that its round failed."""
        from hivemind.utils import get_dht_time

        value: dict[str, Any] = {"ok": mine is not None, "sketch": mine.result if mine else [], "group": group_tag(group)}
        if mine is not None and mine.epoch is not None:
            value["epoch"] = mine.epoch
        if mine is not None and mine.params is not None:
            value["params"] = mine.params
        if mine is not None and not mine.complete:
            value["complete"] = False
        self.dht.store(self.key(round_id), subkey=self.me, value=value, expiration_time=get_dht_time() + _RECORD_TTL)

    def collect(self, round_id: str, group: Sequence[str]) -> dict[str, Record | str | None]:
        """The group members' parsed records as the DHT has them now (a record naming other members is
        malformed for this round: treated as no report)."""
        tag = group_tag(group)
        found = self.dht.get(self.key(round_id), latest=True)
        entries = found.value if found is not None and isinstance(found.value, dict) else {}
        values = {p: getattr(entries.get(p), "value", None) for p in group if p in entries}
        return {p: parse_record(v) for p, v in values.items() if isinstance(v, dict) and v.get("group") == tag}

    def member_epoch(self, round_id: str, group: Sequence[str], timeout: float) -> int | None:
        """The highest epoch the other members of a round report, once most of them did (or after ``timeout``
        s); None when none did. A peer that tagged along loads the state those members move on to."""
        deadline = time.monotonic() + timeout
        others = [p for p in group if p != self.me]
        while True:
            records = [r for p, r in self.collect(round_id, group).items() if p != self.me and isinstance(r, Record)]
            if 2 * len(records) > len(others) or time.monotonic() >= deadline:
                epochs = [r.epoch for r in records if r.epoch is not None]
                return max(epochs) if epochs else None
            time.sleep(self.poll)

    def check(self, round_id: str, group: Sequence[str], tensors: Sequence[torch.Tensor] | None,
              complete: bool = True, reduced_all: bool = True, epoch: int | None = None,
              params: Sequence[torch.Tensor] | None = None) -> Verdict:
        """Publish this peer's record, then read the group's until the round is decided or ``timeout`` s passed.

        ``tensors`` None: this peer's round failed (nothing is published: a failed round has no group id; the
        members see this peer silent). ``complete`` False: a reducer never returned its partition here.
        ``reduced_all`` False: this peer reduced its partition without some sender's parts, which breaks the
        round for every member: it publishes a failure and discards at once. ``epoch`` and ``params`` (this
        peer's) let the group tell a member that is out of step.
        """
        if tensors is None:
            return Verdict(Outcome.DISCARD, "failed-here")
        if not reduced_all:
            self.publish(round_id, group, None)
            return Verdict(Outcome.DISCARD, "partial-here")
        mine = Record(sketch(tensors), epoch, sketch(params) if params is not None else None, complete)
        self.publish(round_id, group, mine)
        deadline = time.monotonic() + self.timeout
        while True:
            records = {**self.collect(round_id, group), self.me: mine}
            verdict = decide(self.me, group, records, final=time.monotonic() >= deadline)
            if verdict is not None:
                break
            time.sleep(self.poll)
        lagging = out_of_step(self.me, group, {p: r for p, r in records.items() if isinstance(r, Record)})
        return lagging or verdict
