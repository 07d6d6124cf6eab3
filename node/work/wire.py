"""A receipt's signature and its wire form: the value stored in the DHT and in the spool file.

A trainer signs the receipt's EIP-712 digest (``protocol.receipts``) with its Ethereum key.
On the wire a receipt is a msgpack-able dict that :class:`ReceiptWire` parses strictly (no
coercion, no extra fields, bounded sizes); ``parse_value`` accepts it only when the
signature recovers to the receipt's account. Every value that arrives from another peer or
a file goes through ``parse_value``, so a forged receipt reaches no application code.
"""

from __future__ import annotations

from eth_account import Account
from eth_account.signers.local import LocalAccount
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from protocol.receipts import SKETCH_DIM, Receipt, SignedReceipt, sketch_bytes, sketch_from_bytes
from protocol.types import Epoch, PeerId, RunId

WIRE_VERSION = 1
_B58 = r"^[1-9A-HJ-NP-Za-km-z]+$"


def sign_receipt(account: LocalAccount, receipt: Receipt) -> SignedReceipt:
    if account.address.lower() != receipt.account:
        raise ValueError(f"receipt names account {receipt.account}, but the key is {account.address}")
    return SignedReceipt(receipt, bytes(account.unsafe_sign_hash(receipt.digest()).signature))


def recover_signer(signed: SignedReceipt) -> str | None:
    """The lower-case address that signed the receipt, or None for a malformed signature."""
    try:
        return str(Account._recover_hash(signed.receipt.digest(), signature=signed.signature)).lower()
    except Exception:  # eth-keys raises several types for bad signatures; any of them means "not signed"
        return None


class ShardCount(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)
    shard: str = Field(min_length=1, max_length=128, pattern=r"^[0-9a-f]+$")
    samples: int = Field(ge=1, le=1 << 40)


class ReceiptWire(BaseModel):
    """The wire value of one receipt, parsed strictly (no coercion, no extra fields, bounded sizes)."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)

    v: int = Field(ge=WIRE_VERSION, le=WIRE_VERSION)
    run_id: str = Field(min_length=1, max_length=128)
    epoch: int = Field(ge=0, le=1 << 62)
    peer_id: str = Field(min_length=20, max_length=128, pattern=_B58)
    account: str = Field(pattern=r"^0x[0-9a-f]{40}$")
    steps: int = Field(ge=1, le=1 << 32)
    batch_size: int = Field(ge=1, le=1 << 20)
    samples: int = Field(ge=1, le=1 << 52)
    n_samples: int = Field(ge=1, le=1 << 52)
    batches_hash: bytes = Field(min_length=32, max_length=32)
    shards: list[ShardCount] = Field(max_length=4096)
    params_hash: bytes = Field(min_length=32, max_length=32)
    sketch: bytes = Field(min_length=4 * SKETCH_DIM, max_length=4 * SKETCH_DIM)
    signature: bytes = Field(min_length=65, max_length=65)

    def signed(self) -> SignedReceipt:
        receipt = Receipt(
            run_id=RunId(self.run_id), epoch=Epoch(self.epoch), peer_id=PeerId(self.peer_id), account=self.account,
            steps=self.steps, batch_size=self.batch_size, samples=self.samples, n_samples=self.n_samples,
            batches_hash=self.batches_hash, shard_samples=tuple((s.shard, s.samples) for s in self.shards),
            params_hash=self.params_hash, sketch=sketch_from_bytes(self.sketch),
        )
        return SignedReceipt(receipt, self.signature)


def to_wire(signed: SignedReceipt) -> dict[str, object]:
    r = signed.receipt
    return {
        "v": WIRE_VERSION, "run_id": r.run_id, "epoch": r.epoch, "peer_id": r.peer_id, "account": r.account,
        "steps": r.steps, "batch_size": r.batch_size, "samples": r.samples, "n_samples": r.n_samples,
        "batches_hash": r.batches_hash, "shards": [{"shard": s, "samples": c} for s, c in r.shard_samples],
        "params_hash": r.params_hash, "sketch": sketch_bytes(r.sketch), "signature": signed.signature,
    }


def parse_value(value: object) -> SignedReceipt | None:
    """A receipt from a wire value if it passes the schema and its signature recovers to its account."""
    try:
        signed = ReceiptWire.model_validate(value).signed()
    except (ValidationError, ValueError, TypeError):
        return None
    return signed if recover_signer(signed) == signed.receipt.account else None
