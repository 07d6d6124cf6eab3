"""The post-round agreement rule: apply only what a full group agrees on; a member out of step loads state."""

import time
from types import SimpleNamespace

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from node.swarm.agreement import (FAILED, Outcome, Record, RoundAgreement, decide, group_tag, out_of_step,
                                  parse_record, sketch, sketches_match)

GROUP = ["a", "b", "c", "d"]


def _tensors(seed):
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(1000, generator=gen), torch.randn(7, 9, generator=gen)]


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**31 - 1))
def test_round_off_matches_but_a_partial_average_does_not(seed):
    full = _tensors(seed)
    rounded = [t + t.abs() * 1e-7 * torch.randn(t.shape) for t in full]  # `local + (avg - local)` round-off
    partial = [t.clone() for t in full]
    partial[0][200:450] += 0.5  # a quarter of one tensor kept its local value
    assert sketches_match(sketch(full), sketch(rounded))
    assert not sketches_match(sketch(full), sketch(partial))


def _records(sketches, **extra):
    return {p: (v if v is None or v == FAILED else Record(v, **extra)) for p, v in sketches.items()}


def test_full_agreement_applies():
    s = sketch(_tensors(0))
    assert decide("a", GROUP, _records({p: s for p in GROUP})).outcome is Outcome.APPLY


def test_applying_needs_every_member_s_record():
    s = sketch(_tensors(0))
    records = _records({"a": s, "b": s, "c": s})
    assert decide("a", GROUP, records, final=False) is None  # "d" may yet report a failure: keep waiting
    verdict = decide("a", GROUP, records)  # the timeout
    assert verdict.outcome is Outcome.DISCARD and verdict.reason == "missing" and verdict.missing == ("d",)


def test_one_liar_cannot_block_the_majority_and_the_odd_one_out_loads_state():
    good, bad = sketch(_tensors(0)), sketch(_tensors(1))
    records = _records({"a": good, "b": good, "c": good, "d": bad})
    assert decide("a", GROUP, records).outcome is Outcome.APPLY
    assert decide("d", GROUP, records).outcome is Outcome.LOAD_STATE


def test_a_member_missing_a_partition_loads_state_while_the_majority_applies():
    s = sketch(_tensors(0))
    records = {**_records({"a": s, "b": s, "c": s}), "d": Record(sketch(_tensors(1)), complete=False)}
    assert decide("a", GROUP, records).outcome is Outcome.APPLY
    verdict = decide("d", GROUP, records)
    assert verdict.outcome is Outcome.LOAD_STATE and verdict.reason == "incomplete-here"


def test_no_majority_discards():
    s = [sketch(_tensors(i)) for i in range(4)]
    records = _records(dict(zip(GROUP, s)))
    assert {decide(p, GROUP, records).outcome for p in GROUP} == {Outcome.DISCARD}


def test_survivors_of_a_dead_member_discard_without_waiting_for_it():
    # every survivor misses the dead member's partition: once no majority can form, the round is decided
    group = ["a", "b", "c", "d", "e"]
    records = {p: Record(sketch(_tensors(i)), complete=False) for i, p in enumerate("abc")}
    verdict = decide("a", group, records, final=False)
    assert verdict is not None and verdict.outcome is Outcome.DISCARD and verdict.missing == ("d", "e")
    assert decide("a", group, dict(list(records.items())[:2]), final=False) is None  # 2 of 5: a majority may form


def test_a_failed_round_here_or_elsewhere_discards():
    s = sketch(_tensors(0))
    assert decide("a", GROUP, {}).reason == "failed-here"
    # a member that reports the round broken settles it at once, whoever else reported
    verdict = decide("a", GROUP, {"a": Record(s), "b": FAILED}, final=False)
    assert verdict.outcome is Outcome.DISCARD and verdict.reason == "failed-elsewhere" and verdict.missing == ("b",)


