"""Peer processes of a local testnet: start, signal, kill, restart.

Each peer is ``hivenet node start``, run through ``node.cli.testnet_peer`` (which injects the
testnet's faults as hooks), in its own process group (hivemind's DHT, averagers and p2pd are
children; killing only the main process would orphan them), with one torch thread so N peers
share few cores fairly.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from node.swarm.identity import ensure_identity


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class PeerProcess:
    index: int
    dir: Path
    args: list[str]  # arguments after `hivenet node start`
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0
    killed: bool = False  # stopped on purpose (a scenario or test), not a failure
    env: dict[str, str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return f"peer{self.index}"

    @property
    def metrics_path(self) -> Path:
        return self.dir / "metrics.jsonl"

    @property
    def checkpoint_path(self) -> Path:
        return self.dir / "checkpoint.pt"

    @property
    def log_path(self) -> Path:
        return self.dir / "peer.log"

    def start(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", **self.env}
        cmd = [sys.executable, "-m", "node.cli.testnet_peer", *self.args,
               "--checkpoint", str(self.checkpoint_path), "--metrics", str(self.metrics_path),
               "--log-file", str(self.log_path), "--no-progress"]
        out = open(self.dir / "stdout.txt", "ab")
        self.proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     start_new_session=True, env=env)
        out.close()
        self.starts += 1
        self.killed = False

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def returncode(self) -> int | None:
        return None if self.proc is None else self.proc.poll()

    def signal(self, sig: int) -> None:
        if self.alive():
            assert self.proc is not None
            os.kill(self.proc.pid, sig)

    def kill(self) -> None:
        """SIGKILL the peer's whole process group at once, as a crash would."""
        if self.proc is not None:
            self.killed = True
            self.kill_group()

    def kill_group(self) -> None:
        """SIGKILL whatever is left of the peer's process group (no-op when it is gone)."""
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(timeout=10)

    def stop(self, timeout: float) -> None:
        """SIGTERM (graceful: checkpoint, leave), then SIGKILL the group after ``timeout`` s."""
        if self.proc is None:
            return
        self.signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pass
        self.kill_group()  # the main process is gone (or hung): no child of it may outlive the testnet


def bootstrap_address(peer_dir: Path, port: int) -> str:
    """The multiaddr of the bootstrap peer, known before it starts (its identity is made here)."""
    peer_id = ensure_identity(peer_dir / "identity.key")
    return f"/ip4/127.0.0.1/tcp/{port}/p2p/{peer_id}"


def wait_until(predicate, timeout: float, poll: float = 0.5) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(poll)
    return bool(predicate())
