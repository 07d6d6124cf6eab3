"""The validator on real receipts of simulated peers (the trainer's own recorder, no swarm).

Honest peers recompute exactly; a peer that claims twice the steps it computed, or sends
a sketch it did not compute, is rejected in every epoch at p = 1 and earns nothing.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from node.hooks import NO_HOOKS, Hooks
from node.validator.service import Validator, ValidatorConfig
from protocol.receipts import Reject
from protocol.scoring import ProportionalPolicy
from tests.receipts.sim import RUN, TINY, make_peers, simulate, small_corpus

OWNERS = {"aa" * 32: "0x" + "d1" * 20, "bb" * 32: "0x" + "d2" * 20}
EMISSION = 1000 * 10**18


def validator(tmp: Path, receipts, p: float = 1.0, client=None, snap: Path | None = None, hooks: Hooks = NO_HOOKS,
              **kw) -> Validator:
    corpus, layout = small_corpus()
    cfg = ValidatorConfig(RUN, TINY, snap or tmp / "snap", tmp / "out", owners=OWNERS, target_batch_size=64, p=p,
                          emission=EMISSION, **kw)
    v = Validator(cfg, fetch=lambda e: receipts.get(e, []), client=client, corpus=corpus, hooks=hooks)
    v.layout = layout
    return v


def test_cheaters_are_caught_every_epoch_and_earn_nothing(tmp_path: Path) -> None:
    corpus, layout = small_corpus()
    peers = make_peers(["honest", "honest", "honest", "inflate", "fake-sketch"])
    receipts = simulate(peers, epochs=6, steps=4, snapshot_dir=tmp_path / "snap", corpus=corpus, layout=layout)
    v = validator(tmp_path, receipts)
    v.poll(ahead=10)
    settled = v.settle_ready(final=True)
    assert [s.epoch for s in settled] == list(range(6))
    honest = {p.account.address.lower() for p in peers[:3]}
    cheats = {p.account.address.lower() for p in peers[3:]}
    for s in settled:
        by_account = {x.receipt.account: x for x in s.verdicts}
        assert all(by_account[a].accepted and by_account[a].checked for a in honest)
        assert all(not by_account[a].accepted and by_account[a].reason == Reject.SKETCH_MISMATCH for a in cheats)
        # the policy's exact output: 70 % split over the three honest peers' samples, 30 % over the shard owners
        expected = ProportionalPolicy(7000).split(EMISSION + (settled[s.epoch - 1].carry if s.epoch else 0),
                                                  s.compute, s.data)
        assert s.rewards == expected.rewards
        assert set(s.compute) == honest and set(s.data) <= set(OWNERS.values())
    final = settled[-1].cumulative
    assert all(final.get(a, 0) == 0 for a in cheats)
    assert sum(final.values()) + settled[-1].carry == 6 * EMISSION
    honest_errors = [x.error for s in settled for x in s.verdicts if x.receipt.account in honest]
    cheat_errors = [x.error for s in settled for x in s.verdicts if x.receipt.account in cheats]
    assert max(honest_errors) <= 1e-6 < 0.1 <= min(cheat_errors)


def test_receipts_naming_parameters_nobody_else_used_are_rejected(tmp_path: Path) -> None:
    corpus, layout = small_corpus()
    peers = make_peers(["honest", "honest", "honest"])
    receipts = simulate(peers, epochs=1, steps=2, snapshot_dir=tmp_path / "snap", corpus=corpus, layout=layout)
    # a fourth peer trains on its own parameters (here: another epoch's), not the swarm's
    loner = make_peers(["honest"] * 4)[3]
    other = simulate([loner], epochs=1, steps=2, snapshot_dir=tmp_path / "snap", corpus=corpus, layout=layout, start_epoch=5)
    from dataclasses import replace

    from node.work.wire import sign_receipt
    from protocol.receipts import batches_commitment, shard_samples

    r = other[5][0].receipt
    moved = replace(r, epoch=0, batches_hash=batches_commitment(r.run_id, 0, r.peer_id, r.steps, r.batch_size, r.n_samples),
                    shard_samples=shard_samples(layout, r.run_id, 0, r.peer_id, r.steps, r.batch_size, r.n_samples))
    receipts[0].append(sign_receipt(loner.account, moved))
    v = validator(tmp_path, receipts)
    v.poll()
    (s,) = v.settle_ready(final=True)
    reasons = {x.receipt.account: x.reason for x in s.verdicts}
    assert reasons[loner.account.address.lower()] in (Reject.PARAMS_MISMATCH, Reject.SKETCH_MISMATCH)
    assert sum(x.accepted for x in s.verdicts) == 3


@pytest.mark.parametrize("p", [0.5])
def test_partial_spot_checks_recompute_about_p_of_the_receipts(tmp_path: Path, p: float) -> None:
    corpus, layout = small_corpus()
    peers = make_peers(["honest"] * 4 + ["fake-sketch"])
    receipts = simulate(peers, epochs=8, steps=1, snapshot_dir=tmp_path / "snap", corpus=corpus, layout=layout)
    v = validator(tmp_path, receipts, p=p)
    v.poll(ahead=10)
    settled = v.settle_ready(final=True)
    verdicts = [x for s in settled for x in s.verdicts]
    checked = sum(x.checked for x in verdicts)
    assert 0.2 * len(verdicts) <= checked <= 0.8 * len(verdicts)  # 40 receipts at p = 0.5: far outside is < 1e-4
    cheat = peers[-1].account.address.lower()
    for x in verdicts:  # whenever the cheater is picked it is caught; honest receipts are never rejected
        if x.receipt.account == cheat:
            assert x.accepted == (not x.checked)
        else:
            assert x.accepted
