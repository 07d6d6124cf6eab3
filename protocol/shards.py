"""Shard manifests, record framing and vetting attestations: the rules every node agrees on.

A shard is an immutable sequence of records. The records are framed
(``u32le length || payload``), concatenated into one byte stream, and the
stream is cut into fixed-size chunks (the last may be shorter). The manifest
lists every chunk's SHA-256; the shard id is the Merkle root over them
(``protocol.merkle``), so a shard is verified chunk by chunk against its id.

Manifests arrive from files and from other peers, so ``parse_manifest`` is
strict: bounded size, exact types, no unknown fields, a known version, and a
root that matches the chunk hashes.
"""

from __future__ import annotations

import json
import re
import struct
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from protocol.errors import ManifestError, ShardError
from protocol.merkle import HASH_LEN, merkle_root
from protocol.types import ShardId

FORMAT_VERSION = 1
SUPPORTED_VERSIONS = (FORMAT_VERSION,)
MIN_CHUNK_SIZE = 1 << 10  # 1 KiB: small enough for tests to have many chunks
MAX_CHUNK_SIZE = 1 << 26  # 64 MiB: one chunk must fit comfortably in memory on every peer
MAX_CHUNKS = 1 << 16  # 65536 chunks: keeps a manifest under ~5 MB while allowing 4 TiB shards
MAX_MANIFEST_BYTES = 8 << 20  # reject larger manifests before parsing them
MAX_RECORD_BYTES = 1 << 26  # hard protocol ceiling per record; packers use a smaller configured limit
RECORD_HEADER = struct.Struct("<I")

_HEX64 = re.compile(r"^[0-9a-f]{64}$")


def shard_id_of(chunk_hashes: Sequence[bytes]) -> ShardId:
    """The content id: hex Merkle root over the chunk hashes."""
    return ShardId(merkle_root(chunk_hashes).hex())


