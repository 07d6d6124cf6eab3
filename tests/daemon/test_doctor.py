"""Acceptance 4 (faults): `hivenet doctor` names a dead bootstrap address, an unreachable chain and a
missing contract, each with its fix; `--json` has the shape {"checks": [{"name","ok","detail","fix"}]}."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from node.config import load_config
from node.doctor import check_bootstrap, check_broker, check_chain, check_disk, check_listen, check_versions
from tests.daemon.helpers import deployed_chain, free_port, mosquitto

DEAD_PEER = "/ip4/127.0.0.1/tcp/{port}/p2p/QmaCpDMGvV2BGHeYERUEnRQAwe3N8SzbUtfsmvsqQLuvuJ"


@pytest.fixture(scope="module")
def chain(tmp_path_factory) -> tuple[str, Path]:
    with deployed_chain(tmp_path_factory.mktemp("chain")) as (url, deployment):
        yield url, deployment


def _missing_contract(deployment: Path, out: Path) -> Path:
    doc = json.loads(deployment.read_text())
    doc["ledger"] = "0x" + "11" * 20  # no code there
    out.write_text(json.dumps(doc))
    return out


def test_dead_bootstrap_address_is_named_with_its_fix():
    dead = DEAD_PEER.format(port=free_port())
    check, reachable = check_bootstrap(load_config(None, {}, {"swarm.initial_peers": [dead]}))
    assert not check.ok and dead in check.detail and "refused" in check.detail.lower()
    assert "initial_peers" in check.fix and reachable == []
    ok, _ = check_bootstrap(load_config(None, {}, {}))
    assert ok.ok and "new swarm" in ok.detail


def test_unreachable_chain_is_named_with_its_fix():
    url = f"http://127.0.0.1:{free_port()}"
    checks = check_chain(load_config(None, {}, {"ledger.rpc_url": url}))
    assert [c.name for c in checks] == ["chain"]
    assert not checks[0].ok and url in checks[0].detail and "anvil" in checks[0].fix and "rpc_url" in checks[0].fix


@pytest.mark.chain
def test_missing_contract_is_named_with_its_fix(chain, tmp_path):
    url, deployment = chain
    healthy = check_chain(load_config(None, {}, {"ledger.rpc_url": url, "ledger.deployment": deployment}))
    assert [(c.name, c.ok) for c in healthy] == [("chain", True), ("contracts", True)]
    broken = _missing_contract(deployment, tmp_path / "broken.json")
    checks = check_chain(load_config(None, {}, {"ledger.rpc_url": url, "ledger.deployment": broken}))
    contracts = {c.name: c for c in checks}["contracts"]
    assert not contracts.ok and "no ContributionLedger code at 0x1111" in contracts.detail
    assert "hivenet ledger deploy" in contracts.fix and str(broken) in contracts.fix
    absent = check_chain(load_config(None, {}, {"ledger.rpc_url": url, "ledger.deployment": tmp_path / "none.json"}))
    assert not absent[1].ok and "no deployment file" in absent[1].detail


@pytest.mark.broker
def test_other_checks_pass_here_and_say_what_they_saw(tmp_path):
    assert all(c.ok for c in check_versions())
    listen = check_listen(load_config(None, {}, {}))
    assert listen.ok and "loopback" in listen.detail
    bad = check_listen(load_config(None, {}, {"swarm.listen": ["not-a-multiaddr"]}))
    assert not bad.ok and "swarm.listen" in bad.fix
    disk = check_disk(load_config(None, {}, {"train.checkpoint": tmp_path / "deep" / "ck.pt"}))
    assert disk.ok and "GiB free" in disk.detail
    with mosquitto(tmp_path) as broker:
        assert check_broker(load_config(None, {}, {"telemetry.broker": f"mqtt://127.0.0.1:{broker.port}"})).ok
    gone = check_broker(load_config(None, {}, {"telemetry.broker": f"mqtt://127.0.0.1:{free_port()}"}))
    assert not gone.ok and "mosquitto" in gone.fix


@pytest.mark.chain
@pytest.mark.process
def test_doctor_cli_json_names_every_fault_and_exits_1(chain, tmp_path):
    url, deployment = chain
    dead = DEAD_PEER.format(port=free_port())
    out = subprocess.run(
        [sys.executable, "-m", "node.cli", "doctor", "--json", "--initial-peers", dead, "--rpc-url", url,
         "--deployment", str(_missing_contract(deployment, tmp_path / "broken.json")),
         "--broker", f"mqtt://127.0.0.1:{free_port()}"],
        capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert out.returncode == 1, out.stderr
    doc = json.loads(out.stdout)
    assert list(doc) == ["checks"]
    for check in doc["checks"]:
        assert set(check) == {"name", "ok", "detail", "fix"} and isinstance(check["ok"], bool)
        assert bool(check["fix"]) == (not check["ok"])  # every failure says what to do
    failed = {c["name"] for c in doc["checks"] if not c["ok"]}
    assert failed == {"bootstrap peers", "contracts", "broker"}
    assert {c["name"] for c in doc["checks"] if c["ok"]} >= {"python", "torch", "hivemind", "p2pd", "chain", "disk space"}
