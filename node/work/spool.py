"""A file of signed receipts the DHT has not accepted yet, so a restart can publish them.

A trainer signs a receipt at each collaborative epoch's end and stores it in the DHT. When
the store fails or times out, the receipt stays pending in the trainer; at the stop, what is
still pending is written here (one JSON object per line: the wire value of
:mod:`node.work.wire`, bytes as hex), and the next start of the node publishes it. The
file sits next to the checkpoint (``checkpoint.pt`` -> ``checkpoint.pt.receipts``) and is
removed once nothing is pending.

The file is a trust boundary (anyone may have edited it): each line is parsed with the
same strict schema and signature check as a receipt that arrives from a peer, and a line
that fails is reported and dropped. Lines of another run are kept as they are.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from node.work.wire import parse_value, to_wire
from protocol.receipts import SignedReceipt

log = logging.getLogger(__name__)
_BYTES_FIELDS = ("batches_hash", "params_hash", "sketch", "signature")


def spool_path(checkpoint: Path) -> Path:
    """Where a node with this checkpoint keeps its unpublished receipts."""
    return checkpoint.with_name(checkpoint.name + ".receipts")


def encode(signed: SignedReceipt) -> str:
    return json.dumps({k: v.hex() if isinstance(v, bytes) else v for k, v in to_wire(signed).items()}, sort_keys=True)


def decode(line: str) -> SignedReceipt | None:
    """The receipt of one line, or None when it is not a well-formed receipt signed by its account."""
    try:
        raw = json.loads(line)
        if not isinstance(raw, dict):
            return None
        value = {k: bytes.fromhex(v) if k in _BYTES_FIELDS and isinstance(v, str) else v for k, v in raw.items()}
    except ValueError:  # bad JSON or bad hex
        return None
    return parse_value(value)


class ReceiptSpool:
    """This run's unpublished receipts in ``path`` (see the module docstring)."""

    def __init__(self, path: Path, run_id: str) -> None:
        self.path, self.run_id = path, run_id
        self._foreign: list[str] = []  # lines of other runs, written back untouched

    def load(self) -> list[SignedReceipt]:
        """The run's receipts in the file, oldest first; [] when there is no file."""
        if not self.path.exists():
            return []
        out, self._foreign = [], []
        for n, line in enumerate(self.path.read_text().splitlines(), 1):
            if not line.strip():
                continue
            signed = decode(line)
            if signed is None:
                log.warning("%s line %d is not a valid signed receipt; dropped", self.path, n)
            elif signed.receipt.run_id != self.run_id:
                self._foreign.append(line)
            else:
                out.append(signed)
        return out

    def save(self, pending: list[SignedReceipt]) -> None:
        """Replaces the file's receipts of this run with ``pending`` atomically; no file when nothing is left."""
        lines = self._foreign + [encode(s) for s in pending]
        if not lines:
            self.path.unlink(missing_ok=True)
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        with open(tmp, "w") as f:
            f.write("\n".join(lines) + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)
