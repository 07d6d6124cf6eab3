"""Bad input at start-up: one line on stderr saying what to fix, a non-zero exit, nothing overwritten."""

import socket
import subprocess
import sys

import pytest
import torch

from node.train.checkpoint import save_checkpoint

pytestmark = [pytest.mark.swarm, pytest.mark.process]

START = [sys.executable, "-m", "node.cli", "node", "start", "--no-progress", "--device", "cpu",
         "--n-layer", "1", "--n-embd", "32", "--max-epochs", "1"]


def run_node(tmp_path, *args, timeout=120):
    return subprocess.run([*START, "--log-file", str(tmp_path / "node.log"), *args],
                          capture_output=True, text=True, timeout=timeout)


def assert_one_line_error(result, *fragments):
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def test_bootstrap_address_that_does_not_answer(tmp_path):
    with socket.socket() as s:  # a port that nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    dead = f"/ip4/127.0.0.1/tcp/{port}/p2p/QmejZQZjXtcQMK8B2AtAUedXmGvGtxj6s249P2c12AJ5Pw"
    result = run_node(tmp_path, "--initial-peers", dead)
    assert_one_line_error(result, "no initial peer answered", dead)


def test_listen_port_in_use(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        result = run_node(tmp_path, "--listen", f"/ip4/127.0.0.1/tcp/{s.getsockname()[1]}")
    assert_one_line_error(result, "already in use", "pick another port")


@pytest.mark.slow
def test_no_peer_of_the_run_appears(tmp_path):
    result = run_node(tmp_path, "--run-id", "lonely", "--expected-peers", "2", "--peer-wait-timeout", "3")
    assert_one_line_error(result, "only 1 of 2 peers", "'lonely'", "within 3 s")


def test_corrupt_checkpoint_is_reported_and_kept(tmp_path):
    path = tmp_path / "checkpoint.pt"
    save_checkpoint(path, {"run_id": "demo", "model": {"w": torch.ones(3)}})
    damaged = bytearray(path.read_bytes())
    damaged[-10] ^= 0x01
    path.write_bytes(bytes(damaged))
    result = run_node(tmp_path, "--checkpoint", str(path))
    assert_one_line_error(result, "corrupt", str(path), "will not overwrite")
    assert path.read_bytes() == bytes(damaged)
