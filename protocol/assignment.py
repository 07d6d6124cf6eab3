"""Deterministic batch assignment: which training samples a peer gets, and when.

A pure function of (run id, epoch, peer id, local step), so any node, a
validator in particular, can recompute exactly which samples a peer was given.
Indices come from SHA-256 in counter mode, not from a language's PRNG, so the
rule is the same in every implementation and every version.
"""

from __future__ import annotations

import hashlib
import struct

from protocol.types import Epoch, PeerId, RunId

_DOMAIN = b"hivenet/assignment/v1"


def assignment_seed(run_id: RunId, epoch: Epoch, peer_id: PeerId, step: int) -> bytes:
    """The 32-byte seed of one local step's batch; also usable to seed dropout and sampling."""
    if epoch < 0 or step < 0:
        raise ValueError(f"epoch and step must be non-negative, got epoch={epoch} step={step}")
    h = hashlib.sha256(_DOMAIN)
    for part in (run_id.encode(), peer_id.encode()):
        h.update(struct.pack(">I", len(part)) + part)
    h.update(struct.pack(">QQ", epoch, step))
    return h.digest()


def assign_samples(
    run_id: RunId, epoch: Epoch, peer_id: PeerId, step: int, batch_size: int, n_samples: int
) -> list[int]:
    """Indices in ``[0, n_samples)`` of the ``batch_size`` samples for this peer's local step.

    Indices are drawn with replacement, uniformly (rejection sampling removes
    modulo bias), so the distribution does not depend on ``n_samples``' factors.
    """
    if batch_size < 1 or n_samples < 1:
        raise ValueError(f"batch_size and n_samples must be positive, got {batch_size}, {n_samples}")
    seed = assignment_seed(run_id, epoch, peer_id, step)
    limit = (1 << 64) - ((1 << 64) % n_samples)  # largest multiple of n_samples below 2**64
    indices: list[int] = []
    counter = 0
    while len(indices) < batch_size:
        block = hashlib.sha256(seed + struct.pack(">Q", counter)).digest()
        counter += 1
        for (value,) in struct.iter_unpack(">Q", block):
            if value < limit and len(indices) < batch_size:
                indices.append(value % n_samples)
    return indices
