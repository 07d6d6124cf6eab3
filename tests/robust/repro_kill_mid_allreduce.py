"""Acceptance 3 (reproduction, not collected: it currently FAILS): a peer SIGKILLed in the middle of an
all-reduce, at several moments of the round.

Run it by name (pytest collects only test_*.py, so the suite skips this file):

    .venv/bin/python -m pytest tests/robust/repro_kill_mid_allreduce.py -s -p no:cacheprovider

What it does: 5 peers, coordinate median (robust, and exactly reproducible from the inputs), groups of at
least 3. Two victims send their parts one at a time, ``SEND_DELAY`` s apart (``--send-delay``: the k-th of
its 4 remote sends leaves k * SEND_DELAY s into the round) and mark the moment each round's sending begins
(``sending-<time>`` beside the round dumps). Each victim is killed at its own moment of a round: between its
2nd and 3rd send (two reducers hold its part, the others never get it), then between its 1st and 2nd. Every
peer dumps what it sent and what it applied each round. The survivors must (a) finish a round among
themselves within 30 s of each kill, (b) only ever apply a round whose whole group reported (a round a
victim died in is discarded), with a result equal to the median of exactly the members' inputs within 1e-5,
and (c) hold the same parameters after every round.

What it shows today (2 runs of this version on a 2-core machine at load ~11, after the agreement fix 47d9304):
- (b) holds: every kill landed inside a round, every such round was discarded by all survivors, and every
  applied round equals the median of exactly its members' inputs (max error ~1e-8).
- (a) is borderline: the first survivors-only round came 44 s and 30.9 s after the kill. The dead peer's
  agreement record never comes, so survivors wait the whole agreement timeout (10 s), then a new epoch's
  samples, matchmaking (4 s) and the slowest peer's trigger.
- (c) fails, and not because of the kills: a peer that misses the swarm's first round (here the 5th to
  start) stays one epoch behind for the whole run. It loads state every other epoch (hivemind's exact-sync
  check), but the state it downloads is apparently itself an epoch old (likely: with
  delay_state_averaging the served copy trails by a step), so it lands one behind again, then joins the
  others' next round with its own parameters; after every common round its parameter sketch differs from the others'. Seen in run dirs
  as peer2's epoch records alternating "agreed" rounds and rounds it skipped while loading state.
"""

import time
from pathlib import Path

import pytest
import torch

from node.swarm.agreement import sketches_match
from node.swarm.robust import coordinate_median
from node.testnet.network import Testnet
from node.testnet.peers import wait_until
from tests.integration.swarm_helpers import epoch_records, tiny_testnet

pytestmark = pytest.mark.slow

SEND_DELAY = 0.5  # s between a victim's sends; its 4 sends stay well under hivemind's 4 s sender timeout
# (victim index, how far into its round's sending it is killed, in send delays)
KILLS = ((4, 2.5), (3, 1.5))
SURVIVORS = ("peer0", "peer1", "peer2")


def _dumps(run_dir: Path) -> list[dict]:
    rounds = []
    for path in sorted(run_dir.glob("peer*/rounds/round-*.pt")):
        record = torch.load(path, weights_only=False)
        record["t"] = float(path.stem.split("-")[-1])
        record["dumper"] = path.parent.parent.name
        rounds.append(record)
    return rounds


def _sending_marks(run_dir: Path, peer: int) -> list[float]:
    return sorted(float(p.name.split("-", 1)[1]) for p in (run_dir / f"peer{peer}" / "rounds").glob("sending-*"))


def _applied_without(run_dir: Path, gone: set[str], after: float) -> bool:
    return any(r["t"] > after and r["outcome"] == "apply" and r["group"] and not gone & set(r["group"])
               for r in _dumps(run_dir))


def _peer_id(net: Testnet, index: int) -> str:
    starts = [r for r in net.metrics()[f"peer{index}"] if r["event"] == "start"]
    return starts[0]["peer"] if starts else ""


