"""Receipts in the DHT: publish this node's, read everyone's, and refuse forged ones.

Key ``{run_id}_receipts_{epoch}``; one subkey per publisher, protected by hivemind's
``RSASignatureValidator`` (``[owner:<rsa key>]``, the process-wide key, the same one the
optimizer's progress tracker and shard announcements use: a DHT keeps only the first
RSA validator it is given). The value is a receipt in the wire format the caller passes
(``encode`` / ``decode``; hivenet's is ``node.work.wire``, bound in ``node.work.board``).

Whoever owns a DHT calls ``install_receipt_validator`` once: from then on that node
refuses a record that fails the schema or the signature when a peer asks to store it and
drops it when a peer returns it (``hivemind_ext.receipt_validator``). A board only
publishes and reads; ``fetch`` decodes every value again and trusts nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from hivemind import DHT
from hivemind.dht.crypto import RSASignatureValidator
from hivemind.utils import get_dht_time

from node.swarm.hivemind_ext.receipt_validator import ReceiptDecoder, ReceiptValidator, receipts_key
from protocol.receipts import SignedReceipt

log = logging.getLogger(__name__)
ReceiptEncoder = Callable[[SignedReceipt], dict[str, object]]

__all__ = ["BoardConfig", "ReceiptBoard", "install_receipt_validator", "receipts_key"]


@dataclass(frozen=True)
class BoardConfig:
    ttl: float = 3600.0  # seconds a receipt stays in the DHT: long enough for validators to collect it
    timeout: float = 15.0  # seconds one publish waits for the DHT store before the receipt stays pending
    max_epochs: int = 4096  # receipt keys the record validator recognises (epochs 0 .. max_epochs-1)


def install_receipt_validator(dht: DHT, run_id: str, decode: ReceiptDecoder, cfg: BoardConfig = BoardConfig()) -> None:
    """Makes ``dht`` refuse and drop receipt records of ``run_id`` that ``decode`` rejects (once per DHT)."""
    rsa = RSASignatureValidator()  # the process-wide key: the DHT keeps the first RSA validator anyway
    dht.add_validators([rsa, ReceiptValidator(run_id, decode, cfg.max_epochs)])


class ReceiptBoard:
    """Publish this node's receipts and read everyone's, through one DHT (see the module docstring)."""

    def __init__(self, dht: DHT, run_id: str, encode: ReceiptEncoder, decode: ReceiptDecoder,
                 cfg: BoardConfig = BoardConfig()) -> None:
        self.dht, self.run_id, self.encode, self.decode, self.cfg = dht, run_id, encode, decode, cfg
        self.subkey = RSASignatureValidator().local_public_key  # signed by the process-wide key

    def publish(self, signed: SignedReceipt, subkey: bytes | None = None, timeout: float | None = None) -> bool:
        """Stores the receipt under its epoch's key; True when the DHT accepted it within ``timeout``
        seconds (default ``cfg.timeout``). False, not an exception, when it refused, timed out or is gone:
        the caller keeps the receipt and tries again (``node.work.recorder.WorkRecorder``)."""
        key = receipts_key(self.run_id, signed.receipt.epoch)
        expiration = get_dht_time() + self.cfg.ttl
        try:
            future = self.dht.store(key, self.encode(signed), expiration, subkey=subkey or self.subkey, return_future=True)
            return bool(future.result(timeout=self.cfg.timeout if timeout is None else timeout))
        except OSError as e:  # TimeoutError, or the pipe to a DHT process that is gone
            log.warning("receipt of epoch %d not stored: %s", signed.receipt.epoch, type(e).__name__)
            return False

    def publish_raw(self, epoch: int, value: object, subkey: bytes | None = None) -> bool:
        """Stores any value under the epoch's key (tests use it to try forged records)."""
        return bool(self.dht.store(receipts_key(self.run_id, epoch), value, get_dht_time() + self.cfg.ttl,
                                   subkey=subkey or self.subkey))

    def fetch(self, epoch: int) -> list[SignedReceipt]:
        """Every receipt stored for ``epoch`` that decodes and is signed by its account."""
        found = self.dht.get(receipts_key(self.run_id, epoch), latest=True)
        if found is None or not isinstance(found.value, dict):
            return []
        out = []
        for item in found.value.values():
            signed = self.decode(item.value)  # the DHT validated it already; decode again, trust nothing
            if signed is not None:
                out.append(signed)
        return out
