"""The testnet's peer entry point turns fault options into hooks that reach the node; the node command has none."""

from __future__ import annotations

from pathlib import Path

import pytest

from node.cli import node_cmd
from node.hooks import NO_HOOKS
from node.testnet.attacks import Faults, SignFlip
from node.cli.testnet_peer import main, parse_faults


def test_fault_options_become_hooks_and_the_rest_goes_to_node_start(tmp_path):
    hooks, rest = parse_faults(["--run-id", "r", "--attack", "sign-flip", "--dump-rounds", str(tmp_path),
                                "--expected-peers", "3", "--send-delay", "0.5"])
    assert isinstance(hooks, Faults) and isinstance(hooks.attack, SignFlip)
    assert hooks.round_dump_dir == Path(tmp_path) and hooks.send_delay == 0.5 and hooks.slowdown is None
    assert rest == ["--run-id", "r", "--expected-peers", "3"]
    assert parse_faults(["--run-id", "r"]) == (NO_HOOKS, ["--run-id", "r"])


def test_the_hooks_reach_the_daemon_only_through_the_entry_point(monkeypatch):
    seen = []
    monkeypatch.setattr(node_cmd, "run_node", lambda cfg, progress, hooks: seen.append((cfg.swarm.run_id, hooks)))
    with pytest.raises(SystemExit) as done:
        main(["--run-id", "faulty", "--attack", "label-flip"])
    assert done.value.code == 0
    (run_id, hooks), = seen
    assert run_id == "faulty" and isinstance(hooks, Faults) and hooks.attack is not None
    assert hooks.attack.name == "label-flip"


def test_an_unknown_attack_is_refused_by_name():
    from protocol.errors import ConfigError

    with pytest.raises(ConfigError, match="unknown attack 'nope'"):
        parse_faults(["--attack", "nope"])