def test_records_from_peers_are_parsed_strictly():
    s = sketch(_tensors(0))
    assert parse_record({"ok": True, "sketch": s}) == Record(s)
    assert parse_record({"ok": True, "sketch": s, "epoch": 7, "params": s}) == Record(s, 7, s)
    assert parse_record({"ok": True, "sketch": s, "complete": False}) == Record(s, complete=False)
    assert parse_record({"ok": True, "sketch": s, "complete": "no"}) is None
    assert parse_record({"ok": True, "sketch": s, "epoch": -1}) is None
    assert parse_record({"ok": True, "sketch": s, "epoch": True}) is None
    assert parse_record({"ok": True, "sketch": s, "params": s[:-1]}) is None
    assert parse_record({"ok": True, "sketch": s[:-1]}) is None
    assert parse_record({"ok": True, "sketch": [float("nan")] * len(s)}) is None
    assert parse_record({"ok": False, "sketch": s}) == FAILED
    assert parse_record({"ok": "no"}) is None
    assert parse_record("garbage") is None
    assert group_tag(["b", "a"]) == group_tag(["a", "b"]) != group_tag(["a", "c"])


def test_a_member_whose_parameters_differ_from_the_majority_loads_the_next_state():
    result, params, behind = sketch(_tensors(0)), sketch(_tensors(1)), sketch(_tensors(2))
    records = {p: Record(result, 8, params) for p in "abc"} | {"d": Record(result, 7, behind)}
    verdict = out_of_step("d", GROUP, records)
    assert verdict is not None and verdict.outcome is Outcome.LOAD_STATE and verdict.load_epoch == 9
    assert all(out_of_step(p, GROUP, records) is None for p in "abc")
    # no strict majority (2 of 4), or nothing known about parameters: nobody is told to load
    split = {"a": Record(result, 8, params), "b": Record(result, 8, params), "c": Record(result, 8, behind),
             "d": Record(result, 8, behind)}
    assert all(out_of_step(p, GROUP, split) is None for p in GROUP)
    assert out_of_step("d", GROUP, {p: Record(result) for p in GROUP}) is None
    # a group of two: the one at the earlier epoch with other parameters is the one out of step
    pair = {"a": Record(result, 8, params), "b": Record(result, 7, behind)}
    assert out_of_step("b", ["a", "b"], pair).load_epoch == 9 and out_of_step("a", ["a", "b"], pair) is None


class _FakeDHT:
    """The two DHT calls RoundAgreement makes, on a dict shared by the 'peers'."""

    def __init__(self, me, table):
        self.peer_id = SimpleNamespace(to_base58=lambda: me)
        self.table = table

    def store(self, key, subkey, value, expiration_time):
        self.table.setdefault(key, {})[subkey] = SimpleNamespace(value=value)

    def get(self, key, latest=True):
        return SimpleNamespace(value=dict(self.table[key])) if key in self.table else None


def test_a_round_broken_for_everyone_is_reported_and_ends_everyone_s_wait_at_once():
    table, tensors = {}, _tensors(0)
    agreements = {p: RoundAgreement(_FakeDHT(p, table), "run", timeout=10.0, poll=0.01) for p in GROUP}
    agreements["b"].publish("r1", GROUP, Record(sketch(tensors)))
    assert agreements["c"].check("r1", GROUP, tensors, reduced_all=False).reason == "partial-here"
    started = time.monotonic()
    verdict = agreements["a"].check("r1", GROUP, tensors)  # "d" (dead) never reports; "c" reported a failure
    assert verdict.outcome is Outcome.DISCARD and verdict.reason == "failed-elsewhere"
    assert time.monotonic() - started < 1.0  # not the 10 s timeout


def test_a_peer_out_of_step_learns_it_from_the_round_records():
    table, tensors, params, older = {}, _tensors(0), _tensors(1), _tensors(2)
    agreements = {p: RoundAgreement(_FakeDHT(p, table), "run", timeout=5.0, poll=0.01) for p in GROUP}
    for p in "abc":
        agreements[p].publish("r1", GROUP, Record(sketch(tensors), 12, sketch(params)))
    verdict = agreements["d"].check("r1", GROUP, tensors, epoch=11, params=older)
    assert verdict.outcome is Outcome.LOAD_STATE and verdict.reason == "out-of-step" and verdict.load_epoch == 13
    assert agreements["a"].check("r1", GROUP, tensors, epoch=12, params=params).outcome is Outcome.APPLY
