"""Work receipts: what a peer says it computed in one collaborative epoch, and the checks on it.

A receipt names the run, the epoch, the peer (libp2p id) and its reward account, how many
local steps of which batch size it took, and four 32-byte commitments:

* ``batches_hash``: the batch indices of steps ``0 .. steps-1``, recomputable by anyone
  from ``protocol.assignment`` (so a receipt cannot name batches it was not given);
* ``shards_hash``: how many of those samples came from each vetted shard (``shard_samples``,
  carried in clear; recomputable from the indices and the corpus layout);
* ``params_hash``: SHA-256 of the parameters at the start of the epoch (the same on every
  honest peer after averaging, up to float noise);
* ``sketch_hash``: the gradient sketch (a count-sketch of the mean local gradient over the
  peer's steps, ``SKETCH_DIM`` float32 values, seeded by (run, epoch, peer)), carried in clear.

The peer's Ethereum key signs the EIP-712 digest of the receipt, so the reward account is
the signer: nobody can redirect a peer's rewards, and a receipt copied to another run,
epoch or peer no longer matches what it claims. Receipts are off-chain messages; the
domain (``RECEIPT_DOMAIN``) binds them to hivenet receipts v1 rather than to a contract.

Everything here is pure: signing and recovering the signer (secp256k1) live in
``node.swarm.receipts``; the checks take the recovered signer as a value.
"""

from __future__ import annotations

import hashlib
import math
import struct
from bisect import bisect_right
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum

from protocol import eip712
from protocol.assignment import assign_samples
from protocol.types import Epoch, PeerId, RunId

SKETCH_DIM = 128  # floats in a gradient sketch: 512 bytes on the wire, enough to tell honest work apart
RECEIPT_DOMAIN = eip712.Domain(name="HivenetReceipts", chain_id=0, verifying_contract="0x" + "00" * 20)
RECEIPT_FIELDS: tuple[tuple[str, str], ...] = (
    ("runId", "string"),
    ("epoch", "uint256"),
    ("peerId", "string"),
    ("account", "address"),
    ("steps", "uint256"),
    ("batchSize", "uint256"),
    ("samples", "uint256"),
    ("nSamples", "uint256"),
    ("batchesHash", "bytes32"),
    ("shardsHash", "bytes32"),
    ("paramsHash", "bytes32"),
    ("sketchHash", "bytes32"),
)
_BATCHES_DOMAIN = b"hivenet/receipt-batches/v1"
_SHARDS_DOMAIN = b"hivenet/receipt-shards/v1"
_SELECT_DOMAIN = b"hivenet/receipt-select/v1"


@dataclass(frozen=True)
class Receipt:
    """One peer's claim of work for one epoch (unsigned). Build it with the helpers below."""

    run_id: RunId
    epoch: Epoch
    peer_id: PeerId
    account: str  # lower-case 0x address that signs the receipt and is paid
    steps: int  # local steps of the epoch, numbered 0 .. steps-1 in the assignment
    batch_size: int  # samples per step
    samples: int  # must equal steps * batch_size
    n_samples: int  # size of the sample space the assignment drew from (windows in the run's corpus)
    batches_hash: bytes
    shard_samples: tuple[tuple[str, int], ...]  # (shard id, samples drawn from it), sorted by shard id
    params_hash: bytes
    sketch: tuple[float, ...]  # SKETCH_DIM float32 values

    def __post_init__(self) -> None:
        object.__setattr__(self, "account", self.account.lower())

    @property
    def shards_hash(self) -> bytes:
        return shards_commitment(self.shard_samples)

    @property
    def sketch_hash(self) -> bytes:
        return hashlib.sha256(sketch_bytes(self.sketch)).digest()

    def typed_values(self) -> dict[str, object]:
        return {
            "runId": self.run_id, "epoch": self.epoch, "peerId": self.peer_id, "account": self.account,
            "steps": self.steps, "batchSize": self.batch_size, "samples": self.samples, "nSamples": self.n_samples,
            "batchesHash": self.batches_hash, "shardsHash": self.shards_hash, "paramsHash": self.params_hash,
            "sketchHash": self.sketch_hash,
        }

    def digest(self) -> bytes:
        """The EIP-712 digest the peer's Ethereum key signs."""
        return eip712.digest(RECEIPT_DOMAIN, "Receipt", RECEIPT_FIELDS, self.typed_values())

    def typed_data(self) -> dict[str, object]:
        """The EIP-712 JSON (for ``eth_account.messages.encode_typed_data(full_message=...)``)."""
        values = {k: ("0x" + v.hex() if isinstance(v, bytes) else v) for k, v in self.typed_values().items()}
        return eip712.typed_data(RECEIPT_DOMAIN, "Receipt", RECEIPT_FIELDS, values)


