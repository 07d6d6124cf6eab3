"""A peer's own pace (``CollaborativeOptimizer.step_interval``): the time between its steps, minus work it
declares off pace (evaluations, checkpoints, receipts at an epoch's end), so such work never makes it a
straggler in its own eyes."""

import time

import hivemind
import pytest
import torch

from node.swarm.collab import make_optimizer
from node.swarm.config import SwarmConfig

pytestmark = [pytest.mark.swarm]


def _steps(opt, gaps, off_pace_s):  # type: ignore[no-untyped-def]
    # The sleeps are the behaviour under test: the time a step takes, and work declared off pace.
    for gap in gaps:
        opt.step()
        time.sleep(gap)
        with opt.off_pace():
            time.sleep(off_pace_s)
    opt.step()


def test_time_declared_off_pace_is_not_step_time_and_other_pauses_are():
    dht = hivemind.DHT(start=True)
    param = torch.nn.Parameter(torch.zeros(4))
    param.grad = torch.zeros(4)
    opt = make_optimizer(dht, SwarmConfig(run_id="pace-test", target_batch_size=10_000), [param],
                         optimizer=lambda p: torch.optim.SGD(p, lr=0.1), scheduler=None, batch_size_per_step=1)
    try:
        _steps(opt, gaps=[0.05] * 5, off_pace_s=0.6)  # steps of 0.05 s, each followed by 0.6 s of evaluation
        assert 0.04 <= opt.step_interval < 0.3, opt.step_interval
        _steps(opt, gaps=[0.6] * 5, off_pace_s=0.0)  # steps that really take 0.6 s
        assert opt.step_interval >= 0.55, opt.step_interval
    finally:
        opt.shutdown()
        dht.shutdown()
