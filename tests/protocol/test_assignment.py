"""Batch assignment is a pure, recomputable, well-spread function of (run, epoch, peer, step)."""

from hypothesis import given
from hypothesis import strategies as st

from protocol.assignment import assign_samples, assignment_seed
from protocol.types import Epoch, PeerId, RunId

ids = st.text(min_size=1, max_size=40)


@given(run=ids, peer=ids, epoch=st.integers(0, 10**6), step=st.integers(0, 10**4),
       batch=st.integers(1, 64), n=st.integers(1, 10**9))
def test_assignment_is_deterministic_and_in_range(run, peer, epoch, step, batch, n):
    a = assign_samples(RunId(run), Epoch(epoch), PeerId(peer), step, batch, n)
    assert a == assign_samples(RunId(run), Epoch(epoch), PeerId(peer), step, batch, n)
    assert len(a) == batch
    assert all(0 <= i < n for i in a)


@given(run=ids, peer=ids, other=ids, epoch=st.integers(0, 1000))
def test_different_peers_runs_and_epochs_get_different_batches(run, peer, other, epoch):
    base = assign_samples(RunId(run), Epoch(epoch), PeerId(peer), 0, 16, 10**9)
    if other != peer:
        assert base != assign_samples(RunId(run), Epoch(epoch), PeerId(other), 0, 16, 10**9)
    if other != run:
        assert base != assign_samples(RunId(other), Epoch(epoch), PeerId(peer), 0, 16, 10**9)
    assert base != assign_samples(RunId(run), Epoch(epoch + 1), PeerId(peer), 0, 16, 10**9)


def test_fields_are_length_prefixed_so_boundaries_cannot_shift():
    assert assignment_seed(RunId("ab"), Epoch(0), PeerId("c"), 0) != assignment_seed(RunId("a"), Epoch(0), PeerId("bc"), 0)


def test_indices_are_roughly_uniform():
    n, draws = 10, 20000
    counts = [0] * n
    for i in assign_samples(RunId("r"), Epoch(0), PeerId("p"), 0, draws, n):
        counts[i] += 1
    assert min(counts) > 0.9 * draws / n and max(counts) < 1.1 * draws / n


def test_rejects_nonsense_arguments():
    import pytest

    with pytest.raises(ValueError):
        assign_samples(RunId("r"), Epoch(0), PeerId("p"), 0, 0, 10)
    with pytest.raises(ValueError):
        assign_samples(RunId("r"), Epoch(-1), PeerId("p"), 0, 1, 10)
