"""Checkpoints that are written atomically and checked before they are trusted.

File layout: one header line ``HIVENETCKPT1 <sha256 of the payload>`` and then
the ``torch.save`` payload. A checkpoint whose digest does not match is
reported as corrupt and left where it is: never silently overwritten.
"""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path
from typing import Any

import torch

from protocol.errors import CheckpointError

_MAGIC = b"HIVENETCKPT1"


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Write ``state`` to ``path`` atomically: a crash leaves the previous checkpoint intact."""
    buf = io.BytesIO()
    torch.save(state, buf)
    payload = buf.getvalue()
    header = _MAGIC + b" " + hashlib.sha256(payload).hexdigest().encode() + b"\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(header)
        f.write(payload)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def load_checkpoint(path: Path) -> dict[str, Any] | None:
    """The saved state, None when there is no checkpoint; CheckpointError when it is corrupt."""
    if not path.exists():
        return None
    data = path.read_bytes()
    header, sep, payload = data.partition(b"\n")
    parts = header.split(b" ")
    fix = f"move {path} away (or start with --fresh) to start without it; hivenet will not overwrite it"
    if not sep or len(parts) != 2 or parts[0] != _MAGIC:
        raise CheckpointError(f"checkpoint {path} is not a hivenet checkpoint or its header is damaged; {fix}")
    if hashlib.sha256(payload).hexdigest().encode() != parts[1]:
        raise CheckpointError(f"checkpoint {path} is corrupt (its contents do not match their digest); {fix}")
    try:
        state = torch.load(io.BytesIO(payload), map_location="cpu", weights_only=True)
    except Exception as e:  # a digest-valid file that torch cannot read was written by something else
        raise CheckpointError(f"checkpoint {path} could not be read ({e}); {fix}") from e
    if not isinstance(state, dict):
        raise CheckpointError(f"checkpoint {path} does not hold a state dictionary; {fix}")
    return state
