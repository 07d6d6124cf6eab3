"""Reward policy: how one epoch's emission is split between verified compute and vetted data.

    policy = ProportionalPolicy(compute_bps=7000)          # 70 % to compute, 30 % to data
    split = policy.split(emission + carry, compute={"0xa..": 640}, data={"0xd..": 640})
    split.rewards, split.carry                               # integer token units

Rules (integer arithmetic throughout, amounts in the token's base units):

* the pot (emission plus what the previous epoch carried) is cut into a compute pool,
  ``pot * compute_bps // 10_000``, and a data pool, the rest; when one side has no credits
  its pool goes to the other side, when neither has any nothing is paid and all carries;
* within a pool each account gets ``pool * credit // total_credit`` (floor);
* the **remainder rule**: what the floors leave (less than one unit per account) is not
  handed out by rounding but carried into the next epoch's pot. So
  ``sum(rewards) + carry == pot`` exactly, and splitting one identity's credit across
  several can never earn more (``floor(a) + floor(b) <= floor(a + b)``): Sybil-neutral;
* rewards are never negative and never decrease when an account's credit grows;
* credits are whatever the validator verified; ``cap`` bounds any single account's
  credit per epoch (self-reported counts never count beyond what the assignment allows).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass

BPS = 10_000


@dataclass(frozen=True)
class Split:
    rewards: dict[str, int]  # account -> tokens this epoch (accounts with 0 are left out)
    carry: int  # tokens not handed out, added to the next epoch's pot

    @property
    def paid(self) -> int:
        return sum(self.rewards.values())


class RewardPolicy(ABC):
    """Turns an epoch's pot and verified credits into per-account rewards."""

    @abstractmethod
    def split(self, pot: int, compute: Mapping[str, int], data: Mapping[str, int]) -> Split:
        """Rewards of ``pot`` tokens for compute credits and data credits (both by account)."""


def proportional(pool: int, weights: Mapping[str, int]) -> dict[str, int]:
    """``pool * w // sum(w)`` per account with a positive weight (floors; the caller keeps the rest)."""
    total = sum(w for w in weights.values() if w > 0)
    if pool <= 0 or total == 0:
        return {}
    out = {}
    for account, w in weights.items():
        if w > 0:
            amount = pool * w // total
            if amount > 0:
                out[account] = amount
    return out


def _merge(a: Mapping[str, int], b: Mapping[str, int]) -> dict[str, int]:
    out = dict(a)
    for k, v in b.items():
        out[k] = out.get(k, 0) + v
    return out


@dataclass(frozen=True)
class ProportionalPolicy(RewardPolicy):
    compute_bps: int = 7000  # share of the pot for compute, in basis points; the rest pays data owners
    cap: int | None = None  # per-account credit ceiling per epoch (None: no ceiling)

    def __post_init__(self) -> None:
        if not 0 <= self.compute_bps <= BPS:
            raise ValueError(f"compute_bps must be in [0, {BPS}], got {self.compute_bps}")

    def _credits(self, credits: Mapping[str, int]) -> dict[str, int]:
        out = {}
        for account, c in credits.items():
            c = max(0, int(c))
            out[account] = c if self.cap is None else min(c, self.cap)
        return out

    def split(self, pot: int, compute: Mapping[str, int], data: Mapping[str, int]) -> Split:
        if pot < 0:
            raise ValueError(f"pot must be non-negative, got {pot}")
        compute_w, data_w = self._credits(compute), self._credits(data)
        has_compute, has_data = sum(compute_w.values()) > 0, sum(data_w.values()) > 0
        compute_pool = pot * self.compute_bps // BPS
        if not has_data:
            compute_pool = pot if has_compute else 0
        elif not has_compute:
            compute_pool = 0
        data_pool = pot - compute_pool if has_data else 0
        rewards = _merge(proportional(compute_pool, compute_w), proportional(data_pool, data_w))
        paid = sum(rewards.values())
        return Split(rewards=rewards, carry=pot - paid)


def accumulate(cumulative: Mapping[str, int], rewards: Mapping[str, int]) -> dict[str, int]:
    """Cumulative rewards per account after adding one epoch's (what the Merkle tree holds)."""
    return _merge({k.lower(): v for k, v in cumulative.items()}, {k.lower(): v for k, v in rewards.items()})
