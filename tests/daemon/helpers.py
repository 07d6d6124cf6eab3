"""Fixtures' building blocks for the daemon tests: a real mosquitto, a node subprocess, an MQTT collector."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from node.telemetry.config import BrokerAddress
from node.telemetry.monitor import MonitorState, watch
from tests.waiting import wait_until  # the daemon tests import it from here too

# 2 layers x 64 wide, one peer: epochs take ~1-4 s, so the tests spend their time on lifecycle, not compute.
TINY_NODE = ["--n-layer", "2", "--n-embd", "64", "--batch-size", "8", "--target-batch-size", "96", "--device", "cpu",
             "--matchmaking-time", "3", "--eval-every", "0", "--no-progress", "--status-listen", "127.0.0.1:0"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def mosquitto_binary() -> str:
    path = shutil.which("mosquitto") or ("/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None)
    if path is None:
        message = "mosquitto missing: scripts/test-services.sh installs it (apt-get install mosquitto)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


class Mosquitto:
    """A mosquitto on a fixed loopback port that a test can kill and start again on the same port."""

    def __init__(self, workdir: Path, port: int) -> None:
        self.port = port
        self.conf = workdir / "mosquitto.conf"
        # set_tcp_nodelay: QoS 1 round trips drop from ~43 ms to ~1 ms (DESIGN.md).
        self.conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\nset_tcp_nodelay true\npersistence false\n")
        self.log = workdir / "mosquitto.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> BrokerAddress:
        return BrokerAddress("127.0.0.1", self.port)

    def start(self, timeout: float = 10.0) -> None:
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen([mosquitto_binary(), "-c", str(self.conf)], stdout=log, stderr=log)
        proc = self.proc

        def listening_or_dead() -> bool:
            if proc.poll() is not None:
                return True
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return True
            except OSError:
                return False

        if not wait_until(listening_or_dead, timeout, poll=0.05) or proc.poll() is not None:
            raise RuntimeError(f"mosquitto did not start on port {self.port}; see {self.log}")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)


@contextmanager
def mosquitto(workdir: Path) -> Iterator[Mosquitto]:
    broker = Mosquitto(workdir, free_port())
    broker.start()
    try:
        yield broker
    finally:
        broker.kill()


@contextmanager
def collector(address: BrokerAddress, run_id: str | None) -> Iterator[MonitorState]:
    """The monitor's data layer in a background thread (its own event loop), stopped on exit."""
    state = MonitorState()
    received: list[tuple[float, str, dict[str, Any]]] = []
    original = state.apply

    def apply(topic: str, raw: bytes, now: float | None = None):  # type: ignore[no-untyped-def]
        msg = original(topic, raw, now)
        if msg is not None:
            received.append((time.time(), topic, msg.payload))
        return msg

    state.apply = apply  # type: ignore[method-assign]
    state.received = received  # type: ignore[attr-defined]
    loop = asyncio.new_event_loop()
    task: asyncio.Task[None] | None = None

    def run() -> None:
        nonlocal task
        asyncio.set_event_loop(loop)
        task = loop.create_task(watch(address, run_id, state, initial_backoff_s=0.1, max_backoff_s=0.2))
        try:
            loop.run_until_complete(task)
        except asyncio.CancelledError:
            pass

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        loop.call_soon_threadsafe(lambda: task and task.cancel())
        thread.join(10)
        loop.close()


@dataclass
class NodeProcess:
    """``hivenet node start`` in its own process group (hivemind's children die with it)."""

    dir: Path
    args: list[str]
    proc: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    env: dict[str, str] = field(default_factory=dict)

    @property
    def metrics_path(self) -> Path:
        return self.dir / "metrics.jsonl"

    @property
    def log_path(self) -> Path:
        return self.dir / "node.log"

    def start(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-m", "node.cli", "node", "start", *TINY_NODE, "--identity", str(self.dir / "identity.key"),
               "--checkpoint", str(self.dir / "checkpoint.pt"), "--metrics", str(self.metrics_path),
               "--log-file", str(self.log_path), "--status-url-file", str(self.dir / "status.url"), *self.args]
        env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", **self.env}
        with open(self.dir / "stdout.txt", "ab") as out:
            self.proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         start_new_session=True, env=env)
        self.started_at = time.time()

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def records(self, event: str | None = None) -> list[dict[str, Any]]:
        if not self.metrics_path.exists():
            return []
        out = []
        for line in self.metrics_path.read_text().splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            if event is None or record["event"] == event:
                out.append(record)
        return out

    def terminate(self, timeout: float) -> tuple[int | None, float]:
        """SIGTERM the main process; (exit code or None if it did not exit, seconds it took)."""
        assert self.proc is not None
        sent = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            code: int | None = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            code = None
        return code, time.monotonic() - sent

    def kill_group(self) -> None:
        if self.proc is not None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(timeout=10)


@contextmanager
def node(dir: Path, *args: str) -> Iterator[NodeProcess]:
    proc = NodeProcess(dir, list(args))
    proc.start()
    try:
        yield proc
    finally:
        proc.kill_group()


@contextmanager
def deployed_chain(workdir: Path) -> Iterator[tuple[str, Path]]:
    """anvil with the four contracts deployed; yields (rpc url, deployment file)."""
    from eth_account import Account

    from node.ledger.chain import Chain
    from node.ledger.client import LedgerClient
    from node.ledger.config import LedgerConfig
    from node.ledger.outbox import Outbox
    from tests.ledger.conftest import anvil_process

    with anvil_process() as url:
        chain = Chain.connect(LedgerConfig(rpc_url=url))
        account = Account.create()
        chain.faucet(account.address, 10**20)
        client = LedgerClient(chain, account, Outbox(None))
        path = workdir / "deployment.json"
        client.deploy().save(path)
        client.close()
        yield url, path


@contextmanager
def receipt_observer(run_id: str) -> Iterator[tuple[Any, list[str]]]:
    """A DHT node that reads receipts as a validator does and outlives the node under test.

    Yields (its receipt board, its multiaddrs for ``--initial-peers``); shut down on exit.
    """
    import hivemind

    from node.work.board import receipt_board

    dht = hivemind.DHT(start=True)
    try:
        yield receipt_board(dht, run_id), [str(m) for m in dht.get_visible_maddrs()]
    finally:
        dht.shutdown()


def keystore_args(dir: Path) -> tuple[str, list[str]]:
    """A throwaway keystore that signs the node's receipts: (its address, the node's flags)."""
    from node.testnet.validation import make_keystore

    path = dir / "receipts.key"
    address = make_keystore(path)
    return address, ["--keystore", str(path), "--password-file", str(path.with_suffix(".pass"))]
