"""Typed identifiers shared across hivenet (``NewType`` so mypy keeps them apart)."""

from typing import NewType

RunId = NewType("RunId", str)
PeerId = NewType("PeerId", str)  # base58 libp2p peer id, as hivemind prints it
Epoch = NewType("Epoch", int)
ShardId = NewType("ShardId", str)  # hex Merkle root of a shard's chunk hashes
