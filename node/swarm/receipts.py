"""Receipts in the DHT: signing, the wire schema, and the record validator every node runs.

Key ``{run_id}_receipts_{epoch}``; one subkey per publisher, protected by hivemind's
``RSASignatureValidator`` (``[owner:<rsa key>]``, the process-wide key, the same one the
optimizer's progress tracker and shard announcements use: a DHT keeps only the first
RSA validator it is given). The value is a msgpack dict that :class:`ReceiptWire` parses
strictly, and whose EIP-712 signature must recover to the receipt's account.

:class:`ReceiptValidator` enforces both on every node for every receipt key of the run
(it knows the keys of epochs ``0 .. max_epochs-1``; keys are hashed in hivemind, so it
cannot recognise one it did not precompute): a record that fails the schema or the
signature is refused when a peer asks to store it and dropped when a peer returns it, so
a forged receipt reaches no application code anywhere.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from eth_account import Account
from eth_account.signers.local import LocalAccount
from hivemind import DHT
from hivemind.dht.crypto import RSASignatureValidator
from hivemind.dht.routing import DHTID
from hivemind.dht.validation import DHTRecord, RecordValidatorBase
from hivemind.utils import MSGPackSerializer, get_dht_time
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from protocol.receipts import SKETCH_DIM, Receipt, SignedReceipt, sketch_bytes, sketch_from_bytes
from protocol.types import Epoch, PeerId, RunId

log = logging.getLogger(__name__)
WIRE_VERSION = 1
_B58 = r"^[1-9A-HJ-NP-Za-km-z]+$"


def receipts_key(run_id: str, epoch: int) -> str:
    return f"{run_id}_receipts_{epoch}"


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
    """The DHT value of one receipt, parsed strictly (no coercion, no extra fields, bounded sizes)."""

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
    """A receipt from a DHT value if it passes the schema and its signature recovers to its account."""
    try:
        signed = ReceiptWire.model_validate(value).signed()
    except (ValidationError, ValueError, TypeError):
        return None
    return signed if recover_signer(signed) == signed.receipt.account else None


class ReceiptValidator(RecordValidatorBase):
    """Schema + signature validation of every receipt record of one run (see the module docstring)."""

    def __init__(self, run_id: str, max_epochs: int = 4096) -> None:
        self.run_id, self.max_epochs = run_id, max_epochs
        self._keys: dict[bytes, int] | None = None  # built in the DHT's process: the pickle sent there stays tiny

    def __getstate__(self) -> dict[str, object]:
        # hivemind pickles validators through a pipe to the DHT process; a 150 kB key table there
        # made that read fail (EAGAIN) and the peer hang at start, so only the parameters travel.
        return {"run_id": self.run_id, "max_epochs": self.max_epochs, "_keys": None}

    def validate(self, record: DHTRecord) -> bool:
        if self._keys is None:
            self._keys = {DHTID.generate(source=receipts_key(self.run_id, e)).to_bytes(): e for e in range(self.max_epochs)}
        epoch = self._keys.get(record.key)
        if epoch is None:
            return True  # not a receipt key of this run: other validators judge it
        if not record.subkey:
            return False  # receipts live in per-owner subkeys only
        try:
            value = MSGPackSerializer.loads(record.value)
        except Exception:  # msgpack raises several types on garbage
            return False
        signed = parse_value(value)
        return signed is not None and signed.receipt.run_id == self.run_id and signed.receipt.epoch == epoch

    @property
    def priority(self) -> int:
        return 0  # after RSASignatureValidator (10) has checked and stripped its signature

    def merge_with(self, other: RecordValidatorBase) -> bool:
        return isinstance(other, ReceiptValidator) and other.run_id == self.run_id


@dataclass(frozen=True)
class BoardConfig:
    ttl: float = 3600.0  # seconds a receipt stays in the DHT: long enough for validators to collect it
    timeout: float = 15.0  # seconds one publish waits for the DHT store before the receipt stays pending
    max_epochs: int = 4096  # receipt keys the validator recognises (epochs 0 .. max_epochs-1)


class ReceiptBoard:
    """Publish this node's receipts and read everyone's, through one DHT (install it once per DHT)."""

    def __init__(self, dht: DHT, run_id: str, cfg: BoardConfig = BoardConfig()) -> None:
        self.dht, self.run_id, self.cfg = dht, run_id, cfg
        rsa = RSASignatureValidator()  # the process-wide key: the DHT keeps the first RSA validator anyway
        dht.add_validators([rsa, ReceiptValidator(run_id, cfg.max_epochs)])
        self.subkey = rsa.local_public_key

    def publish(self, signed: SignedReceipt, subkey: bytes | None = None, timeout: float | None = None) -> bool:
        """Stores the receipt under its epoch's key; True when the DHT accepted it within ``timeout``
        seconds (default ``cfg.timeout``). False, not an exception, when it refused, timed out or is gone:
        the caller keeps the receipt and tries again (``node.train.sketch.WorkRecorder``)."""
        key = receipts_key(self.run_id, signed.receipt.epoch)
        expiration = get_dht_time() + self.cfg.ttl
        try:
            future = self.dht.store(key, to_wire(signed), expiration, subkey=subkey or self.subkey, return_future=True)
            return bool(future.result(timeout=self.cfg.timeout if timeout is None else timeout))
        except OSError as e:  # TimeoutError, or the pipe to a DHT process that is gone
            log.warning("receipt of epoch %d not stored: %s", signed.receipt.epoch, type(e).__name__)
            return False

    def publish_raw(self, epoch: int, value: object, subkey: bytes | None = None) -> bool:
        """Stores any value under the epoch's key (tests use it to try forged records)."""
        return bool(self.dht.store(receipts_key(self.run_id, epoch), value, get_dht_time() + self.cfg.ttl,
                                   subkey=subkey or self.subkey))

    def fetch(self, epoch: int) -> list[SignedReceipt]:
        """Every receipt stored for ``epoch`` that parses and is signed by its account."""
        found = self.dht.get(receipts_key(self.run_id, epoch), latest=True)
        if found is None or not isinstance(found.value, dict):
            return []
        out = []
        for item in found.value.values():
            signed = parse_value(item.value)  # the DHT validated it already; parse again, trust nothing
            if signed is not None:
                out.append(signed)
        return out
