"""Run manifests through the DHT: published by `run publish`, fetched and verified by `run show` and
`node start --manifest-from-dht`; a run id nobody serves, an unreachable peer and forged records are refused.

    .venv/bin/python -m pytest tests/run/test_run_dht.py -q      # starts p2p daemons: swarm tier
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from node.swarm.config import SwarmConfig
from node.swarm.dht import DHT, start_dht, visible_maddrs
from node.swarm.manifests import publish_manifest
from protocol.run_manifest import parse_signed_manifest, sign_manifest
from tests.run.conftest import create, hivenet, make_keystore
from tests.run.test_run_cli import FakeDaemon, error_lines, node_start  # noqa: F401  (a fixture used here)

pytestmark = [pytest.mark.swarm]

DHT_TIMEOUT = "20"  # seconds a lookup may take on a loaded machine before a test counts the run as unserved


@pytest.fixture(scope="module")
def bootstrap() -> Iterator[tuple[DHT, str]]:
    """A running DHT peer that holds the records; its first address is what the commands join through."""
    dht = start_dht(SwarmConfig(run_id="manifest-tests"))
    try:
        yield dht, visible_maddrs(dht)[0]
    finally:
        dht.shutdown()


def dead_peer() -> str:
    with socket.socket() as s:  # a port that nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"/ip4/127.0.0.1/tcp/{port}/p2p/QmejZQZjXtcQMK8B2AtAUedXmGvGtxj6s249P2c12AJ5Pw"


def test_a_published_manifest_is_fetched_verified_and_run_with(tmp_path: Path, bootstrap: tuple[DHT, str],
                                                              node_start: Any) -> None:
    _, peer = bootstrap
    creator = make_keystore(tmp_path)
    path = create(tmp_path, creator, "--max-epochs", "11", run_id="served")
    result = hivenet("run", "publish", "--manifest", str(path), "--initial-peers", peer)
    assert result.exit_code == 0, result.output
    shown = hivenet("run", "show", "--run-id", "served", "--initial-peers", peer, "--timeout", DHT_TIMEOUT, "--json")
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.stdout)["content_id"] == parse_signed_manifest(path.read_bytes()).content_id
    result, daemon = node_start("--run-id", "served", "--manifest-from-dht", "--initial-peers", peer,
                                "--manifest-timeout", DHT_TIMEOUT)
    assert result.exit_code == 0, result.output
    assert daemon is not None and daemon.cfg.train().max_epochs == 11 and daemon.cfg.swarm.initial_peers == (peer,)


def test_a_run_id_nobody_serves_is_one_error_after_the_timeout(bootstrap: tuple[DHT, str], node_start: Any) -> None:
    _, peer = bootstrap
    result = hivenet("run", "show", "--run-id", "nobody", "--initial-peers", peer, "--timeout", "2")
    assert result.exit_code == 2 and error_lines(result.output) == [
        "error: no peer served a manifest for run 'nobody' within 2 s; check the run id, "
        "or ask its creator to publish it (`hivenet run publish`)"]
    result, daemon = node_start("--run-id", "nobody", "--manifest-from-dht", "--initial-peers", peer,
                                "--manifest-timeout", "2")
    assert result.exit_code == 2 and daemon is None and "no peer served a manifest" in result.output


def test_an_unreachable_initial_peer_is_one_error_and_create_writes_nothing(tmp_path: Path) -> None:
    dead = dead_peer()
    keystore, password, _ = make_keystore(tmp_path)
    out = tmp_path / "m.json"
    result = hivenet("run", "create", "--run-id", "r1", "--keystore", str(keystore), "--password-file", str(password),
                     "--out", str(out), "--publish", "--initial-peers", dead)
    assert result.exit_code == 2 and not out.exists()
    lines = error_lines(result.output)
    assert len(lines) == 1 and "no initial peer answered" in lines[0] and dead in lines[0]


def test_forged_records_are_dropped_and_an_honest_one_still_found(tmp_path: Path, bootstrap: tuple[DHT, str]) -> None:
    dht, peer = bootstrap
    honest = parse_signed_manifest(create(tmp_path, make_keystore(tmp_path)).read_bytes())
    changed = honest.to_dict()
    changed["manifest"]["batch_size"] = 1  # type: ignore[index]
    assert publish_manifest(dht, "r1", "0x" + "66" * 20, json.dumps(changed).encode(), ttl=600, timeout=15)
    assert publish_manifest(dht, "r1", "0x" + "77" * 20, b"\x00garbage", ttl=600, timeout=15)
    result = hivenet("run", "show", "--run-id", "r1", "--initial-peers", peer, "--timeout", DHT_TIMEOUT)
    assert result.exit_code == 2 and "no valid manifest of run 'r1'" in result.output and "refused" in result.output
    assert publish_manifest(dht, "r1", honest.creator, honest.to_json(), ttl=600, timeout=15)
    result = hivenet("run", "show", "--run-id", "r1", "--initial-peers", peer, "--timeout", DHT_TIMEOUT, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["content_id"] == honest.content_id


def test_two_creators_claiming_one_run_need_the_trusted_one_named(tmp_path: Path, bootstrap: tuple[DHT, str]) -> None:
    dht, peer = bootstrap
    first = parse_signed_manifest(create(tmp_path, make_keystore(tmp_path, "a"), run_id="contested", out="a.json")
                                  .read_bytes())
    second = sign_manifest(first.manifest.model_copy(update={"batch_size": 2}), make_keystore(tmp_path, "b")[2].eth_private_key)
    for signed in (first, second):
        assert publish_manifest(dht, "contested", signed.creator, signed.to_json(), ttl=600, timeout=15)
    result = hivenet("run", "show", "--run-id", "contested", "--initial-peers", peer, "--timeout", DHT_TIMEOUT)
    assert result.exit_code == 2 and "2 different manifests claim run 'contested'" in result.output
    result = hivenet("run", "show", "--run-id", "contested", "--initial-peers", peer, "--timeout", DHT_TIMEOUT,
                     "--creator", second.creator, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["content_id"] == second.content_id
