"""Epoch-start snapshots over P2P binary streams (``node.swarm.streams``), verified by hash before use.

Protocol ``/hivenet/snapshots/1``, one request per stream:

    request   32 bytes: the params hash wanted
    response  u8 status (0 ok, 1 not held) || u64be length || the raw parameters (``node.work.snapshot_store``)

The raw form's SHA-256 is the params hash, so the fetcher refuses a response whose announced length is
not the model's (before reading it), and one whose bytes do not hash to the wanted id (before anything
parses them). It tries holders in turn: a wrong length or hash marks the holder faulty (logged, never
asked again in this fetch); a refused stream, a dead peer, "not held", a stall or a slow transfer marks it
unavailable; the next holder is asked, until one serves or the deadline passes.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import struct
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from node.swarm.streams import P2P, PeerID, StreamError, StreamInfo, open_stream, serve, stop_serving
from node.work.snapshot_store import SnapshotStore

log = logging.getLogger(__name__)

PROTOCOL = "/hivenet/snapshots/1"
_HEADER = struct.Struct(">BQ")
OK, NOT_HELD = 0, 1
DIGEST_BYTES = 32
SEND_BYTES = 1 << 20  # bytes written per drain: flow control without a copy of the whole snapshot per write


@dataclass(frozen=True)
class SnapshotFetchConfig:
    # Seconds one fetch may take over all holders (lookups included); past it the snapshot counts as
    # unavailable and the receipts naming it earn nothing for the epoch.
    deadline_s: float = 60.0
    holder_timeout_s: float = 30.0  # one holder: opening the stream and the whole transfer
    stall_s: float = 10.0  # no byte from a holder for this long: it counts as gone
    lookup_every_s: float = 2.0  # while no holder has served, read the DHT's holders again this often
    # Give up sooner on a snapshot no peer has announced at all: trainers announce at the epoch's start, long
    # before its receipts, so it is made up or gone; a receipt naming a random hash costs at most this.
    unannounced_s: float = 15.0


class SnapshotServer:
    """Serves the snapshots of a store by hash. ``snapshot_bytes`` is the one place bytes leave the store."""

    def __init__(self, store: SnapshotStore) -> None:
        self.store = store
        self.served = 0  # snapshots sent in full
        self._p2p: P2P | None = None
        self._streams: set[asyncio.Task[None]] = set()

    async def start(self, p2p: P2P) -> None:
        self._p2p = p2p
        await serve(p2p, PROTOCOL, self._handle)

    async def stop(self, timeout: float = 5.0) -> None:
        """Stop accepting streams and end open ones (their clients see EOF and go to other holders)."""
        if self._p2p is not None:
            await stop_serving(self._p2p, PROTOCOL)
            self._p2p = None
        for task in self._streams:
            task.cancel()
        if self._streams:
            await asyncio.wait(self._streams, timeout=timeout)

    def snapshot_bytes(self, digest: bytes) -> bytes | None:
        return self.store.raw_params(digest)

    async def _handle(self, info: StreamInfo, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._streams.add(task)
        try:
            await self._serve(info, reader, writer)
        except asyncio.CancelledError:
            # hivemind's stream callback inspects the handler task's exception; a cancelled task raises
            # there, so a stream ended by stop() finishes normally instead.
            if self._p2p is not None:
                raise
        finally:
            self._streams.discard(task)

    async def _serve(self, info: StreamInfo, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            digest = await reader.readexactly(DIGEST_BYTES)
            raw = await asyncio.to_thread(self.snapshot_bytes, digest)  # torch.load: off the loop
            if raw is None:
                writer.write(_HEADER.pack(NOT_HELD, 0))
                await writer.drain()
                return
            writer.write(_HEADER.pack(OK, len(raw)))
            view = memoryview(raw)
            for start in range(0, len(raw), SEND_BYTES):
                writer.write(view[start : start + SEND_BYTES])
                await writer.drain()
            self.served += 1
        except (ConnectionError, asyncio.IncompleteReadError) as e:
            log.debug("snapshot stream from %s ended: %s", info.peer_id, e)
        finally:
            writer.close()


@dataclass
class SnapshotFetchReport:
    """What one fetch of a snapshot did: who served it, and why each other holder did not."""

    digest: bytes
    served_by: str | None = None  # base58 peer id of the holder whose bytes were accepted
    faulty: dict[str, str] = field(default_factory=dict)  # holder -> what was wrong with its bytes
    unavailable: dict[str, str] = field(default_factory=dict)  # holder -> why it did not serve (not blamed)
    lookups: int = 0  # DHT lookups of the holders
    elapsed_s: float = 0.0  # seconds the fetch took, lookups included

    def tried(self) -> set[str]:
        return set(self.faulty) | set(self.unavailable)

    def reason(self) -> str:
        """Why the snapshot was not fetched, for the validator's record of the receipts naming it."""
        head = f"snapshot {self.digest.hex()[:16]} not fetched (gave up after {self.elapsed_s:.1f} s)"
        if not self.faulty and not self.unavailable:
            return f"{head}: no peer announced it in the DHT ({self.lookups} lookup(s))"
        parts = [f"{peer} sent {why}" for peer, why in sorted(self.faulty.items())]
        parts += [f"{peer} {why}" for peer, why in sorted(self.unavailable.items())]
        return f"{head}: " + "; ".join(parts)


