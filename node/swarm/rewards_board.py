"""Rewards trees over the network: a settling validator announces and serves them, anyone fetches and verifies.

DHT key ``{run_id}_rewards_{ledger_epoch}``; one subkey per publisher, owned by it (``node.swarm.dht.owned_subkey``:
nobody can rewrite another publisher's announcement). The value names the tree's content id, its root, the size
and the serving peer; it is untrusted and parsed strictly. Trees are served over P2P streams
(``node.swarm.streams``), protocol ``/hivenet/rewards/1``:

    request   u32be length || JSON {"tree": <64 hex content id>}
    response  u8 status (0 ok, 1 error) || u32be length || bytes (the canonical tree, protocol.rewards_publication)

A fetcher tries every announcement of the epoch (those naming the root it expects first) and keeps the first
tree that hashes to its id, parses (leaves hash to the root, proofs are the leaves') and that ``accept`` takes
(the claimer checks it against the root on chain). Refusals are logged with the serving peer; when every
announcement is refused, the error lists each peer and what did not match.

    board = RewardsBoard(dht, run_id)                     # installs the owner-signature validator
    peer = RewardsPeer(board); peer.publish(pub)          # from a validator thread: announce + serve
    RewardsPeer(board, serve=False).fetch(epoch, check)   # from the CLI: find, fetch, verify; then close()

    .venv/bin/python -m pytest tests/rewards/test_rewards_board.py -q
"""

from __future__ import annotations

import asyncio
import json
import logging
import struct
import threading
from collections import OrderedDict
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from node.swarm.dht import DHT, SigningKey, dht_time, owned_subkey
from node.swarm.streams import P2P, PeerID, StreamError, StreamInfo, open_stream, peer_from_base58, serve, stop_serving
from protocol.rewards_publication import (
    MAX_TREE_BYTES,
    RewardsMismatch,
    RewardsPublication,
    RewardsUnavailable,
    content_id,
    parse,
)

log = logging.getLogger(__name__)

PROTOCOL = "/hivenet/rewards/1"
_LEN = struct.Struct(">I")
_MAX_REQUEST = 256
OK, ERR = 0, 1
T = TypeVar("T")


@dataclass(frozen=True)
class RewardsBoardConfig:
    # Seconds an announcement lives. Claims come hours or days after settlement, so it is long; a long-lived
    # publisher calls ``reannounce`` well within it, and a dead one is forgotten after it.
    ttl: float = 24 * 3600.0
    timeout: float = 15.0  # seconds to wait for the DHT on a store or get
    request_timeout: float = 30.0  # seconds one peer has to open a stream and send a whole tree
    # Trees this publisher keeps serving, newest first out. Rewards are cumulative, so a claim needs only the
    # latest finalized tree; a few more cover the epochs posted but still inside the challenge window.
    keep: int = 8
    max_candidates: int = 16  # announcements a fetcher tries per epoch: bounds what a spammer can make it download


