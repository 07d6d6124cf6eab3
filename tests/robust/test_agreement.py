"""The post-round agreement rule (pure part): apply only what a full group agrees on."""

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from node.swarm.agreement import Outcome, decide, group_tag, parse_record, sketch, sketches_match

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


def test_full_agreement_applies():
    s = sketch(_tensors(0))
    assert decide("a", s, GROUP, {p: s for p in GROUP}).outcome is Outcome.APPLY


def test_a_missing_member_discards_the_round_for_everyone():
    s = sketch(_tensors(0))
    verdict = decide("a", s, GROUP, {"a": s, "b": s, "c": s})
    assert verdict.outcome is Outcome.DISCARD and verdict.missing == ("d",)


def test_one_liar_cannot_block_the_majority_and_the_odd_one_out_loads_state():
    good, bad = sketch(_tensors(0)), sketch(_tensors(1))
    records = {"a": good, "b": good, "c": good, "d": bad}
    assert decide("a", good, GROUP, records).outcome is Outcome.APPLY
    assert decide("d", bad, GROUP, records).outcome is Outcome.LOAD_STATE


def test_no_majority_discards():
    s = [sketch(_tensors(i)) for i in range(4)]
    records = dict(zip(GROUP, s))
    assert {decide(p, records[p], GROUP, records).outcome for p in GROUP} == {Outcome.DISCARD}


def test_a_failed_round_here_or_elsewhere_discards():
    s = sketch(_tensors(0))
    assert decide("a", None, GROUP, {}).reason == "failed-here"
    assert decide("a", s, GROUP, {"a": s, "b": s, "c": s, "d": None}).outcome is Outcome.DISCARD


def test_records_from_peers_are_parsed_strictly():
    s = sketch(_tensors(0))
    assert parse_record({"ok": True, "sketch": s}) == s
    assert parse_record({"ok": True, "sketch": s[:-1]}) is None
    assert parse_record({"ok": True, "sketch": [float("nan")] * len(s)}) is None
    assert parse_record({"ok": False, "sketch": s}) is None
    assert parse_record("garbage") is None
    assert group_tag(["b", "a"]) == group_tag(["a", "b"]) != group_tag(["a", "c"])
