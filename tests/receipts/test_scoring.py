"""Properties of the reward policy: exact totals, non-negative, monotone, Sybil-neutral, capped."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from protocol.scoring import BPS, ProportionalPolicy, accumulate

accounts = st.sampled_from([f"0x{i:040x}" for i in range(1, 9)])
credits = st.dictionaries(accounts, st.integers(0, 10**6), max_size=6)
pots = st.integers(0, 10**24)
bps = st.integers(0, BPS)


@settings(max_examples=300, deadline=None)
@given(pots, credits, credits, bps)
def test_paid_plus_carry_is_the_pot_and_nothing_is_negative(pot, compute, data, share) -> None:
    split = ProportionalPolicy(share).split(pot, compute, data)
    assert split.paid + split.carry == pot
    assert split.carry >= 0 and all(v > 0 for v in split.rewards.values())
    if sum(compute.values()) + sum(data.values()) == 0:
        assert split.rewards == {} and split.carry == pot


@settings(max_examples=300, deadline=None)
@given(pots, credits, credits, bps)
def test_the_carry_is_less_than_one_unit_per_recipient_and_side(pot, compute, data, share) -> None:
    split = ProportionalPolicy(share).split(pot, compute, data)
    if sum(compute.values()) > 0 or sum(data.values()) > 0:
        assert split.carry <= len(compute) + len(data)


@settings(max_examples=300, deadline=None)
@given(pots, credits, credits, bps, accounts, st.integers(1, 10**6))
def test_more_verified_work_never_earns_less(pot, compute, data, share, who, extra) -> None:
    policy = ProportionalPolicy(share)
    before = policy.split(pot, compute, data).rewards.get(who, 0)
    more = {**compute, who: compute.get(who, 0) + extra}
    assert policy.split(pot, more, data).rewards.get(who, 0) >= before


@settings(max_examples=300, deadline=None)
@given(pots, credits, credits, bps, st.integers(1, 10**6), st.integers(0, 10**6), st.data())
def test_sybil_split_earns_no_more_than_one_identity(pot, compute, data, share, total, _, draw) -> None:
    """Acceptance 4: the same compute under two identities earns at most what one identity earns."""
    one, a, b = "0x" + "aa" * 20, "0x" + "ab" * 20, "0x" + "ac" * 20
    part = draw.draw(st.integers(0, total))
    policy = ProportionalPolicy(share)
    single = policy.split(pot, {**compute, one: total}, data).rewards.get(one, 0)
    split = policy.split(pot, {**compute, a: part, b: total - part}, data).rewards
    assert split.get(a, 0) + split.get(b, 0) <= single


@settings(max_examples=200, deadline=None)
@given(pots, credits, bps, st.integers(1, 1000))
def test_the_cap_bounds_self_reported_credit(pot, compute, share, cap) -> None:
    capped = ProportionalPolicy(share, cap=cap)
    clipped = {k: min(v, cap) for k, v in compute.items()}
    assert capped.split(pot, compute, {}) == ProportionalPolicy(share).split(pot, clipped, {})


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 10**24), st.integers(1, 10**6), st.integers(1, 10**6), bps)
def test_the_ratio_splits_the_pot_between_compute_and_data(pot, c, d, share) -> None:
    split = ProportionalPolicy(share).split(pot, {"0x" + "01" * 20: c}, {"0x" + "02" * 20: d})
    assert split.rewards.get("0x" + "01" * 20, 0) == pot * share // BPS
    assert split.rewards.get("0x" + "02" * 20, 0) == pot - pot * share // BPS
    assert split.carry == 0


def test_accumulate_adds_case_insensitively() -> None:
    assert accumulate({"0xAB": 5}, {"0xab": 2, "0xcd": 1}) == {"0xab": 7, "0xcd": 1}