def test_survivors_finish_the_round_or_the_next_and_never_apply_a_partial_average(tmp_path):
    run_dir = tmp_path / "run"
    peer_args = {i: ("--dump-rounds", str(run_dir / f"peer{i}" / "rounds")) for i in range(5)}
    for victim, _ in KILLS:
        peer_args[victim] += ("--send-delay", str(SEND_DELAY))
    cfg = tiny_testnet(run_dir, peers=5, epochs=40, run_id="kill-test", aggregator="median", contributors=0,
                       broker="", extra_args=("--min-group-size", "3"), peer_args=peer_args)
    kills: list[tuple[float, set[str]]] = []  # (when, the victims dead by then)
    gone: set[str] = set()
    with Testnet(cfg) as net:
        assert wait_until(lambda: len([r for r in _dumps(run_dir) if r["outcome"] == "apply" and r["dumper"] == "peer0"
                                       and len(r["group"]) == 5]) >= 2, timeout=240), "no rounds of all 5 peers"
        for victim, moment in KILLS:
            seen = time.time()
            assert wait_until(lambda: any(m > seen for m in _sending_marks(run_dir, victim)), timeout=60, poll=0.05), \
                f"peer{victim} sent nothing"
            began = next(m for m in _sending_marks(run_dir, victim) if m > seen)
            time.sleep(max(0.0, began + moment * SEND_DELAY - time.time()))
            net.peers[victim].kill()
            gone = gone | {_peer_id(net, victim)}
            kills.append((time.time(), gone))
            assert wait_until(lambda: _applied_without(run_dir, gone, kills[-1][0]), timeout=45), \
                f"survivors did not complete a round after killing peer{victim}"
        net.stop()
        metrics = net.metrics()
    rounds = _dumps(run_dir)

    # (a) survivors finished a round among themselves within 30 s of each kill
    for killed_at, dead in kills:
        done = [r["t"] - killed_at for r in rounds if r["t"] > killed_at and r["outcome"] == "apply"
                and not dead & set(r["group"]) and r["dumper"] in SURVIVORS]
        print(f"\nfirst survivors' round {min(done, default=float('nan')):.1f} s after a kill")
        assert done and min(done) <= 30.0, (killed_at, done)

    # (b) applied rounds: every member reported, and the result is the median of exactly the members' inputs
    by_round: dict[str, dict[str, dict]] = {}  # round (the all-reduce group's id) -> member -> its dump
    for r in rounds:
        if r["group"] is not None:
            by_round.setdefault(r["round"], {})[r["peer"]] = r
    checked = discarded = 0
    for round_id, members in by_round.items():
        group = next(iter(members.values()))["group"]
        applied = [r for r in members.values() if r["outcome"] == "apply"]
        if not applied:
            discarded += 1
            continue
        assert set(members) == set(group), f"round {round_id}: applied although {set(group) - set(members)} never reported"
        for k in range(len(applied[0]["result"])):
            expected = coordinate_median(torch.stack([members[p]["sent"][k] for p in group]))
            for r in applied:
                assert float((r["result"][k] - expected).abs().max()) <= 1e-5, (round_id, r["peer"], k)
        checked += 1
    print(f"\nkills at {[round(k - kills[0][0], 1) for k, _ in kills]} s; rounds applied and checked: {checked}, "
          f"discarded: {discarded}")
    assert checked >= 4
    assert discarded >= len(KILLS)  # each kill landed inside a round, and the survivors caught it

    # (c) after every round the survivors hold the same parameters (the stop itself lands mid-epoch, so the
    # final checkpoints are not comparable; each epoch record carries a sketch of the parameters and the id
    # of the round that ended the epoch: members may be at different local epochs, so rounds are matched by id)
    sketches = {p: {r["round"]: r["param_sketch"] for r in epoch_records(metrics, p) if r.get("round")}
                for p in SURVIVORS}
    common = set.intersection(*(set(s) for s in sketches.values()))
    assert len(common) >= 4
    for round_id in sorted(common):
        for p in SURVIVORS[1:]:
            assert sketches_match(sketches["peer0"][round_id], sketches[p][round_id]), (round_id, p)
