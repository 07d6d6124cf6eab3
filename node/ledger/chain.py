"""A connection to one chain: the embedded eth-tester chain or a JSON-RPC URL.

Every RPC call goes through :meth:`Chain.call`, which retries with exponential backoff
while the node is unreachable and then raises :class:`ChainUnavailable`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

import requests
from web3 import EthereumTesterProvider, HTTPProvider, Web3
from web3.types import RPCEndpoint, Wei

from node.ledger.config import LedgerConfig
from protocol.errors import ChainUnavailable

T = TypeVar("T")
_UNREACHABLE = (OSError, requests.RequestException)


class Chain:
    """A web3 handle plus retry policy; build it with :meth:`connect`."""

    def __init__(self, w3: Web3, config: LedgerConfig, tester: Any = None) -> None:
        self.w3 = w3
        self.config = config
        # The in-process EthereumTester when embedded (None over JSON-RPC).
        self.tester = tester

    @classmethod
    def connect(cls, config: LedgerConfig) -> Chain:
        if config.rpc_url is None:
            from eth_tester import EthereumTester, PyEVMBackend

            tester = EthereumTester(PyEVMBackend())
            return cls(Web3(EthereumTesterProvider(tester)), config, tester)
        provider = HTTPProvider(config.rpc_url, request_kwargs={"timeout": config.request_timeout_s})
        return cls(Web3(provider), config)

    @property
    def embedded(self) -> bool:
        return self.tester is not None

    @property
    def where(self) -> str:
        return "the embedded chain" if self.embedded else str(self.config.rpc_url)

    def call(self, what: str, fn: Callable[[], T]) -> T:
        """Runs ``fn`` (one RPC interaction), retrying while the node is unreachable."""
        delay = self.config.retry_initial_backoff_s
        attempts = max(1, self.config.retry_attempts)
        for attempt in range(1, attempts + 1):
            try:
                return fn()
            except _UNREACHABLE as exc:
                if attempt == attempts:
                    raise ChainUnavailable(
                        f"{what}: no answer from {self.where} after {attempts} attempts ({exc.__class__.__name__}); "
                        "start the node or fix --rpc, then retry (recorded transactions stay in the outbox)"
                    ) from exc
                time.sleep(delay)
                delay = min(delay * 2, self.config.retry_max_backoff_s)
        raise AssertionError("unreachable")

    def chain_id(self) -> int:
        return int(self.call("chain id", lambda: self.w3.eth.chain_id))

    def timestamp(self) -> int:
        return int(self.call("latest block", lambda: self.w3.eth.get_block("latest"))["timestamp"])

    def advance_time(self, seconds: int) -> None:
        """Moves block time forward and mines a block (development chains only)."""
        if self.tester is not None:
            self.tester.time_travel(self.timestamp() + seconds)
            return
        self.call("evm_increaseTime", lambda: self.w3.provider.make_request(RPCEndpoint("evm_increaseTime"), [seconds]))
        self.call("evm_mine", lambda: self.w3.provider.make_request(RPCEndpoint("evm_mine"), []))

    def faucet(self, address: str, wei: int) -> None:
        """Sends ``wei`` from the node's first unlocked dev account (eth-tester, anvil)."""
        source = self.call("accounts", lambda: self.w3.eth.accounts)[0]
        tx = self.call(
            "faucet", lambda: self.w3.eth.send_transaction({"from": source, "to": Web3.to_checksum_address(address), "value": Wei(wei)})
        )
        self.call("faucet receipt", lambda: self.w3.eth.wait_for_transaction_receipt(tx, timeout=30))
