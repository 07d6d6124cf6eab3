"""bench/gas.py prints the agreed keys and the root ledger beats per-record storage."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

# The embedded chain runs in-process, but a gas bench of 1000 peers' claims on it is too slow for the fast tier.
pytestmark = [pytest.mark.chain]

BENCH = Path(__file__).resolve().parents[2] / "bench" / "gas.py"


def _bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gas_bench", BENCH)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_gas_bench_small_run() -> None:
    result = _bench().run(10, seed=1)

    assert {"bench", "peers", "ledger_gas_per_peer_epoch", "naive_gas_per_peer_epoch", "ratio", "claim_gas"} <= set(result)
    assert result["bench"] == "gas" and result["peers"] == 10
    assert result["ratio"] == round(result["naive_gas_per_peer_epoch"] / result["ledger_gas_per_peer_epoch"], 1)
    assert result["ratio"] > 1
    # Acceptance: one claim <= 80,000 gas, the first claim of a fresh peer included.
    assert result["claim_gas"] == max(result["first_claim_gas"], result["repeat_claim_gas"])
    assert 21_000 < result["repeat_claim_gas"] <= result["first_claim_gas"] <= 80_000


def test_claims_at_1000_peers_stay_within_80k_gas() -> None:
    """Acceptance 4 at its stated size: proof depth 10, a fresh peer's first claim and its next."""
    result = _bench().run(1000, seed=7, baseline=False)

    assert result["proof_depth"] == 10
    assert result["naive_gas_per_peer_epoch"] is None
    assert result["ledger_gas_per_peer_epoch"] <= 1_000
    assert result["repeat_claim_gas"] < result["first_claim_gas"] == result["claim_gas"] <= 80_000