def n_chunks_for(total_bytes: int, chunk_size: int) -> int:
    return max(1, -(-total_bytes // chunk_size))


class RecordSchema(BaseModel):
    """What one record is: UTF-8 text, one JSON object, or one array of fixed dtype and shape."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)

    kind: Literal["text", "json", "array"]
    dtype: str | None = Field(default=None, max_length=16)  # numpy dtype string, arrays only
    shape: tuple[int, ...] | None = Field(default=None, max_length=8)  # per-record shape, arrays only

    @model_validator(mode="after")
    def _array_fields(self) -> RecordSchema:
        if self.kind == "array":
            if self.dtype is None or self.shape is None or any(d < 1 for d in self.shape):
                raise ValueError("array records need a dtype and a shape of positive dimensions")
        elif self.dtype is not None or self.shape is not None:
            raise ValueError(f"{self.kind} records take no dtype or shape")
        return self


class ShardManifest(BaseModel):
    """The manifest of one shard (``manifest.json``)."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)

    version: int
    shard_id: str = Field(pattern=_HEX64.pattern)
    chunk_size: int = Field(ge=MIN_CHUNK_SIZE, le=MAX_CHUNK_SIZE)
    total_bytes: int = Field(ge=0, le=MAX_CHUNKS * MAX_CHUNK_SIZE)
    chunk_hashes: tuple[str, ...] = Field(min_length=1, max_length=MAX_CHUNKS)
    record_count: int = Field(ge=0)
    record_schema: RecordSchema
    license: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9.+\-_ ()]+$")
    owner: str | None = Field(default=None, pattern=r"^0x[0-9a-fA-F]{40}$")  # Ethereum address
    created_at: int = Field(ge=0, le=1 << 40)  # unix seconds; not part of the id

    @model_validator(mode="after")
    def _consistent(self) -> ShardManifest:
        if self.version not in SUPPORTED_VERSIONS:
            raise ValueError(f"unknown manifest version {self.version}")
        if self.chunk_size & (self.chunk_size - 1):
            raise ValueError(f"chunk_size {self.chunk_size} is not a power of two")
        expected = n_chunks_for(self.total_bytes, self.chunk_size)
        if len(self.chunk_hashes) != expected:
            raise ValueError(
                f"{len(self.chunk_hashes)} chunk hashes for {self.total_bytes} bytes in chunks of {self.chunk_size}; "
                f"expected {expected}"
            )
        if not all(_HEX64.match(h) for h in self.chunk_hashes):
            raise ValueError("chunk hashes must be 64 lowercase hex digits")
        if self.record_count * RECORD_HEADER.size > self.total_bytes:
            raise ValueError(f"{self.record_count} records cannot fit in {self.total_bytes} bytes")
        root = shard_id_of(self.digests())
        if root != self.shard_id:
            raise ValueError(f"wrong root: chunk hashes give {root}, manifest says {self.shard_id}")
        return self

    @property
    def n_chunks(self) -> int:
        return len(self.chunk_hashes)

    @property
    def id(self) -> ShardId:
        return ShardId(self.shard_id)

    def digests(self) -> list[bytes]:
        return [bytes.fromhex(h) for h in self.chunk_hashes]

    def chunk_length(self, index: int) -> int:
        """Byte length of chunk ``index`` (every chunk is full except possibly the last)."""
        if not 0 <= index < self.n_chunks:
            raise IndexError(f"chunk {index} outside 0..{self.n_chunks - 1}")
        if index < self.n_chunks - 1:
            return self.chunk_size
        return self.total_bytes - self.chunk_size * (self.n_chunks - 1)


def build_manifest(
    chunk_hashes: Sequence[bytes],
    *,
    chunk_size: int,
    total_bytes: int,
    record_count: int,
    record_schema: RecordSchema,
    license: str,
    owner: str | None,
    created_at: int,
) -> ShardManifest:
    """A manifest whose id is the root over ``chunk_hashes``; raises ``ManifestError`` if inconsistent."""
    try:
        return ShardManifest(
            version=FORMAT_VERSION,
            shard_id=shard_id_of(chunk_hashes),
            chunk_size=chunk_size,
            total_bytes=total_bytes,
            chunk_hashes=tuple(h.hex() for h in chunk_hashes),
            record_count=record_count,
            record_schema=record_schema,
            license=license,
            owner=owner,
            created_at=created_at,
        )
    except ValidationError as e:
        raise ManifestError(f"cannot build manifest: {_reasons(e)}") from None


def manifest_bytes(manifest: ShardManifest) -> bytes:
    """Canonical JSON (sorted keys, no spaces): what ``manifest.json`` holds and peers send."""
    return json.dumps(manifest.model_dump(mode="json"), sort_keys=True, separators=(",", ":")).encode()


def parse_manifest(data: bytes, *, expected_id: str | None = None) -> ShardManifest:
    """Parse an untrusted manifest; raises ``ManifestError`` naming what is wrong."""
    if len(data) > MAX_MANIFEST_BYTES:
        raise ManifestError(f"manifest is {len(data)} bytes, more than the {MAX_MANIFEST_BYTES} allowed")
    try:
        raw = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ManifestError(f"manifest is not valid JSON: {e}") from None
    if not isinstance(raw, dict):
        raise ManifestError("manifest must be a JSON object")
    version = raw.get("version")
    if version not in SUPPORTED_VERSIONS:
        raise ManifestError(
            f"unknown manifest version {version!r}; this node reads versions {list(SUPPORTED_VERSIONS)} "
            "(upgrade hivenet to read newer shards)"
        )
    try:
        manifest = ShardManifest.model_validate_json(data)
    except ValidationError as e:
        raise ManifestError(f"invalid manifest: {_reasons(e)}") from None
    if expected_id is not None and manifest.shard_id != expected_id:
        raise ManifestError(f"manifest is for shard {manifest.shard_id}, expected {expected_id}")
    return manifest


def _reasons(e: ValidationError) -> str:
    parts = []
    for err in e.errors()[:5]:
        where = ".".join(str(p) for p in err["loc"])
        parts.append(f"{where + ': ' if where else ''}{err['msg'].removeprefix('Value error, ')}")
    return "; ".join(parts)


def frame_record(payload: bytes) -> bytes:
    """One record as stored in the shard stream: ``u32le length || payload``."""
    if len(payload) > MAX_RECORD_BYTES:
        raise ShardError(f"record of {len(payload)} bytes exceeds the protocol limit of {MAX_RECORD_BYTES}")
    return RECORD_HEADER.pack(len(payload)) + payload


def frame_records(payloads: Iterable[bytes]) -> bytes:
    return b"".join(frame_record(p) for p in payloads)


class RecordDecoder:
    """Incremental decoder of the framed record stream (feed chunks in order, then ``finish``)."""

    def __init__(self, max_record_bytes: int = MAX_RECORD_BYTES) -> None:
        self._buf = bytearray()
        self._max = max_record_bytes
        self.count = 0

    def feed(self, data: bytes | memoryview) -> Iterator[bytes]:
        """Append ``data``; yield every record it completes. Raises ``ShardError`` on an oversized length."""
        self._buf += data
        pos = 0
        buf = self._buf
        try:
            while len(buf) - pos >= RECORD_HEADER.size:
                (length,) = RECORD_HEADER.unpack_from(buf, pos)
                if length > self._max:
                    raise ShardError(f"record {self.count} claims {length} bytes, above the limit of {self._max}")
                end = pos + RECORD_HEADER.size + length
                if end > len(buf):
                    break
                yield bytes(buf[pos + RECORD_HEADER.size : end])
                self.count += 1
                pos = end
        finally:
            del buf[:pos]

    def finish(self) -> None:
        """Raise ``ShardError`` if the stream ended inside a record."""
        if self._buf:
            raise ShardError(f"record stream ends inside record {self.count} ({len(self._buf)} stray bytes)")


def decode_records(stream: bytes, max_record_bytes: int = MAX_RECORD_BYTES) -> list[bytes]:
    decoder = RecordDecoder(max_record_bytes)
    records = list(decoder.feed(stream))
    decoder.finish()
    return records


@dataclass(frozen=True)
class ShardAttestation:
    """What a validator attests on ``ShardRegistry`` about one shard: the ledger takes this value as is."""

    shard_id: ShardId
    passed: bool  # verdict "pass": trainers may be assigned this shard
    score: int  # overall score in basis points (0..10000), an integer so the chain stores it exactly
    report_hash: bytes  # SHA-256 of the canonical vetting report; the report itself stays off chain
    n_records: int  # records a trainer may use (after exclusions)

    def __post_init__(self) -> None:
        if not _HEX64.match(self.shard_id):
            raise ValueError(f"shard id must be 64 lowercase hex digits, got {self.shard_id!r}")
        if not 0 <= self.score <= 10_000:
            raise ValueError(f"score must be 0..10000 basis points, got {self.score}")
        if len(self.report_hash) != HASH_LEN:
            raise ValueError("report_hash must be 32 bytes")
        if self.n_records < 0:
            raise ValueError("n_records must be non-negative")
