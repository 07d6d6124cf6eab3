"""The local shard store: pack records into shards, list, verify, read, remove; stage downloads.

Layout under the store root::

    shards/<shard_id>/manifest.json     canonical manifest (protocol.shards)
    shards/<shard_id>/chunks/000000     chunk files, fixed size except the last
    partial/<shard_id>/                 an interrupted download (manifest + verified chunks)
    tmp/                                staging; anything here is garbage after a crash

Every shard appears by one ``rename`` of a finished directory, and disappears
by one ``rename`` out of ``shards/``, so a failure never leaves a partial
shard and never touches an existing one.

Run: ``hivenet shard add docs/ --license CC-BY-4.0`` then ``hivenet shard verify <id>``.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from protocol.errors import ChunkCorrupt, ManifestError, ShardError, ShardNotFound
from protocol.merkle import merkle_root
from protocol.shards import (
    MAX_CHUNKS,
    RecordDecoder,
    RecordSchema,
    ShardManifest,
    build_manifest,
    frame_record,
    manifest_bytes,
    parse_manifest,
)
from protocol.types import ShardId

from node.data.ingest import DEFAULT_LIMITS, IngestLimits, Progress, collect_inputs, iter_file_records


@dataclass(frozen=True)
class StoreConfig:
    root: Path  # where shards live; one directory per node
    chunk_size: int = 1 << 18  # 256 KiB: small enough that a 1 MB shard spreads over holders, large enough for fast hashing
    max_record_bytes: int = 1 << 20  # 1 MiB per record at pack time: a bigger "record" is almost always a missing split
    limits: IngestLimits = DEFAULT_LIMITS  # file count, depths and record count accepted at pack time


@dataclass(frozen=True)
class VerifyResult:
    shard_id: ShardId
    n_chunks: int
    bad_chunks: tuple[int, ...]  # chunks whose bytes do not hash to the manifest (or are missing)
    root_ok: bool  # the manifest's chunk hashes give its id

    @property
    def ok(self) -> bool:
        return self.root_ok and not self.bad_chunks


def chunk_name(index: int) -> str:
    return f"{index:06d}"


class _ChunkWriter:
    """Cut a byte stream into chunk files in ``directory`` and hash each one."""

    def __init__(self, directory: Path, chunk_size: int) -> None:
        self.directory = directory
        self.chunk_size = chunk_size
        self.hashes: list[bytes] = []
        self.total = 0
        self._buf = bytearray()

    def write(self, data: bytes) -> None:
        self._buf += data
        self.total += len(data)
        while len(self._buf) >= self.chunk_size:
            self._flush(bytes(self._buf[: self.chunk_size]))
            del self._buf[: self.chunk_size]

    def close(self) -> None:
        if self._buf or not self.hashes:
            self._flush(bytes(self._buf))
            self._buf.clear()

    def _flush(self, chunk: bytes) -> None:
        if len(self.hashes) >= MAX_CHUNKS:
            raise ShardError(f"shard would exceed {MAX_CHUNKS} chunks; use a larger chunk size or split the input")
        (self.directory / chunk_name(len(self.hashes))).write_bytes(chunk)
        self.hashes.append(hashlib.sha256(chunk).digest())


class ShardStore:
    def __init__(self, config: StoreConfig) -> None:
        self.config = config
        self.root = Path(config.root)
        for sub in ("shards", "partial", "tmp"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)

    # -- packing ---------------------------------------------------------

    def add_paths(
        self,
        paths: Iterable[str | os.PathLike[str]],
        *,
        license: str,
        owner: str | None = None,
        progress: Progress | None = None,
        on_total: Callable[[int], None] | None = None,
    ) -> ShardManifest:
        """Pack files (see ``node.data.ingest``) into one shard; returns its manifest."""
        inputs = collect_inputs(paths, self.config.limits)
        if on_total:
            on_total(inputs.total_bytes)
        schema, records = iter_file_records(inputs, self.config.max_record_bytes, progress, self.config.limits)
        return self.add_records(records, schema=schema, license=license, owner=owner)

    def add_records(
        self, records: Iterable[bytes], *, schema: RecordSchema, license: str, owner: str | None = None
    ) -> ShardManifest:
        """Pack ``records`` as given (no format checks: vetting judges content) into one shard."""
        staging = self._staging("pack")
        try:
            chunks = staging / "chunks"
            chunks.mkdir()
            writer = _ChunkWriter(chunks, self.config.chunk_size)
            count = 0
            for record in records:
                writer.write(frame_record(record))
                count += 1
            if count == 0:
                raise ShardError("no records to pack: the inputs hold no non-empty paragraph, line or row")
            writer.close()
            manifest = build_manifest(
                writer.hashes,
                chunk_size=self.config.chunk_size,
                total_bytes=writer.total,
                record_count=count,
                record_schema=schema,
                license=license,
                owner=owner,
                created_at=int(time.time()),
            )
            (staging / "manifest.json").write_bytes(manifest_bytes(manifest))
            return self._publish(staging, manifest)
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def _staging(self, tag: str) -> Path:
        path = self.root / "tmp" / f"{tag}-{uuid.uuid4().hex}"
        path.mkdir()
        return path

    def _publish(self, staging: Path, manifest: ShardManifest) -> ShardManifest:
        target = self.shard_dir(manifest.id)
        if target.exists():
            return self.manifest(manifest.id)  # same content id: the shard is already here, keep it untouched
        os.rename(staging, target)
        return manifest

    # -- reading ---------------------------------------------------------

    def shard_dir(self, shard_id: str) -> Path:
        return self.root / "shards" / shard_id

    def ids(self) -> list[ShardId]:
        return sorted(ShardId(p.name) for p in (self.root / "shards").iterdir() if p.is_dir())

    def resolve(self, prefix: str) -> ShardId:
        """The full id of the one stored shard whose id starts with ``prefix``."""
        prefix = prefix.lower()
        matches = [i for i in self.ids() if i.startswith(prefix)] if prefix else []
        if len(matches) == 1:
            return matches[0]
        if not matches:
            raise ShardNotFound(f"no shard matching {prefix!r} in {self.root}; see `hivenet shard ls`")
        raise ShardNotFound(f"{prefix!r} matches {len(matches)} shards; give more of the id")

    def has(self, shard_id: str) -> bool:
        return (self.shard_dir(shard_id) / "manifest.json").is_file()

    def manifest(self, shard_id: str) -> ShardManifest:
        path = self.shard_dir(shard_id) / "manifest.json"
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise ShardNotFound(f"shard {shard_id} is not in {self.root}") from None
        return parse_manifest(data, expected_id=shard_id)

    def manifests(self) -> list[ShardManifest]:
        """Manifests of the readable shards; a broken one is left out (see ``scan``), not fatal to the rest."""
        return [m for _, m, _ in self.scan() if m is not None]

    def scan(self) -> list[tuple[ShardId, ShardManifest | None, str | None]]:
        """Every stored shard as (id, manifest, None), or (id, None, why its manifest cannot be read)."""
        out: list[tuple[ShardId, ShardManifest | None, str | None]] = []
        for sid in self.ids():
            try:
                out.append((sid, self.manifest(sid), None))
            except ShardError as e:
                out.append((sid, None, str(e)))
            except OSError as e:
                out.append((sid, None, f"manifest unreadable: {e.strerror}"))
        return out

    def read_chunk(self, shard_id: str, index: int) -> bytes:
        """Chunk bytes as stored, unverified (a server sends these; receivers verify)."""
        return (self.shard_dir(shard_id) / "chunks" / chunk_name(index)).read_bytes()

    def verify(self, shard_id: str) -> VerifyResult:
        """Hash every chunk against the manifest and recompute the root."""
        manifest = self.manifest(shard_id)  # parse_manifest already checks the root; recheck for the report
        digests = manifest.digests()
        bad: list[int] = []
        buf = bytearray(manifest.chunk_size)
        view = memoryview(buf)
        chunks = self.shard_dir(shard_id) / "chunks"
        for i, expected in enumerate(digests):
            try:
                with open(chunks / chunk_name(i), "rb", buffering=0) as f:
                    n = f.readinto(buf)
                    extra = f.read(1)
            except FileNotFoundError:
                bad.append(i)
                continue
            if extra or n != manifest.chunk_length(i) or hashlib.sha256(view[:n]).digest() != expected:
                bad.append(i)
        root_ok = merkle_root(digests).hex() == manifest.shard_id
        return VerifyResult(manifest.id, manifest.n_chunks, tuple(bad), root_ok)

    def iter_records(self, shard_id: str, *, verify: bool = True) -> Iterator[bytes]:
        """Every record of a shard, in order; with ``verify`` each chunk is checked before use."""
        manifest = self.manifest(shard_id)
        decoder = RecordDecoder()
        for i, expected in enumerate(manifest.digests()):
            chunk = self.read_chunk(shard_id, i)
            if verify and (len(chunk) != manifest.chunk_length(i) or hashlib.sha256(chunk).digest() != expected):
                raise ChunkCorrupt(manifest.shard_id, [i])
            yield from decoder.feed(chunk)
        decoder.finish()
        if decoder.count != manifest.record_count:
            raise ShardError(f"shard {shard_id[:16]} holds {decoder.count} records, manifest says {manifest.record_count}")

    def remove(self, shard_id: str) -> None:
        target = self.shard_dir(shard_id)
        if not target.is_dir():
            raise ShardNotFound(f"shard {shard_id} is not in {self.root}")
        trash = self.root / "tmp" / f"rm-{uuid.uuid4().hex}"
        os.rename(target, trash)
        shutil.rmtree(trash, ignore_errors=True)

    # -- downloads -------------------------------------------------------

    def partial(self, manifest: ShardManifest) -> PartialShard:
        """A resumable download target for ``manifest`` (already verified against the wanted id)."""
        return PartialShard(self, manifest)


class PartialShard:
    """Chunks of a shard being fetched: each written only after it hashed right; survives restarts."""

    def __init__(self, store: ShardStore, manifest: ShardManifest) -> None:
        self.store = store
        self.manifest = manifest
        self.dir = store.root / "partial" / manifest.shard_id
        (self.dir / "chunks").mkdir(parents=True, exist_ok=True)
        path = self.dir / "manifest.json"
        if path.exists():
            try:
                if parse_manifest(path.read_bytes(), expected_id=manifest.shard_id) != manifest:
                    raise ManifestError("stale")
            except ManifestError:
                shutil.rmtree(self.dir / "chunks")
                (self.dir / "chunks").mkdir()
        path.write_bytes(manifest_bytes(manifest))
        self._digests = manifest.digests()

    def accepts(self, index: int, data: bytes) -> bool:
        return len(data) == self.manifest.chunk_length(index) and hashlib.sha256(data).digest() == self._digests[index]

    def missing(self) -> list[int]:
        """Chunks still to fetch; a chunk left on disk counts only if it still hashes right."""
        out = []
        for i in range(self.manifest.n_chunks):
            path = self.dir / "chunks" / chunk_name(i)
            if not (path.is_file() and self.accepts(i, path.read_bytes())):
                out.append(i)
        return out

    def write(self, index: int, data: bytes) -> None:
        """Store a verified chunk; raises ``ChunkCorrupt`` for bytes that do not match the manifest."""
        if not self.accepts(index, data):
            raise ChunkCorrupt(self.manifest.shard_id, [index], "refused before writing")
        tmp = self.dir / "chunks" / f".{chunk_name(index)}.{uuid.uuid4().hex}"
        tmp.write_bytes(data)
        os.replace(tmp, self.dir / "chunks" / chunk_name(index))

    def finalize(self) -> ShardManifest:
        """Move the completed download into the store; raises ``ShardError`` if chunks are missing."""
        missing = self.missing()
        if missing:
            raise ShardError(f"cannot finalize shard {self.manifest.shard_id[:16]}: {len(missing)} chunk(s) missing")
        staging = self.store._staging("fetch")
        os.rmdir(staging)
        os.rename(self.dir, staging)
        try:
            return self.store._publish(staging, self.manifest)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
