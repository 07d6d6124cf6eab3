"""Acceptance 2: a real swarm of 4 peer processes, one of them sending sign-flipped gradients (x -1000).

Three runs on loopback, one after the other: clean with the plain mean, attacked with CenteredClip, attacked
with the plain mean. Robust must land within 5% of clean; the plain mean must diverge (held-out loss above
where it started). Groups need 3 members, so one honest peer never averages alone with the attacker.

The three runs share one run id, hence one initial model and one assignment of batches to (epoch, peer,
step): the runs differ in the attack and the rule, not in their draw. (With a run id each, the clean run
alone ended anywhere in 3.93-4.24 after 6 epochs, as much as the bound.)

They train 16 epochs at lr 2e-3, not 10 at 4e-3 (the node's default then): each epoch is one AdamW step, and at 4e-3 a step
moves the weights by 5-10% of their norm, so where a 10-step run ends is chaotic: robust/clean ranged
1.00-1.07 over 8 in-process pairs (0.95-1.08 with twice the batch), and one CI run ended with a spike (4.19 against 3.31). At 2e-3 over 16
steps, 16 in-process pairs ranged 1.000-1.041 (mean 1.009) and ended near the same loss (3.3).
"""

import pytest

from node.records import FinalRecord, StartRecord
from node.testnet.network import Testnet
from tests.integration.swarm_helpers import epoch_records, max_param_difference, tiny_testnet

pytestmark = [pytest.mark.slow, pytest.mark.swarm]

EPOCHS = 16
LR = 2e-3  # see above (also the tiny testnet's default)
RUN_ID = "robust-swarm"  # one for all three runs (see above); each run has a DHT of its own


def _final_val_losses(metrics):
    return {p: next(r.val_loss for r in recs if isinstance(r, FinalRecord)) for p, recs in metrics.items()}


def _run(run_dir, epochs=EPOCHS, **overrides):
    cfg = tiny_testnet(run_dir, peers=4, epochs=epochs, contributors=0, broker="", run_id=RUN_ID,
                       lr=LR, extra_args=("--min-group-size", "3"), **overrides)
    with Testnet(cfg) as net:
        assert net.wait_finished(timeout=400), f"{run_dir.name} did not finish {epochs} epochs in 400 s"
        metrics = net.metrics()
    assert net.failed_peers() == []
    return metrics


def test_centered_clip_matches_clean_training_while_the_mean_diverges(tmp_path):
    metrics = {
        "clean": _run(tmp_path / "clean", aggregator="mean"),
        "robust": _run(tmp_path / "robust", byzantine=1, attack="sign-flip"),
        # the mean only has to diverge, which it does from the first step (6.09 after 4 epochs, 6.72-6.75 after 8,
        # 8.56 after 16, from 5.37)
        "mean": _run(tmp_path / "mean", epochs=EPOCHS // 4, byzantine=1, attack="sign-flip", aggregator="mean"),
    }

    start = next(r.val_loss for r in metrics["clean"]["peer0"] if isinstance(r, StartRecord))
    final = {name: _final_val_losses(m) for name, m in metrics.items()}
    clean, robust, mean = (max(final[n].values()) for n in ("clean", "robust", "mean"))
    print(f"\nheld-out loss: start {start:.3f}, clean {clean:.3f}, robust under attack {robust:.3f}, "
          f"mean under attack {mean:.3f}")
    assert clean < start - 0.5  # the clean run learned
    assert robust <= clean * 1.05, (robust, clean)
    assert mean > start, (mean, start)  # diverged: worse than the untrained model

    # Every round of the attacked robust run had all 4 peers (the attacker always took part), and each honest peer
    # applied the agreed result of all but at most one in 8: hivemind's transport sometimes loses a partition on
    # its way back to one member ("peer ... sent 6 parts, but we expected 7", seen once in 3 runs of 10 rounds);
    # that member then discards the round and loads the state, as it must.
    for peer in ("peer0", "peer1", "peer2"):
        rounds = epoch_records(metrics["robust"], peer)
        assert len(rounds) == EPOCHS
        assert all(r.group_size == 4 for r in rounds), rounds
        assert sum(r.agreement != "agreed" for r in rounds) <= EPOCHS // 8, [r.agreement for r in rounds]
    honest = [tmp_path / "robust" / f"peer{i}" / "checkpoint.pt" for i in range(3)]
    assert max_param_difference(honest) <= 1e-5
