"""Epoch-start parameters on disk, content-addressed: ``<directory>/<sha256 of the parameters>.pt``.

A trainer writes the parameters it starts each epoch from, named by ``params_hash``, so
identical parameters of several peers are stored once; a validator loads the snapshot a
receipt names, checks that it hashes to that name, and recomputes the receipt from it.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from node.work.sketch import params_hash


def snapshot_path(directory: Path, digest: bytes) -> Path:
    return directory / f"{digest.hex()}.pt"


def save_snapshot(model: torch.nn.Module, directory: Path, digest: bytes | None = None) -> bytes:
    """Writes the parameters to ``directory/<hash>.pt`` unless that file exists; returns the hash
    (``digest``: the parameters' hash when the caller has it already, so the parameters are hashed once)."""
    digest = params_hash(model) if digest is None else digest
    path = snapshot_path(directory, digest)
    if not path.exists():
        directory.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        torch.save([p.detach().cpu().clone() for p in model.parameters()], tmp)
        os.replace(tmp, path)
    return digest


def load_snapshot(model: torch.nn.Module, directory: Path, digest: bytes) -> bool:
    """Loads the snapshot ``digest`` into ``model``; False when it is missing or does not hash to its name."""
    path = snapshot_path(directory, digest)
    if not path.exists():
        return False
    tensors = torch.load(path, weights_only=True)
    params = list(model.parameters())
    if len(tensors) != len(params) or any(t.shape != p.shape for t, p in zip(tensors, params)):
        return False
    with torch.no_grad():
        for p, t in zip(params, tensors):
            p.copy_(t)
    return params_hash(model) == digest
