"""A size cap on a shard store that fills itself from the network: make room, or say the cap is too small.

    cache = ShardCache(store, cap_bytes=1 << 30)
    evicted = cache.make_room(incoming=sum(m.total_bytes for m in to_fetch), keep=run_shard_ids)

What counts: the chunk bytes of complete shards (their manifests' ``total_bytes``) and of interrupted
downloads (``partial/``). Vetting indexes under ``runs/`` are small and not counted. Eviction removes
the shards and partial downloads that are not in ``keep``, least recently stored first, each by one
rename (``ShardStore.remove``), so a crash never leaves half a shard. A shard in ``keep`` is never
evicted: if the kept shards alone exceed the cap, nothing is removed and ``ShardCacheFull`` says by how
much the cap must grow.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Collection
from pathlib import Path

from node.data.store import ShardStore
from protocol.errors import ShardError

MB = 1 << 20


class ShardCacheFull(ShardError):
    """The shards a run needs do not fit under the cache's cap."""


def _dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


class ShardCache:
    def __init__(self, store: ShardStore, cap_bytes: int) -> None:
        if cap_bytes <= 0:
            raise ValueError(f"cap_bytes must be positive, got {cap_bytes}")
        self.store = store
        self.cap_bytes = cap_bytes

    def _complete(self) -> dict[str, int]:
        return {sid: self.store.manifest(sid).total_bytes for sid in self.store.ids()}

    def _partials(self) -> dict[str, int]:
        root = self.store.root / "partial"
        return {p.name: _dir_bytes(p / "chunks") for p in root.iterdir() if p.is_dir()}

    def used_bytes(self) -> int:
        return sum(self._complete().values()) + sum(self._partials().values())

    def make_room(self, incoming: int, keep: Collection[str]) -> list[str]:
        """Evict what is not in ``keep`` until ``incoming`` more bytes fit; returns the ids evicted.

        Partial downloads of kept shards are not counted (``incoming`` counts those shards whole).
        Raises ShardCacheFull, having removed nothing, when even evicting everything else is not enough.
        """
        complete, partials = self._complete(), self._partials()
        kept = sum(b for sid, b in complete.items() if sid in keep)
        if kept + incoming > self.cap_bytes:
            raise ShardCacheFull(
                f"the run's shards need {(kept + incoming) / MB:.1f} MB but the shard cache is capped at "
                f"{self.cap_bytes / MB:.1f} MB; raise [train] shard_cache_mb (--shard-cache-mb)"
            )
        used = kept + sum(b for sid, b in complete.items() if sid not in keep)
        used += sum(b for sid, b in partials.items() if sid not in keep)
        evicted: list[str] = []
        for sid in sorted((s for s in partials if s not in keep), key=lambda s: (self.store.root / "partial" / s).stat().st_mtime):
            if used + incoming <= self.cap_bytes:
                return evicted
            self._drop_partial(sid)
            used -= partials[sid]
            evicted.append(sid)
        for sid in sorted((s for s in complete if s not in keep), key=self._stored_at):
            if used + incoming <= self.cap_bytes:
                break
            self.store.remove(sid)
            used -= complete[sid]
            evicted.append(sid)
        return evicted

    def _stored_at(self, shard_id: str) -> float:
        return (self.store.shard_dir(shard_id) / "manifest.json").stat().st_mtime

    def _drop_partial(self, shard_id: str) -> None:
        trash = self.store.root / "tmp" / f"rm-{uuid.uuid4().hex}"
        (self.store.root / "partial" / shard_id).rename(trash)
        shutil.rmtree(trash, ignore_errors=True)
