"""Shard exchange over P2P binary streams (``node.swarm.streams``), verified chunk by chunk.

Protocol ``/hivenet/shards/1`` (one stream carries any number of requests):

    request   u32be length || JSON {"op": "manifest"|"chunks", "shard": <hex id>, "chunks": [i, ...]}
    response  per item: u8 status (0 ok, 1 error) || u32be length || bytes
              (manifest: one item; chunks: one item per requested index, in order)

The fetcher checks the manifest against the wanted id (its root), then each
chunk's SHA-256 against the manifest *before* writing it. Chunks are striped
over the holders (chunk i to holder i mod k); a holder that finishes its
stripe takes work from the end of the others'. A holder that sends
one wrong byte is marked faulty and dropped; its chunks are fetched from the
other holders. Verified chunks persist in the store's ``partial/`` directory,
so an interrupted transfer resumes where it stopped.
"""

from __future__ import annotations

import asyncio
import logging
import struct
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from node.data.store import PartialShard, ShardStore
from node.swarm.streams import P2P, PeerID, StreamError, StreamInfo, open_stream, serve, stop_serving
from protocol.errors import ChunkCorrupt, ManifestError, ShardError, ShardUnavailable
from protocol.shards import MAX_MANIFEST_BYTES, ShardManifest, manifest_bytes, parse_manifest
from protocol.types import ShardId

log = logging.getLogger(__name__)

PROTOCOL = "/hivenet/shards/1"
_LEN = struct.Struct(">I")
_MAX_REQUEST = 4096
OK, ERR = 0, 1


@dataclass(frozen=True)
class ExchangeConfig:
    batch: int = 16  # chunks per request: pipelines transfers without tying a holder to too much work
    request_timeout: float = 30.0  # seconds for one request's full response before the holder counts as unavailable
    max_rounds: int = 4  # fetch rounds over the live holders before giving up on missing chunks


class ChunkRequest(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)

    op: str = Field(pattern=r"^(manifest|chunks)$")
    shard: str = Field(pattern=r"^[0-9a-f]{64}$")
    chunks: tuple[int, ...] = Field(default=(), max_length=256)


async def _send_item(writer: asyncio.StreamWriter, status: int, data: bytes) -> None:
    writer.write(bytes([status]) + _LEN.pack(len(data)))
    writer.write(data)
    await writer.drain()


async def _read_item(reader: asyncio.StreamReader, limit: int) -> tuple[int, bytes]:
    header = await reader.readexactly(1 + _LEN.size)
    status, (length,) = header[0], _LEN.unpack(header[1:])
    if status not in (OK, ERR) or length > limit:
        raise ShardError(f"malformed response item (status {status}, {length} bytes, limit {limit})")
    return status, await reader.readexactly(length)