@dataclass(frozen=True)
class SignedReceipt:
    receipt: Receipt
    signature: bytes  # 65-byte secp256k1 signature (r, s, v) of ``receipt.digest()``


def sketch_bytes(sketch: Sequence[float]) -> bytes:
    """The float32 little-endian encoding that is hashed and sent (values round to float32 first)."""
    return struct.pack(f"<{len(sketch)}f", *sketch)


def sketch_from_bytes(data: bytes) -> tuple[float, ...]:
    if len(data) % 4:
        raise ValueError("a sketch is a whole number of float32 values")
    return struct.unpack(f"<{len(data) // 4}f", data)


def batches_commitment(run_id: RunId, epoch: Epoch, peer_id: PeerId, steps: int, batch_size: int, n_samples: int) -> bytes:
    """SHA-256 over the assigned sample indices of steps ``0 .. steps-1`` (8 bytes each, big-endian)."""
    h = hashlib.sha256(_BATCHES_DOMAIN)
    h.update(struct.pack(">QQQ", steps, batch_size, n_samples))
    for step in range(steps):
        h.update(struct.pack(f">{batch_size}Q", *assign_samples(run_id, epoch, peer_id, step, batch_size, n_samples)))
    return h.digest()


def shards_commitment(shard_samples: Iterable[tuple[str, int]]) -> bytes:
    h = hashlib.sha256(_SHARDS_DOMAIN)
    for shard_id, count in shard_samples:
        raw = shard_id.encode()
        h.update(struct.pack(">I", len(raw)) + raw + struct.pack(">Q", count))
    return h.digest()


@dataclass(frozen=True)
class CorpusLayout:
    """Where each vetted shard's bytes start in the run's training byte stream.

    A sample is the window starting at an offset; it is drawn from the shard whose span
    holds its first byte (the two separator bytes after a shard count for that shard).
    An empty layout means the run trains on a corpus that no shard owner is paid for.
    """

    shards: tuple[tuple[str, int], ...] = ()  # (shard id, start offset), offsets ascending, first at 0

    def __post_init__(self) -> None:
        starts = [s for _, s in self.shards]
        if starts and (starts[0] != 0 or any(b <= a for a, b in zip(starts, starts[1:]))):
            raise ValueError("shard starts must begin at 0 and increase strictly")

    def shard_of(self, offset: int) -> str | None:
        if not self.shards:
            return None
        return self.shards[bisect_right([s for _, s in self.shards], offset) - 1][0]


def shard_samples(layout: CorpusLayout, run_id: RunId, epoch: Epoch, peer_id: PeerId, steps: int, batch_size: int,
                  n_samples: int) -> tuple[tuple[str, int], ...]:
    """Samples per shard that the assignment gave this peer in this epoch, sorted by shard id."""
    if not layout.shards:
        return ()
    counts: Counter[str] = Counter()
    for step in range(steps):
        for offset in assign_samples(run_id, epoch, peer_id, step, batch_size, n_samples):
            shard = layout.shard_of(offset)
            assert shard is not None
            counts[shard] += 1
    return tuple(sorted(counts.items()))


def sketch_error(claimed: Sequence[float], recomputed: Sequence[float]) -> float:
    """Relative L2 distance ``|claimed - recomputed| / |recomputed|`` (inf when the lengths differ)."""
    if len(claimed) != len(recomputed):
        return math.inf
    diff = math.sqrt(sum((a - b) ** 2 for a, b in zip(claimed, recomputed)))
    norm = math.sqrt(sum(b * b for b in recomputed))
    if not math.isfinite(diff):
        return math.inf
    return diff / norm if norm > 0 else (0.0 if diff == 0 else math.inf)


def is_selected(seed: bytes, receipt_digest: bytes, p: float) -> bool:
    """Whether the spot check picks this receipt: ``H(seed || digest) < p * 2**64``.

    ``seed`` is public and fixed before the receipts are known to the validator (the
    previous epoch's posted root), so every validator picks the same receipts and a peer
    cannot choose a receipt that escapes the check. p = 1 checks all, p = 0 none.
    """
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"p must be in [0, 1], got {p}")
    value = int.from_bytes(hashlib.sha256(_SELECT_DOMAIN + seed + receipt_digest).digest()[:8], "big")
    return value < int(p * 2**64)


