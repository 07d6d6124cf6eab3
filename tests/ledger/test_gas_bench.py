"""bench/gas.py prints the agreed keys and the root ledger beats per-record storage."""

from __future__ import annotations

import importlib.util
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench" / "gas.py"


def test_gas_bench_small_run() -> None:
    spec = importlib.util.spec_from_file_location("gas_bench", BENCH)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)

    result = module.run(10, seed=1)

    assert {"bench", "peers", "ledger_gas_per_peer_epoch", "naive_gas_per_peer_epoch", "ratio", "claim_gas"} <= set(result)
    assert result["bench"] == "gas" and result["peers"] == 10
    assert result["ratio"] == round(result["naive_gas_per_peer_epoch"] / result["ledger_gas_per_peer_epoch"], 1)
    assert result["ratio"] > 1
    assert 21_000 < result["claim_gas"] <= 80_000