class Announcement(BaseModel):
    """The value of one publisher's subkey."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)

    tree: str = Field(pattern=r"^[0-9a-f]{64}$")  # content id: sha256 of the canonical bytes
    root: str = Field(pattern=r"^[0-9a-f]{64}$")  # the Merkle root the tree names (a hint; the bytes decide)
    peer: str = Field(min_length=20, max_length=128, pattern=r"^[1-9A-HJ-NP-Za-km-z]+$")  # base58 peer id serving it
    size: int = Field(ge=1, le=MAX_TREE_BYTES)


def rewards_key(run_id: str, ledger_epoch: int) -> str:
    return f"{run_id}_rewards_{ledger_epoch}"


async def _send_item(writer: asyncio.StreamWriter, status: int, data: bytes) -> None:
    writer.write(bytes([status]) + _LEN.pack(len(data)) + data)
    await writer.drain()


class RewardsBoard:
    """Announce and serve this peer's rewards trees, and find and fetch everyone's, through one DHT.

    A DHT keeps the first signature validator it is given: create one board per DHT. ``private_key`` defaults
    to the process-wide key (the one the receipt board installs); tests running several DHTs in one process
    pass a key per DHT.
    """

    def __init__(self, dht: DHT, run_id: str, cfg: RewardsBoardConfig = RewardsBoardConfig(),
                 private_key: SigningKey | None = None) -> None:
        self.dht, self.run_id, self.cfg = dht, run_id, cfg
        self.subkey = owned_subkey(dht, private_key)
        self.trees: OrderedDict[str, bytes] = OrderedDict()  # content id -> canonical bytes, oldest first
        self.records: dict[int, Announcement] = {}  # ledger epoch -> this peer's announcement
        self.served = 0  # trees sent to peers
        self._p2p: P2P | None = None

    # -- publishing ---------------------------------------------------------------------------------

    async def start_serving(self, p2p: P2P) -> None:
        self._p2p = p2p
        await serve(p2p, PROTOCOL, self._handle)

    async def stop_serving(self) -> None:
        if self._p2p is not None:
            await stop_serving(self._p2p, PROTOCOL)
            self._p2p = None

    def hold(self, tree_id: str, data: bytes, ledger_epoch: int, root: bytes) -> Announcement:
        """Keeps ``data`` to serve under ``tree_id`` (dropping the oldest beyond ``keep``); returns its record."""
        self.trees[tree_id] = data
        self.trees.move_to_end(tree_id)
        while len(self.trees) > self.cfg.keep:
            self.trees.popitem(last=False)
        record = Announcement(tree=tree_id, root=root.hex(), peer=self.dht.peer_id.to_base58(), size=len(data))
        self.records[ledger_epoch] = record
        self.records = {e: r for e, r in self.records.items() if r.tree in self.trees}  # announce only what is served
        return record

    async def announce(self, publication: RewardsPublication) -> str:
        """Serves ``publication`` and announces it under its epoch; returns its content id.

        Raises RewardsUnavailable when the DHT did not take the announcement within ``cfg.timeout``."""
        if publication.run_id != self.run_id:
            raise ValueError(f"publication of run {publication.run_id!r} on the board of run {self.run_id!r}")
        tree_id = await self.announce_raw(publication.ledger_epoch, publication.encode(), publication.root)
        log.info("rewards tree of ledger epoch %d announced: %s (%d accounts)", publication.ledger_epoch,
                 tree_id[:16], len(publication.tree.amounts))
        return tree_id

    async def announce_raw(self, ledger_epoch: int, data: bytes, root: bytes, tree_id: str | None = None) -> str:
        """Serves any bytes under ``tree_id`` (default: their content id) and announces them (tests use it to
        try forged trees); returns the id."""
        tree_id = tree_id or content_id(data)
        record = self.hold(tree_id, data, ledger_epoch, root)
        if not await self._store(ledger_epoch, record):
            raise RewardsUnavailable(f"the DHT did not store the announcement of ledger epoch {ledger_epoch}")
        return tree_id

    async def reannounce(self) -> int:
        """Stores again the announcements of the trees still held (before ``ttl`` runs out); returns how many."""
        done = 0
        for epoch, record in list(self.records.items()):
            done += await self._store(epoch, record)
        return done

    async def _store(self, ledger_epoch: int, record: Announcement) -> bool:
        future = self.dht.store(rewards_key(self.run_id, ledger_epoch), record.model_dump(), dht_time() + self.cfg.ttl,
                                subkey=self.subkey, return_future=True)
        try:
            return bool(await asyncio.wait_for(future, self.cfg.timeout))
        except OSError as e:  # TimeoutError, or the pipe to a DHT process that is gone
            log.warning("announcement of ledger epoch %d not stored: %s", ledger_epoch, type(e).__name__)
            return False

    async def _handle(self, info: StreamInfo, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            (length,) = _LEN.unpack(await reader.readexactly(_LEN.size))
            if length > _MAX_REQUEST:
                return
            try:
                tree_id = json.loads(await reader.readexactly(length))["tree"]
            except (ValueError, KeyError, TypeError):
                await _send_item(writer, ERR, b"malformed request")
                return
            data = self.trees.get(tree_id) if isinstance(tree_id, str) else None
            if data is None:
                await _send_item(writer, ERR, b"tree not held")
                return
            await _send_item(writer, OK, data)
            self.served += 1
        except (ConnectionError, asyncio.IncompleteReadError) as e:
            log.debug("rewards stream from %s ended: %s", info.peer_id, e)
        finally:
            writer.close()

    # -- fetching -----------------------------------------------------------------------------------

    async def announcements(self, ledger_epoch: int) -> list[Announcement]:
        """Well-formed, unexpired announcements of ``ledger_epoch`` (at most ``max_candidates``)."""
        found = await asyncio.wait_for(self.dht.get(rewards_key(self.run_id, ledger_epoch), latest=True,
                                                    return_future=True), self.cfg.timeout)
        if found is None or not isinstance(found.value, dict):
            return []
        now, out = dht_time(), []
        for item in found.value.values():
            try:
                record = Announcement.model_validate(item.value)
            except ValidationError:
                continue  # malformed announcement: ignore, never crash on DHT contents
            if item.expiration_time > now and record not in out:
                out.append(record)
        return out[: self.cfg.max_candidates]

    async def fetch(self, p2p: P2P, ledger_epoch: int, accept: Callable[[RewardsPublication], None],
                    prefer_root: bytes | None = None) -> RewardsPublication:
        """The first announced tree of ``ledger_epoch`` that verifies and that ``accept`` does not refuse.

        ``accept`` raises RewardsMismatch to refuse (e.g. a root that is not the chain's). Raises
        RewardsMismatch listing every refusal when all were refused, RewardsUnavailable when none was served.
        """
        records = await self.announcements(ledger_epoch)
        if not records:
            raise RewardsUnavailable(
                f"nobody announces a rewards tree for run {self.run_id!r}, ledger epoch {ledger_epoch}; check "
                "--run-id and --initial-peers, or wait until the settling validator has published it")
        if prefer_root is not None:
            records.sort(key=lambda r: r.root != prefer_root.hex())
        refused: list[str] = []
        unavailable: list[str] = []
        forged_ids: set[str] = set()
        for record in records:
            if record.tree in forged_ids:
                continue
            where = f"peer {record.peer} (tree {record.tree[:12]}…)"
            try:
                data = await self._download(p2p, record)
            except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, StreamError, ValueError) as e:
                log.info("%s did not serve the rewards tree: %s", where, e or type(e).__name__)
                unavailable.append(f"{where}: {e or type(e).__name__}")
                continue
            try:
                publication = parse(data, expected_id=record.tree)
                if publication.run_id != self.run_id or publication.ledger_epoch != ledger_epoch:
                    raise RewardsMismatch(f"the tree is for run {publication.run_id!r}, ledger epoch "
                                          f"{publication.ledger_epoch}, not run {self.run_id!r}, epoch {ledger_epoch}")
                accept(publication)
            except RewardsMismatch as e:
                log.warning("refusing the rewards tree from %s: %s", where, e)
                refused.append(f"{where}: {e}")
                if "content id mismatch" not in str(e):
                    forged_ids.add(record.tree)  # the id itself names forged content, whoever serves it
                continue
            return publication
        if refused:
            raise RewardsMismatch(f"refused every rewards tree announced for ledger epoch {ledger_epoch} ("
                                  + "; ".join(refused) + "); wait until the settling validator has published the "
                                  "genuine tree, or use a rewards file from a validator you trust")
        raise RewardsUnavailable(f"no announcer of ledger epoch {ledger_epoch} served its rewards tree: "
                                 + "; ".join(unavailable))

    async def _download(self, p2p: P2P, record: Announcement) -> bytes:
        peer: PeerID = peer_from_base58(record.peer)
        reader, writer = await asyncio.wait_for(open_stream(p2p, peer, PROTOCOL), self.cfg.request_timeout)
        try:
            body = json.dumps({"tree": record.tree}).encode()
            writer.write(_LEN.pack(len(body)) + body)
            await writer.drain()
            header = await asyncio.wait_for(reader.readexactly(1 + _LEN.size), self.cfg.request_timeout)
            status, (length,) = header[0], _LEN.unpack(header[1:])
            if status == OK and length > record.size:
                raise ValueError(f"sent {length} bytes, more than the {record.size} announced")
            if status not in (OK, ERR) or length > MAX_TREE_BYTES:
                raise ValueError(f"malformed response (status {status}, {length} bytes)")
            data = await asyncio.wait_for(reader.readexactly(length), self.cfg.request_timeout)
            if status != OK:
                raise ValueError(data[:100].decode(errors="replace"))
            return data
        finally:
            writer.close()


class RewardsPeer:
    """A board driven from its own event loop thread, for synchronous callers: a validator's loop publishing
    (``serve=True``: trees are served between its calls) or the CLI fetching.

    hivemind keeps one P2P replica per DHT object, bound to the loop that made it: create one peer per DHT
    and ``close`` it before shutting the DHT down.
    """

    def __init__(self, board: RewardsBoard, serve: bool = True, start_timeout: float = 60.0) -> None:
        self.board = board
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="rewards-board", daemon=True)
        self._thread.start()
        self._p2p: P2P | None = None
        try:
            self._p2p = self._call(board.dht.replicate_p2p(), start_timeout)
            if serve:
                self._call(board.start_serving(self._p2p), start_timeout)
        except BaseException:
            self.close()
            raise

    def _call(self, coro: Coroutine[Any, Any, T], timeout: float) -> T:
        return asyncio.run_coroutine_threadsafe(asyncio.wait_for(coro, timeout), self._loop).result(timeout + 5)

    def publish(self, publication: RewardsPublication) -> str:
        """Serves and announces ``publication``; returns its content id (RewardsUnavailable if the DHT refused)."""
        return self._call(self.board.announce(publication), 2 * self.board.cfg.timeout)

    def publish_raw(self, ledger_epoch: int, data: bytes, root: bytes, tree_id: str | None = None) -> str:
        """``RewardsBoard.announce_raw`` from a synchronous caller."""
        return self._call(self.board.announce_raw(ledger_epoch, data, root, tree_id), 2 * self.board.cfg.timeout)

    def reannounce(self) -> int:
        return self._call(self.board.reannounce(), 2 * self.board.cfg.timeout * max(1, len(self.board.records)))

    def fetch(self, ledger_epoch: int, accept: Callable[[RewardsPublication], None], prefer_root: bytes | None = None,
              timeout: float = 120.0) -> RewardsPublication:
        """``RewardsBoard.fetch`` from a synchronous caller, within ``timeout`` seconds in all."""
        assert self._p2p is not None, "fetch after close"
        return self._call(self.board.fetch(self._p2p, ledger_epoch, accept, prefer_root), timeout)

    def close(self, timeout: float = 10.0) -> None:
        if self._loop.is_closed():
            return
        if self._p2p is not None:
            try:
                self._call(self.board.stop_serving(), timeout)
                self._call(self._p2p.shutdown(), timeout)
            except (OSError, asyncio.TimeoutError, StreamError) as e:  # the daemon is already gone: nothing to stop
                log.debug("rewards board stop: %s", e)
            self._p2p = None
        try:  # not through _call: its wait_for task would be one of the "others"
            asyncio.run_coroutine_threadsafe(_cancel_others(), self._loop).result(timeout)
        except TimeoutError:
            log.debug("rewards board stop: tasks still running after %.0f s", timeout)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout)
            self._loop.close()


async def _cancel_others() -> None:
    """Cancels what the replica left running (its stream readers), so the loop closes without stray tasks."""
    others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    for task in others:
        task.cancel()
    await asyncio.gather(*others, return_exceptions=True)
