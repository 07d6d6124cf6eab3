"""The committed artifacts equal a fresh solc-js build, and forge's suite passes offline."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from node.ledger.artifacts import CONTRACT_NAMES, load_artifact
from node.ledger.contract_errors import BY_NAME
from node.ledger.revert import known_error_names

from .conftest import CONTRACTS, FORGE, require_tool


def test_artifacts_carry_compiler_and_settings() -> None:
    for name in CONTRACT_NAMES:
        data = json.loads((CONTRACTS.parent / "node" / "ledger" / "artifacts" / f"{name}.json").read_text())
        assert data["compiler"]["version"].startswith("0.8.30+")
        assert data["settings"]["evmVersion"] == "prague"
        assert len(load_artifact(name).bytecode) > 1000 and load_artifact(name).abi


def test_every_solidity_error_has_one_python_class() -> None:
    assert known_error_names() == set(BY_NAME)


@pytest.mark.chain
@pytest.mark.process  # node build.js: the pinned solc-js
def test_recompiling_reproduces_committed_artifacts() -> None:
    require_tool(CONTRACTS / "node_modules" / "solc")
    node = shutil.which("node")
    assert node, "node (Node.js) is needed to run the pinned solc-js"
    proc = subprocess.run([node, "build.js", "--check"], cwd=CONTRACTS, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.timeout(540)
@pytest.mark.chain
def test_forge_suite_passes_offline() -> None:
    require_tool(FORGE)
    proc = subprocess.run(
        [str(FORGE), "test", "--use", "./solc-wrapper", "--offline"],
        cwd=CONTRACTS, capture_output=True, text=True, timeout=500,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert "0 failed" in proc.stdout
    for invariant in (
        "invariant_totalClaimedNeverExceedsFunded",
        "invariant_noAccountBeyondFinalCumulative",
        "invariant_paidOutIsTheSumOfClaims",
        "invariant_reentrantReceiversNeverSucceed",
        "invariant_replayedOrCrossChainSignaturesRejected",
    ):
        assert f"[PASS] {invariant}" in proc.stdout
