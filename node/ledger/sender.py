"""Sends transactions through the outbox: exactly one transaction per intent.

``send`` records the intent, simulates it (a revert raises its named error and the intent
is kept as ``rejected``), signs it locally with the next free nonce, commits the raw
transaction, broadcasts it and waits for the receipt. ``reconcile`` finishes whatever a
crash or an unreachable node left in ``new`` or ``signed``: a signed transaction is looked
up by hash, re-broadcast byte for byte if the chain has not seen it, and re-signed only if
its nonce was provably taken by another transaction.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from eth_account.signers.local import LocalAccount
from web3.exceptions import TransactionNotFound

from node.ledger.chain import Chain
from node.ledger.outbox import Intent, Outbox
from node.ledger.revert import decode_revert, revert_data
from protocol.errors import ChainUnavailable, ContractRevert, ReceiptTimeout, TransactionFailed


@dataclass(frozen=True)
class Sent:
    """The outcome of one intent: where it was mined and what it cost."""

    key: str
    tx_hash: str
    block: int
    gas_used: int
    contract_address: str | None


class TransactionSender:
    """Signs with ``account`` and sends through ``outbox`` on ``chain``."""

    def __init__(self, chain: Chain, account: LocalAccount, outbox: Outbox) -> None:
        self.chain = chain
        self.account = account
        self.outbox = outbox
        self.chain_id = chain.chain_id()

    def send(self, key: str, to: str | None, data: str, value: int = 0) -> Sent:
        """Sends the transaction named by idempotency ``key`` once, and returns its outcome."""
        intent = self.outbox.record(key, self.account.address, self.chain_id, to, data, value)
        if intent.status == "rejected":
            # Never sent, so trying again cannot duplicate it; the chain may have moved on.
            intent = self.outbox.reset(intent.key)
        return self._drive(intent)

    def reconcile(self) -> list[Sent]:
        """Finishes every pending intent of this account, oldest first."""
        return [self._drive(intent) for intent in self.outbox.pending(self.account.address)]

    def _drive(self, intent: Intent) -> Sent:
        if intent.status in ("mined", "reverted"):
            return self._finish(intent, self._receipt(intent.tx_hash or ""))
        if intent.status == "signed":
            receipt = self._lookup(intent)
            if receipt is not None:
                return self._finish(intent, receipt)
            mined_nonce = self.chain.call(
                "nonce", lambda: self.chain.w3.eth.get_transaction_count(self.account.address, "latest")
            )
            if intent.nonce is not None and mined_nonce > intent.nonce:
                intent = self.outbox.reset(intent.key)
            else:
                self._broadcast(intent)
                return self._finish(intent, self._wait(intent))
        intent = self._sign(intent)
        self._broadcast(intent)
        return self._finish(intent, self._wait(intent))

    def _tx_fields(self, intent: Intent) -> dict[str, Any]:
        fields: dict[str, Any] = {"from": self.account.address, "data": intent.data, "value": intent.value}
        if intent.to is not None:
            fields["to"] = intent.to
        return fields

    def _sign(self, intent: Intent) -> Intent:
        eth = self.chain.w3.eth
        fields = self._tx_fields(intent)
        try:
            gas = self.chain.call("estimate gas", lambda: eth.estimate_gas(fields))  # type: ignore[arg-type]
        except ChainUnavailable:
            raise
        except Exception as exc:  # web3 and eth-tester raise unrelated types for a revert
            data = revert_data(exc)
            error = decode_revert(data, intent.key)
            if data is None and not _looks_like_revert(exc):
                raise
            self.outbox.mark_rejected(intent.key, type(error).__name__, error.fields)
            raise error from exc
        pending = self.chain.call("nonce", lambda: eth.get_transaction_count(self.account.address, "pending"))
        inflight = self.outbox.max_inflight_nonce(self.account.address, self.chain_id)
        nonce = max(int(pending), -1 if inflight is None else inflight + 1)
        gas_price = self.chain.call("gas price", lambda: eth.gas_price)
        tx = {
            **fields,
            "gas": int(gas * self.chain.config.gas_margin) + 10_000,
            "gasPrice": int(gas_price),
            "nonce": nonce,
            "chainId": self.chain_id,
        }
        tx.pop("from")
        signed = self.account.sign_transaction(tx)
        return self.outbox.mark_signed(intent.key, nonce, "0x" + signed.hash.hex(), "0x" + signed.raw_transaction.hex())

    def _broadcast(self, intent: Intent) -> None:
        raw = bytes.fromhex((intent.raw_tx or "")[2:])

        def push() -> None:
            try:
                self.chain.w3.eth.send_raw_transaction(raw)
            except ValueError as exc:  # the node already has it: that is the point of resending
                if "already" not in str(exc).lower() and "known" not in str(exc).lower():
                    raise
            except Exception as exc:
                if isinstance(exc, (OSError,)) or type(exc).__module__.startswith("requests"):
                    raise
                # eth-tester mines on send and raises if execution reverts; the receipt tells.
                if revert_data(exc) is None and not _looks_like_revert(exc):
                    raise

        self.chain.call(f"broadcast {intent.key}", push)

    def _lookup(self, intent: Intent) -> dict[str, Any] | None:
        def get() -> dict[str, Any] | None:
            try:
                return dict(self.chain.w3.eth.get_transaction_receipt(intent.tx_hash))  # type: ignore[arg-type]
            except TransactionNotFound:
                return None

        return self.chain.call("receipt", get)

    def _receipt(self, tx_hash: str) -> dict[str, Any]:
        return dict(self.chain.call("receipt", lambda: self.chain.w3.eth.get_transaction_receipt(tx_hash)))  # type: ignore[arg-type]

    def _wait(self, intent: Intent) -> dict[str, Any]:
        deadline = time.monotonic() + self.chain.config.receipt_timeout_s
        while True:
            receipt = self._lookup(intent)
            if receipt is not None:
                return receipt
            if time.monotonic() > deadline:
                raise ReceiptTimeout(
                    f"{intent.key}: no receipt for {intent.tx_hash} within {self.chain.config.receipt_timeout_s}s; "
                    "it stays in the outbox and the next reconcile finishes it"
                )
            time.sleep(self.chain.config.poll_interval_s)

    def _finish(self, intent: Intent, receipt: dict[str, Any]) -> Sent:
        ok = int(receipt["status"]) == 1
        contract = receipt.get("contractAddress")
        block = int(receipt["blockNumber"])
        if intent.status not in ("mined", "reverted"):
            intent = self.outbox.mark_done(intent.key, "mined" if ok else "reverted", block, contract)
        if not ok:
            raise self._replay_revert(intent, block)
        return Sent(intent.key, str(intent.tx_hash), block, int(receipt["gasUsed"]), contract)

    def _replay_revert(self, intent: Intent, block: int) -> ContractRevert:
        """Re-runs a mined, reverted transaction as a call to learn its custom error."""
        try:
            self.chain.w3.eth.call(self._tx_fields(intent), block - 1)  # type: ignore[arg-type]
        except Exception as exc:
            data = revert_data(exc)
            if data is not None:
                return decode_revert(data, intent.key)
        return TransactionFailed(f"{intent.key}: transaction {intent.tx_hash} reverted in block {block}")


def _looks_like_revert(exc: BaseException) -> bool:
    name = type(exc).__name__
    return "revert" in str(exc).lower() or name in ("TransactionFailed", "ContractLogicError", "ContractCustomError")
