"""node.swarm.hivemind_ext.step_control: a cancelled averaging round leaves the matchmaking at once.

hivemind's own ``StepControl.cancel`` lost this race in about half of the cancellations tried here (the round
still LOOKING_FOR_GROUP 20 s later); four cancellations in a row would all have to be lucky.
"""

import time

import hivemind
import pytest
import torch
from hivemind.averaging.control import AveragingStage, StepControl
from hivemind.utils import get_dht_time

from node.swarm.hivemind_ext.step_control import cancel_round, install
from tests.waiting import wait_until

pytestmark = [pytest.mark.swarm]


def test_a_cancelled_round_alone_in_the_matchmaking_finishes_within_two_seconds():
    install()
    assert StepControl.cancel is cancel_round
    dht = hivemind.DHT(start=True, host_maddrs=["/ip4/127.0.0.1/tcp/0"])
    averager = hivemind.DecentralizedAverager([torch.zeros(8)], dht, prefix="cancel-test", target_group_size=4,
                                              min_group_size=2, min_matchmaking_time=4.0, request_timeout=2.0,
                                              start=True)
    try:
        for triggered in (False, True, False, True):
            control = averager.step(scheduled_time=get_dht_time() + 0.5, timeout=30, wait=False, require_trigger=True)
            if triggered:
                control.allow_allreduce()
            assert wait_until(lambda: control.stage is AveragingStage.LOOKING_FOR_GROUP, 10, poll=0.05)
            # The behaviour under test: alone, no group can form and the round keeps looking for 1.5 s.
            time.sleep(1.5)
            assert control.stage is AveragingStage.LOOKING_FOR_GROUP

            assert control.cancel()
            wait_until(lambda: control.stage is AveragingStage.FINISHED, 2.0, poll=0.02)
            assert control.stage is AveragingStage.FINISHED, (triggered, control.stage)
            assert control.cancelled()
    finally:
        averager.shutdown()
        dht.shutdown()
