"""The DHT record validator that keeps forged receipts out of every node's storage and answers.

hivemind runs each record of a store or a get through the DHT's validators. This one
judges the records under the run's receipt keys (``{run_id}_receipts_{epoch}``, see
``node.swarm.receipt_board``): a record must sit in a per-owner subkey and its value must
decode (``decode``: the receipt wire format of ``node.work.wire``) to a signed receipt of
this run and of the key's epoch. Keys reach a validator hashed, so it recognises the keys
of epochs ``0 .. max_epochs-1`` only, which it precomputes.
"""

from __future__ import annotations

from collections.abc import Callable

from hivemind.dht.routing import DHTID
from hivemind.dht.validation import DHTRecord, RecordValidatorBase
from hivemind.utils import MSGPackSerializer

from protocol.receipts import SignedReceipt

ReceiptDecoder = Callable[[object], SignedReceipt | None]


def receipts_key(run_id: str, epoch: int) -> str:
    return f"{run_id}_receipts_{epoch}"


class ReceiptValidator(RecordValidatorBase):
    """Schema + signature validation of every receipt record of one run (see the module docstring).

    ``decode`` travels to the DHT's process by pickle, so it must be a module-level function.
    """

    def __init__(self, run_id: str, decode: ReceiptDecoder, max_epochs: int = 4096) -> None:
        self.run_id, self.decode, self.max_epochs = run_id, decode, max_epochs
        self._keys: dict[bytes, int] | None = None  # built in the DHT's process: the pickle sent there stays tiny

    def __getstate__(self) -> dict[str, object]:
        # hivemind pickles validators through a pipe to the DHT process; a 150 kB key table there
        # made that read fail (EAGAIN) and the peer hang at start, so only the parameters travel.
        return {"run_id": self.run_id, "decode": self.decode, "max_epochs": self.max_epochs, "_keys": None}

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
        signed = self.decode(value)
        return signed is not None and signed.receipt.run_id == self.run_id and signed.receipt.epoch == epoch

    @property
    def priority(self) -> int:
        return 0  # after RSASignatureValidator (10) has checked and stripped its signature

    def merge_with(self, other: RecordValidatorBase) -> bool:
        return isinstance(other, ReceiptValidator) and other.run_id == self.run_id