class _Faulty(Exception):
    """The holder sent bytes that are not the snapshot (blamed, unlike a holder that fails to answer)."""


class SnapshotFetcher:
    def __init__(self, p2p: P2P, cfg: SnapshotFetchConfig = SnapshotFetchConfig()) -> None:
        self.p2p, self.cfg = p2p, cfg

    async def fetch(self, digest: bytes, size: int, holders: Sequence[PeerID], report: SnapshotFetchReport,
                    deadline: float) -> bytes | None:
        """The raw snapshot ``digest`` (``size`` bytes) from the first of ``holders`` that serves it correctly
        before ``deadline`` (``time.monotonic()``); None when none did. ``report`` gets each holder's outcome."""
        for peer in holders:
            name = peer.to_base58()
            if name in report.tried():
                continue
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            try:
                async with asyncio.timeout(min(left, self.cfg.holder_timeout_s)):
                    raw = await self._from(peer, digest, size)
            except _Faulty as e:
                log.warning("snapshot holder %s sent %s for %s; refused, asking another holder", name, e, digest.hex()[:16])
                report.faulty[name] = str(e)
                continue
            except TimeoutError:
                why = "was too slow (no full snapshot within its time)"
            except (OSError, asyncio.IncompleteReadError, StreamError) as e:
                why = f"was unreachable or ended the stream ({type(e).__name__})"
            else:
                if raw is None:
                    why = "does not hold it"
                else:
                    report.served_by = name
                    return raw
            log.info("snapshot holder %s %s; asking another holder", name, why)
            report.unavailable[name] = why
        return None

    async def _from(self, peer: PeerID, digest: bytes, size: int) -> bytes | None:
        reader, writer = await open_stream(self.p2p, peer, PROTOCOL)
        try:
            writer.write(digest)
            await writer.drain()
            status, length = _HEADER.unpack(await self._read(reader, _HEADER.size))
            if status == NOT_HELD:
                return None
            if status != OK or length != size:
                raise _Faulty(f"a response of {length} bytes (status {status}) where the snapshot has {size}")
            h = hashlib.sha256()
            data = bytearray()
            while len(data) < size:
                chunk = await self._read(reader, min(SEND_BYTES, size - len(data)))
                h.update(chunk)
                data += chunk
            if h.digest() != digest:
                raise _Faulty(f"bytes hashing to {h.hexdigest()[:16]}, not to the snapshot's id")
            return bytes(data)
        finally:
            writer.close()

    async def _read(self, reader: asyncio.StreamReader, n: int) -> bytes:
        try:
            async with asyncio.timeout(self.cfg.stall_s):
                return await reader.readexactly(n)
        except TimeoutError:
            raise TimeoutError(f"no byte for {self.cfg.stall_s:g} s") from None
