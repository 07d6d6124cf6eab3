"""Scenario files are a trust boundary: malformed ones are refused before anything starts, naming the line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from node.testnet.checks import check_expectations
from node.testnet.scenario import ScenarioError, load_scenario, parse_scenario

SHIPPED = Path(__file__).resolve().parents[2] / "node" / "testnet" / "scenarios"

HEAD = """name = "t"
[network]
peers = 3
validators = 1
"""


def _error(text: str) -> str:
    with pytest.raises(ScenarioError) as e:
        parse_scenario(text, "s.toml")
    return str(e.value)


def test_every_shipped_scenario_parses_with_events_sorted_and_the_five_are_there():
    names = sorted(p.stem for p in SHIPPED.glob("*.toml"))
    assert {"happy", "churn", "byzantine", "poisoned-shard", "chain-outage"} <= set(names)
    for path in SHIPPED.glob("*.toml"):
        s = load_scenario(path)
        assert s.name == path.stem and s.expectations, path
        assert s.network.n_layer <= 2 and s.network.epochs <= 12  # CI-sized
    churn = load_scenario(SHIPPED / "churn.toml")
    assert [e.action for e in churn.events] == ["kill", "restart", "partition"]
    assert churn.total_peers == 3 and churn.events[2].duration == 10
    joined = parse_scenario(HEAD + '[[events]]\naction = "kill"\npeer = 3\nafter_epoch = 2\n'
                            '[[events]]\naction = "add_peer"\nafter_epoch = 1\n')
    assert [e.action for e in joined.events] == ["add_peer", "kill"] and joined.total_peers == 4  # ordered by trigger


@pytest.mark.parametrize("body, line, words", [
    # unknown event
    ('[[events]]\naction = "explode"\npeer = 1\nat = 3\n', 6, "must be one of kill, restart"),
    # bad time: negative, a string, both triggers, none
    ('[[events]]\naction = "kill"\npeer = 1\nat = -5\n', 8, "between 0 and"),
    ('[[events]]\naction = "kill"\npeer = 1\nat = "soon"\n', 8, "must be a number"),
    ('[[events]]\naction = "kill"\npeer = 1\nat = 3\nafter_epoch = 2\n', 8, "exactly one of at"),
    ('[[events]]\naction = "kill"\npeer = 1\n', 6, "exactly one of at"),
    # missing peer: out of range, absent, only after a later add_peer
    ('[[events]]\naction = "kill"\npeer = 7\nat = 3\n', 7, "peer 7 does not exist"),
    ('[[events]]\naction = "restart"\nat = 3\n', 5, "needs peer = INDEX"),
    ('[[events]]\naction = "kill"\npeer = 3\nat = 1\n[[events]]\naction = "add_peer"\nat = 9\n', 7, "peer 3 does not exist"),
    # unknown keys, wrong types, capabilities not switched on
    ('[[events]]\naction = "kill"\npeer = 1\nat = 3\npeers = 2\n', 9, "unknown key"),
    ('[[events]]\naction = "chain_stop"\nat = 3\n', 6, 'chain = "anvil"'),
    ('[[events]]\naction = "poisoned_shard"\nat = 30\n', 7, "use at = 0"),
    ('[[events]]\naction = "byzantine"\npeer = 1\nat = 3\n', 5, "needs attack"),
    ('[[expect]]\ncheck = "tokens"\npeer = 9\nmin = 1\n', 7, "peer 9 does not exist"),
    ('[[expect]]\ncheck = "final_loss"\n', 5, "needs min and/or max"),
    ('[[expect]]\ncheck = "final_loss"\nmin = 3\nmax = 1\n', 7, "nothing can pass"),
], ids=["unknown-event", "negative-time", "time-not-a-number", "two-triggers", "no-trigger", "peer-out-of-range",
        "peer-missing", "peer-added-later", "unknown-key", "chain-event-without-anvil", "late-shard", "byzantine-no-attack",
        "expect-missing-peer", "expect-no-bounds", "expect-min-above-max"])
def test_malformed_scenarios_are_rejected_naming_the_line(body, line, words):
    message = _error(HEAD + body)
    assert message.startswith(f"s.toml:{line}:"), message
    assert words in message, message


def test_top_level_and_network_errors_name_their_line():
    assert _error('name = "t"\nfoo = 1\n').startswith("s.toml:2: top level foo: unknown key")
    assert _error('name = "t"\n[network]\npeers = 0\n').startswith("s.toml:3: [network] peers: must be between 1 and 16")
    assert _error('name = "t"\n[network]\npeers = 2\nbyzantine = [5]\n').startswith("s.toml:4:")
    assert "not valid TOML" in _error('name = "t"\n[network\n')
    assert "line 2" in _error('name = "t"\n[network\n')  # tomllib's own position
    assert _error(HEAD + "lr = 0\n").startswith("s.toml:5: [network] lr: must be between")
    assert _error(HEAD + 'lr = "fast"\n').startswith("s.toml:5: [network] lr: must be a number")


def test_network_lr_reaches_every_peer_and_defaults_to_the_tiny_models(tmp_path):
    from node.testnet.network import Testnet
    from node.testnet.runner import testnet_config

    def lr_args(text, peer):
        args = Testnet(testnet_config(parse_scenario(text, "s.toml"), tmp_path))._args(peer)
        return [args[i + 1] for i, a in enumerate(args) if a == "--lr"]

    assert lr_args(HEAD + "lr = 2e-3\n", 0) == lr_args(HEAD + "lr = 2e-3\n", 1) == ["0.002"]
    assert lr_args(HEAD, 0) == ["0.002"]  # the tiny model's, not the node's default (tuned for its larger model)


@pytest.mark.process
def test_cli_refuses_a_malformed_file_before_starting_anything(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text(HEAD + '\n[[events]]\naction = "kill"\npeer = 5\nafter_epoch = 2\n')
    run_dir = tmp_path / "run"
    result = subprocess.run([sys.executable, "-m", "node.cli", "testnet", "run", str(bad), "--run-dir", str(run_dir)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2, result.stderr
    assert f"error: {bad}:8: [[events]] #1 peer: peer 5 does not exist" in result.stderr
    assert not run_dir.exists()  # nothing started: no run directory, no peer


def test_an_impossible_expectation_fails_with_the_measured_value_and_the_bound():
    s = parse_scenario(HEAD + '[[expect]]\ncheck = "final_loss"\nmax = 0.01\n[[expect]]\ncheck = "tokens"\npeer = 1\n'
                       'min = 1e9\n[[expect]]\ncheck = "rounds"\nmin = 1\n', "s.toml")
    summary = {"val_loss_end": 4.2, "rounds": 5, "rewards": {"0xAB": {"role": "peer", "tokens": str(7 * 10**18)}}}
    messages = check_expectations(s, summary, {}, {"peer1": "0xab"}, set())
    assert messages == [
        "FAIL: s.toml:5: swarm final validation loss = 4.2, expected <= 0.01",
        "FAIL: s.toml:8: tokens of peer1 = 7, expected >= 1e+09",
        "ok: s.toml:12: averaging rounds = 5, expected >= 1",
    ]
