"""Shared fixtures for shard tests: stores in tmp dirs and real prose from the CPython docs."""

from __future__ import annotations

from pathlib import Path

import pytest

from node.data.store import ShardStore, StoreConfig


def docs_text() -> tuple[bytes, bytes]:
    """The pydoc topics (real technical prose) split into train (first 90%) and held-out eval."""
    from pydoc_data.topics import topics

    texts = [topics[k].strip().encode() + b"\n\n" for k in sorted(topics)]
    cut = int(len(texts) * 0.9)
    return b"".join(texts[:cut]), b"".join(texts[cut:])


@pytest.fixture
def store(tmp_path: Path) -> ShardStore:
    return ShardStore(StoreConfig(tmp_path / "store", chunk_size=4096))


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` with its bytes: to assert nothing existing was damaged."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}
