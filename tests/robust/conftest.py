import pytest
import torch


@pytest.fixture
def one_thread():
    """Single-threaded torch: on 2 shared cores, intra-op threads only contend (measured 20x slower)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