class Reject(str, Enum):
    """Why a receipt earns nothing (failures are data, not exceptions)."""

    WRONG_RUN = "wrong-run"  # signed for another run: a replay
    WRONG_EPOCH = "wrong-epoch"  # published under another epoch's key: a replay
    BAD_SIGNATURE = "bad-signature"  # the signer is not the receipt's account
    DUPLICATE = "duplicate"  # a second receipt of the same peer or account in the epoch, or a copied sketch
    SAMPLES_MISMATCH = "samples-mismatch"  # samples != steps * batch_size, or no steps
    OVER_CAP = "over-cap"  # more samples than one peer can contribute to one epoch
    DATASET_MISMATCH = "dataset-mismatch"  # the assignment's sample space is not the run's corpus
    BATCHES_MISMATCH = "batches-mismatch"  # the batch commitment is not the assignment's
    SHARDS_MISMATCH = "shards-mismatch"  # the per-shard sample counts are not the assignment's
    PARAMS_MISMATCH = "params-mismatch"  # trained from parameters the validator cannot find or that diverge
    SKETCH_MISMATCH = "sketch-mismatch"  # recomputation does not reproduce the sketch


@dataclass(frozen=True)
class EpochRules:
    """What every receipt of one epoch must agree with (known to the validator, not from peers)."""

    run_id: RunId
    epoch: Epoch
    n_samples: int  # windows in the run's training corpus
    max_samples: int  # per receipt: at most this many samples count (e.g. twice the target batch)
    layout: CorpusLayout = field(default_factory=CorpusLayout)


def static_check(signed: SignedReceipt, signer: str | None, rules: EpochRules) -> Reject | None:
    """Cheap checks that every receipt gets (``signer``: the address recovered from the signature)."""
    r = signed.receipt
    if r.run_id != rules.run_id:
        return Reject.WRONG_RUN
    if r.epoch != rules.epoch:
        return Reject.WRONG_EPOCH
    if signer is None or signer.lower() != r.account:
        return Reject.BAD_SIGNATURE
    if r.steps < 1 or r.batch_size < 1 or r.samples != r.steps * r.batch_size:
        return Reject.SAMPLES_MISMATCH
    if r.samples > rules.max_samples:
        return Reject.OVER_CAP
    if r.n_samples != rules.n_samples:
        return Reject.DATASET_MISMATCH
    if r.batches_hash != batches_commitment(r.run_id, r.epoch, r.peer_id, r.steps, r.batch_size, r.n_samples):
        return Reject.BATCHES_MISMATCH
    if r.shard_samples != shard_samples(rules.layout, r.run_id, r.epoch, r.peer_id, r.steps, r.batch_size, r.n_samples):
        return Reject.SHARDS_MISMATCH
    if len(r.sketch) != SKETCH_DIM or not all(math.isfinite(v) for v in r.sketch):
        return Reject.SKETCH_MISMATCH
    return None


def duplicates(receipts: Sequence[SignedReceipt]) -> set[int]:
    """Indices of receipts that repeat an earlier one's peer, account or sketch (the earliest digest wins).

    Order is by receipt digest, not by arrival, so every validator drops the same ones.
    """
    order = sorted(range(len(receipts)), key=lambda i: receipts[i].receipt.digest())
    seen_peer: set[str] = set()
    seen_account: set[str] = set()
    seen_sketch: set[bytes] = set()
    dropped: set[int] = set()
    for i in order:
        r = receipts[i].receipt
        keys = (r.peer_id, r.account, r.sketch_hash)
        if r.peer_id in seen_peer or r.account in seen_account or r.sketch_hash in seen_sketch:
            dropped.add(i)
        seen_peer.add(keys[0])
        seen_account.add(keys[1])
        seen_sketch.add(keys[2])
    return dropped


@dataclass(frozen=True)
class Verdict:
    """The validator's decision on one receipt."""

    receipt: Receipt
    accepted: bool
    checked: bool  # recomputed in the spot check (False: passed the static checks, not sampled)
    reason: Reject | None = None
    error: float | None = None  # relative sketch error when recomputed

    def as_dict(self) -> dict[str, object]:
        r = self.receipt
        return {
            "peer": r.peer_id, "account": r.account, "epoch": r.epoch, "samples": r.samples, "accepted": self.accepted,
            "checked": self.checked, "reason": self.reason.value if self.reason else None, "error": self.error,
        }


def credits(verdicts: Iterable[Verdict], owners: Mapping[str, str]) -> tuple[dict[str, int], dict[str, int]]:
    """(compute credits by account, data credits by shard owner) of the accepted receipts.

    Compute credit is a receipt's samples; data credit is the samples the assignment drew
    from each shard, paid to the shard's owner (shards without a known owner earn nothing).
    """
    compute: Counter[str] = Counter()
    data: Counter[str] = Counter()
    for v in verdicts:
        if not v.accepted:
            continue
        compute[v.receipt.account] += v.receipt.samples
        for shard, count in v.receipt.shard_samples:
            owner = owners.get(shard)
            if owner is not None:
                data[owner.lower()] += count
    return dict(compute), dict(data)
