"""P2P binary streams for the other packages (shards, snapshots): hivemind's ``P2P`` stream handlers, by our names.

A server registers an async handler for a protocol name on the peer's ``P2P``; a client opens a stream to a
peer under that name and gets an asyncio reader and writer. Everything the other packages need of hivemind's
p2p layer comes from here, so they import no hivemind.

    .venv/bin/python -m pytest tests/data/test_exchange.py -q
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from hivemind.p2p import P2P, PeerID
from hivemind.p2p.p2p_daemon_bindings.datastructures import StreamInfo
from hivemind.p2p.p2p_daemon_bindings.utils import P2PDaemonError

__all__ = ["P2P", "PeerID", "StreamError", "StreamHandler", "StreamInfo", "open_stream", "peer_from_base58",
           "serve", "stop_serving"]

# The p2p daemon could not open or carry a stream (the peer is gone, the protocol is not served there, ...).
StreamError = P2PDaemonError

StreamHandler = Callable[[StreamInfo, asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def serve(p2p: P2P, protocol: str, handler: StreamHandler) -> None:
    """Answer every stream a peer opens under ``protocol`` with ``handler``."""
    await p2p.add_binary_stream_handler(protocol, handler)


async def stop_serving(p2p: P2P, protocol: str) -> None:
    await p2p.remove_binary_stream_handler(protocol)


async def open_stream(p2p: P2P, peer: PeerID, protocol: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A new stream to ``peer`` under ``protocol``; raises StreamError when the daemon cannot open it."""
    _, reader, writer = await p2p.call_binary_stream_handler(peer, protocol)
    return reader, writer


def peer_from_base58(text: str) -> PeerID:
    """The peer id written as ``text``; ValueError when it is not one."""
    return PeerID.from_base58(text)