class ShardServer:
    """Serves the shards of a store to peers. ``chunk_bytes`` is the one place bytes leave the store."""

    def __init__(self, store: ShardStore) -> None:
        self.store = store
        self.served_chunks = 0
        self.served_peers: set[str] = set()  # peers that were sent at least one chunk (for status lines)
        self._p2p: P2P | None = None
        self._streams: set[asyncio.Task[None]] = set()

    async def start(self, p2p: P2P) -> None:
        self._p2p = p2p
        await serve(p2p, PROTOCOL, self._handle)

    async def stop(self, timeout: float = 5.0) -> None:
        """Stop accepting streams, and end open ones (their clients see EOF and go to other holders)."""
        if self._p2p is not None:
            await stop_serving(self._p2p, PROTOCOL)
            self._p2p = None
        for task in self._streams:
            task.cancel()
        if self._streams:
            await asyncio.wait(self._streams, timeout=timeout)

    def chunk_bytes(self, shard_id: str, index: int) -> bytes:
        return self.store.read_chunk(shard_id, index)

    async def _handle(self, info: StreamInfo, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._streams.add(task)
        try:
            await self._serve(info, reader, writer)
        except asyncio.CancelledError:
            # hivemind's stream callback inspects the handler task's exception; a cancelled task
            # raises there, so a stream ended by stop() finishes normally instead.
            if self._p2p is not None:
                raise
        finally:
            self._streams.discard(task)

    async def _serve(self, info: StreamInfo, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                try:
                    (length,) = _LEN.unpack(await reader.readexactly(_LEN.size))
                except asyncio.IncompleteReadError:
                    return  # the client closed the stream
                if length > _MAX_REQUEST:
                    return
                try:
                    req = ChunkRequest.model_validate_json(await reader.readexactly(length))
                except ValidationError:
                    await _send_item(writer, ERR, b"malformed request")
                    return
                await self._answer(req, writer, info.peer_id.to_base58())
        except (ConnectionError, asyncio.IncompleteReadError) as e:
            log.debug("shard stream from %s ended: %s", info.peer_id, e)
        finally:
            writer.close()

    async def _answer(self, req: ChunkRequest, writer: asyncio.StreamWriter, peer: str) -> None:
        if not self.store.has(req.shard):
            await _send_item(writer, ERR, b"shard not held")
            return
        manifest = self.store.manifest(req.shard)
        if req.op == "manifest":
            await _send_item(writer, OK, manifest_bytes(manifest))
            return
        for i in req.chunks:
            if not 0 <= i < manifest.n_chunks:
                await _send_item(writer, ERR, b"no such chunk")
                continue
            await _send_item(writer, OK, self.chunk_bytes(req.shard, i))
            self.served_chunks += 1
            self.served_peers.add(peer)


@dataclass
class FetchReport:
    shard_id: ShardId
    fetched: dict[str, int] = field(default_factory=dict)  # holder (base58) -> chunks accepted from it
    faulty: set[str] = field(default_factory=set)  # holders that sent a bad manifest or chunk
    unavailable: set[str] = field(default_factory=set)  # holders that failed to answer (not blamed)
    resumed: int = 0  # chunks already verified on disk from an earlier, interrupted fetch


class _Conn:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    async def request(self, req: ChunkRequest) -> None:
        body = req.model_dump_json().encode()
        self.writer.write(_LEN.pack(len(body)) + body)
        await self.writer.drain()

    def close(self) -> None:
        self.writer.close()


class ShardFetcher:
    def __init__(self, p2p: P2P, store: ShardStore, cfg: ExchangeConfig = ExchangeConfig()) -> None:
        self.p2p, self.store, self.cfg = p2p, store, cfg

    async def _open(self, peer: PeerID) -> _Conn:
        reader, writer = await asyncio.wait_for(open_stream(self.p2p, peer, PROTOCOL), self.cfg.request_timeout)
        return _Conn(reader, writer)

    async def fetch_manifest(self, shard_id: ShardId, holders: Sequence[PeerID]) -> ShardManifest:
        """The manifest of ``shard_id`` from the first holder that sends one matching the id (sizes before chunks)."""
        if self.store.has(shard_id):
            return self.store.manifest(shard_id)
        return await self._manifest(shard_id, holders, FetchReport(shard_id))

    async def fetch(
        self, shard_id: ShardId, holders: Sequence[PeerID], manifest: ShardManifest | None = None
    ) -> tuple[ShardManifest, FetchReport]:
        """Fetch ``shard_id`` from ``holders`` into the store; returns its manifest and who served what.

        ``manifest``, when the caller already fetched it (``fetch_manifest``), must be the shard's own.
        """
        report = FetchReport(shard_id)
        if self.store.has(shard_id):
            return self.store.manifest(shard_id), report
        if manifest is None:
            manifest = await self._manifest(shard_id, holders, report)
        elif manifest.shard_id != shard_id:
            raise ManifestError(f"manifest of shard {manifest.shard_id[:16]} given for shard {shard_id[:16]}")
        partial = self.store.partial(manifest)
        missing = partial.missing()
        report.resumed = manifest.n_chunks - len(missing)
        for _ in range(self.cfg.max_rounds):
            live = [h for h in holders if h.to_base58() not in report.faulty | report.unavailable]
            if not missing or not live:
                break
            stripes = [deque(missing[k :: len(live)]) for k in range(len(live))]
            async with asyncio.TaskGroup() as tg:
                for k, peer in enumerate(live):
                    tg.create_task(self._worker(peer, manifest, partial, stripes, k, report))
            missing = partial.missing()
        if missing:
            raise ShardUnavailable(
                f"shard {shard_id[:16]}: {len(missing)} of {manifest.n_chunks} chunks could not be fetched from an honest "
                f"holder (faulty: {sorted(report.faulty) or 'none'}, unavailable: {sorted(report.unavailable) or 'none'}); "
                "verified chunks are kept and a later fetch resumes"
            )
        return partial.finalize(), report

    async def _manifest(self, shard_id: ShardId, holders: Sequence[PeerID], report: FetchReport) -> ShardManifest:
        for peer in holders:
            name = peer.to_base58()
            try:
                conn = await self._open(peer)
                try:
                    await conn.request(ChunkRequest(op="manifest", shard=shard_id))
                    status, data = await asyncio.wait_for(_read_item(conn.reader, MAX_MANIFEST_BYTES), self.cfg.request_timeout)
                finally:
                    conn.close()
            except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, ShardError, StreamError) as e:
                log.info("holder %s did not send a manifest: %s", name, e)
                report.unavailable.add(name)
                continue
            if status != OK:
                report.unavailable.add(name)
                continue
            try:
                return parse_manifest(data, expected_id=shard_id)
            except ManifestError as e:
                log.warning("holder %s sent a bad manifest for %s: %s", name, shard_id[:16], e)
                report.faulty.add(name)
        raise ShardUnavailable(f"no holder sent a valid manifest for shard {shard_id[:16]} (asked {len(holders)})")

    def _take(self, stripes: list[deque[int]], own: int) -> list[int]:
        """Up to ``batch`` chunks from this holder's stripe, else from the end of the longest other stripe."""
        if stripes[own]:
            src, take = stripes[own], stripes[own].popleft
        else:
            src = max(stripes, key=len)
            take = src.pop
        return [take() for _ in range(min(self.cfg.batch, len(src)))]

    async def _worker(
        self, peer: PeerID, manifest: ShardManifest, partial: PartialShard, stripes: list[deque[int]], own: int, report: FetchReport
    ) -> None:
        name = peer.to_base58()
        batch = self._take(stripes, own)  # reserved before the first await: the stripe's head goes to its holder
        conn: _Conn | None = None
        try:
            conn = await self._open(peer)
            while batch:
                await conn.request(ChunkRequest(op="chunks", shard=manifest.shard_id, chunks=tuple(batch)))
                while batch:
                    i = batch[0]
                    status, data = await asyncio.wait_for(
                        _read_item(conn.reader, manifest.chunk_size), self.cfg.request_timeout
                    )
                    try:
                        if status != OK:
                            raise ChunkCorrupt(manifest.shard_id, [i], data[:100].decode(errors="replace"))
                        partial.write(i, data)  # verifies against the manifest before anything is written
                    except ChunkCorrupt:
                        # Refused: nothing of it is written; the holder is dropped and its chunks go back.
                        log.warning("holder %s sent a bad chunk %d of %s; refusing it", name, i, manifest.shard_id[:16])
                        report.faulty.add(name)
                        return
                    report.fetched[name] = report.fetched.get(name, 0) + 1
                    batch.pop(0)
                batch = self._take(stripes, own)
        except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, ShardError, StreamError) as e:
            log.info("holder %s became unavailable: %s", name, e)
            report.unavailable.add(name)
        finally:
            stripes[own].extendleft(reversed(batch))  # unserved chunks go back for the other holders
            if conn is not None:
                conn.close()
