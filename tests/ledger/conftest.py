"""Fixtures of the ledger suite: the same tests run on the embedded chain and on anvil.

anvil comes from ``contracts/node_modules`` (``npm ci`` in contracts/, which
``scripts/test-services.sh`` runs); it is started on a free loopback port and stopped after.
"""

from __future__ import annotations

import os
import socket
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests
from eth_account import Account

from node.ledger.chain import Chain
from node.ledger.client import LedgerClient
from node.ledger.config import DeployConfig, LedgerConfig
from node.ledger.deployment import Deployment
from node.ledger.outbox import Outbox
from tests.waiting import wait_until

CONTRACTS = Path(__file__).resolve().parents[2] / "contracts"
ANVIL = CONTRACTS / "node_modules" / "@foundry-rs" / "anvil-linux-amd64" / "bin" / "anvil"
FORGE = CONTRACTS / "node_modules" / "@foundry-rs" / "forge-linux-amd64" / "bin" / "forge"
WINDOW = 60
FAST = LedgerConfig(retry_attempts=2, retry_initial_backoff_s=0.05, receipt_timeout_s=20)


def require_tool(path: Path) -> None:
    """Skips on a developer machine without ``npm ci``; fails in CI, which must have it."""
    if not path.exists():
        message = f"{path} missing: run `npm ci` in contracts/ (scripts/test-services.sh does)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def anvil_process(port: int | None = None, timeout_s: float = 20.0) -> Iterator[str]:
    """Runs anvil on a free loopback port; yields its URL and always stops it."""
    require_tool(ANVIL)
    port = port or free_port()
    proc = subprocess.Popen(
        [str(ANVIL), "--host", "127.0.0.1", "--port", str(port), "--silent"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"

    def answering_or_dead() -> bool:
        if proc.poll() is not None:
            return True
        try:
            requests.post(url, json={"jsonrpc": "2.0", "id": 1, "method": "eth_chainId"}, timeout=1)
            return True
        except requests.ConnectionError:
            return False

    try:
        if not wait_until(answering_or_dead, timeout_s, poll=0.05) or proc.poll() is not None:
            raise RuntimeError(f"anvil did not start on port {port}")
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@pytest.fixture(scope="session")
def anvil_url() -> Iterator[str]:
    with anvil_process() as url:
        yield url


@pytest.fixture(params=["embedded", pytest.param("anvil", marks=pytest.mark.chain)])
def chain(request: pytest.FixtureRequest) -> Chain:
    if request.param == "embedded":
        return Chain.connect(FAST)
    url = request.getfixturevalue("anvil_url")
    return Chain.connect(LedgerConfig(**{**FAST.__dict__, "rpc_url": url}))


ClientFactory = Callable[[], LedgerClient]


@pytest.fixture
def new_client(chain: Chain) -> Iterator[Callable[..., LedgerClient]]:
    """Makes clients for fresh, ETH-funded accounts on ``chain`` (closed after the test)."""
    made: list[LedgerClient] = []

    def make(deployment: Deployment | None = None, outbox: Path | None = None) -> LedgerClient:
        account = Account.create()
        chain.faucet(account.address, 10**20)
        client = LedgerClient(chain, account, Outbox(outbox), deployment)
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


@pytest.fixture
def admin(new_client: Callable[..., LedgerClient]) -> LedgerClient:
    """A client that deployed fresh contracts (challenge window WINDOW seconds) and is validator."""
    client = new_client()
    client.deploy(DeployConfig(challenge_window_s=WINDOW, min_stake=100, unbonding_delay_s=WINDOW, revoke_quorum=1))
    return client
