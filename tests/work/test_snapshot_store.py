"""The bounded snapshot store: content addressing, pruning by epochs and by bytes, the raw form's hash,
and the checker's snapshot source seam (fast: no network)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import torch

from node.work.sketch import params_hash
from node.work.snapshot_source import LocalSnapshotSource
from node.work.snapshot_store import SnapshotLimits, SnapshotStore, load_raw, raw_size
from node.work.snapshots import save_snapshot


def _model(seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(32, 16), torch.nn.Linear(16, 8))


def _snapshot_bytes(tmp_path: Path) -> int:
    """Bytes one snapshot of ``_model`` and its epoch file take."""
    store = SnapshotStore(tmp_path / "probe")
    store.put(_model(0), 0)
    return store.size_bytes()


def test_identical_parameters_are_stored_once_under_their_hash(tmp_path: Path) -> None:
    store = SnapshotStore(tmp_path / "s")
    model = _model(1)
    first = store.put(model, 3)
    again = store.put(model, 4)
    assert first == again == params_hash(model)
    assert store.digests() == [first]
    assert store.path(first).exists()


def test_keep_epochs_prunes_snapshots_of_older_epochs(tmp_path: Path) -> None:
    store = SnapshotStore(tmp_path / "s", SnapshotLimits(keep_epochs=3))
    digests = [store.put(_model(epoch), epoch) for epoch in range(6)]
    assert store.digests() == digests[:2:-1]  # epochs 5, 4, 3, newest first
    assert not any(store.has(d) for d in digests[:3])
    assert store.pruned == 3


def test_cap_removes_oldest_first_and_size_stays_under_it(tmp_path: Path) -> None:
    one = _snapshot_bytes(tmp_path)
    store = SnapshotStore(tmp_path / "s", SnapshotLimits(cap_bytes=2 * one + one // 2))
    sizes = []
    digests = []
    for epoch in range(10):
        digests.append(store.put(_model(epoch), epoch))
        sizes.append(store.size_bytes())
    assert max(sizes) <= store.limits.cap_bytes
    assert store.digests() == [digests[9], digests[8]]


def test_the_newest_snapshot_stays_even_above_the_cap(tmp_path: Path) -> None:
    store = SnapshotStore(tmp_path / "s", SnapshotLimits(cap_bytes=10))
    digest = store.put(_model(1), 0)
    newer = store.put(_model(2), 1)
    assert store.digests() == [newer]
    assert not store.has(digest)


def test_a_snapshot_used_again_counts_as_the_newer_epoch(tmp_path: Path) -> None:
    store = SnapshotStore(tmp_path / "s", SnapshotLimits(keep_epochs=2))
    reused = store.put(_model(1), 0)
    store.put(_model(2), 1)
    store.put(_model(1), 2)  # the swarm came back to the same parameters (e.g. a restarted peer)
    store.put(_model(3), 3)
    assert set(store.digests()) == {reused, params_hash(_model(3))}


def test_raw_form_hashes_to_the_params_hash_and_loads_back(tmp_path: Path) -> None:
    store = SnapshotStore(tmp_path / "s")
    source = _model(7)
    digest = store.put(source, 0)
    raw = store.raw_params(digest)
    assert raw is not None and len(raw) == raw_size(source)
    assert hashlib.sha256(raw).digest() == digest
    target = _model(8)
    assert load_raw(target, raw)
    assert params_hash(target) == digest
    assert not load_raw(_model(9), raw[:-4])  # a wrong size is refused, nothing copied
    assert params_hash(_model(9)) != digest


def test_a_tampered_file_is_not_served(tmp_path: Path) -> None:
    store = SnapshotStore(tmp_path / "s")
    digest = store.put(_model(1), 0)
    other = tmp_path / "other"
    save_snapshot(_model(2), other)
    store.path(digest).write_bytes(next(other.glob("*.pt")).read_bytes())
    assert store.raw_params(digest) is None
    assert store.raw_params(b"\x00" * 32) is None


@pytest.mark.parametrize("present", [True, False])
def test_local_source_loads_or_says_why(tmp_path: Path, present: bool) -> None:
    model = _model(1)
    digest = save_snapshot(model, tmp_path) if present else params_hash(model)
    target = _model(2)
    reason = LocalSnapshotSource(tmp_path).load(target, digest, 0)
    if present:
        assert reason is None and params_hash(target) == digest
    else:
        assert reason is not None and digest.hex()[:16] in reason and str(tmp_path) in reason
