"""The p2p identity file: a libp2p private key (as hivemind generates it) whose peer id survives restarts."""

from __future__ import annotations

from pathlib import Path

from hivemind.p2p import P2P, PeerID

from protocol.types import PeerId


def ensure_identity(path: Path) -> PeerId:
    """Create the key file at ``path`` if missing; return the peer id it gives."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        P2P.generate_identity(str(path))
    return PeerId(PeerID.from_identity(path.read_bytes()).to_base58())
