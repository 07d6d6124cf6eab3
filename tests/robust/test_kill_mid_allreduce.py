"""Acceptance 3: a peer SIGKILLed in the middle of an all-reduce, at several moments of the round.

    .venv/bin/python -m pytest tests/robust/test_kill_mid_allreduce.py -s -p no:cacheprovider

5 peers, coordinate median (robust, and exactly reproducible from the inputs), groups of at least 3. Two
victims start their streams to the 4 other reducers one at a time, ``SEND_DELAY`` s apart (``--send-delay``:
all its parts for the k-th reducer leave k * SEND_DELAY s into the round), and mark the moment each round's
sending begins (``sending-<time>`` beside the round dumps). Each victim is killed at its own moment of a
round: between its 2nd and 3rd stream (two reducers hold its parts, the others never get them), then between
its 1st and 2nd. Every peer dumps what it sent and what it applied each round, and its parameters after
each epoch. The survivors must (a) complete a round among themselves within 30 s of each kill, (b) only ever
apply a round whose whole group reported and returned complete (a round a victim died in is discarded by
every member), with a result equal to the median of exactly the members' inputs within 1e-5, and (c) hold
the same parameters after every round they shared.
"""

import time
from pathlib import Path

import pytest
import torch

from node.records import StartRecord
from node.swarm.robust import coordinate_median
from node.testnet.network import Testnet
from node.testnet.peers import wait_until
from tests.integration.swarm_helpers import tiny_testnet

pytestmark = [pytest.mark.slow, pytest.mark.swarm]

SEND_DELAY = 0.5  # s between a victim's streams; its 4 stay well under hivemind's 4 s sender timeout
# (victim index, how far into its round's sending it is killed, in send delays)
KILLS = ((4, 2.5), (3, 1.5))
SURVIVORS = ("peer0", "peer1", "peer2")
RECOVERY_S = 30.0


def _load(path: Path) -> dict:
    record = torch.load(path, weights_only=False)
    record["t"] = float(path.stem.split("-")[-1])
    record["dumper"] = path.parent.parent.name
    return record


def _dumps(run_dir: Path, kind: str = "round") -> list[dict]:
    return [_load(path) for path in sorted(run_dir.glob(f"peer*/rounds/{kind}-*.pt"))]


def _sending_marks(run_dir: Path, peer: int) -> list[float]:
    return sorted(float(p.name.split("-", 1)[1]) for p in (run_dir / f"peer{peer}" / "rounds").glob("sending-*"))


def _survivor_rounds(run_dir: Path, gone: set[str], after: float) -> dict[str, dict[str, float]]:
    """Rounds that began after ``after`` without a dead member: round id -> survivor -> when it applied it."""
    out: dict[str, dict[str, float]] = {}
    for p in _dumps(run_dir, "params"):
        if p["t"] > after and p["agreement"] == "agreed" and p["dumper"] in SURVIVORS:
            out.setdefault(p["round"], {})[p["dumper"]] = p["t"]
    groups = {r["round"]: set(r["group"]) for r in _dumps(run_dir) if r["group"] and r["t"] > after}
    return {rid: who for rid, who in out.items() if rid in groups and not gone & groups[rid]}


def _recovered(run_dir: Path, gone: set[str], after: float) -> bool:
    return any(set(who) == set(SURVIVORS) for who in _survivor_rounds(run_dir, gone, after).values())


def _peer_id(net: Testnet, index: int) -> str:
    starts = [r for r in net.metrics()[f"peer{index}"] if isinstance(r, StartRecord)]
    return starts[0].peer if starts else ""


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
                                       and len(r["group"]) == 5]) >= 2, timeout=180), "no rounds of all 5 peers"
        for victim, moment in KILLS:
            seen = time.time()
            assert wait_until(lambda: any(m > seen for m in _sending_marks(run_dir, victim)), timeout=60, poll=0.05), \
                f"peer{victim} sent nothing"
            began = next(m for m in _sending_marks(run_dir, victim) if m > seen)
            # The behaviour under test: the kill lands at a chosen moment of the victim's sending.
            time.sleep(max(0.0, began + moment * SEND_DELAY - time.time()))
            net.peers[victim].kill()
            gone = gone | {_peer_id(net, victim)}
            kills.append((time.time(), gone))
            assert wait_until(lambda: _recovered(run_dir, gone, kills[-1][0]), timeout=RECOVERY_S + 15), \
                f"survivors did not complete a round after killing peer{victim}"
        # two more rounds of the survivors alone, for (c)
        assert wait_until(lambda: len(_survivor_rounds(run_dir, gone, kills[-1][0])) >= 3, timeout=60)
        net.stop()
    rounds = _dumps(run_dir)
    params = _dumps(run_dir, "params")

    # (a) every survivor applied a round of survivors only within 30 s of each kill
    recoveries = []
    for killed_at, dead in kills:
        done = [max(who.values()) - killed_at for who in _survivor_rounds(run_dir, dead, killed_at).values()
                if set(who) == set(SURVIVORS)]
        recoveries.append(min(done, default=float("nan")))
    print(f"\nsurvivors applied a round of their own {', '.join(f'{s:.1f}' for s in recoveries)} s after the kills")
    assert all(s <= RECOVERY_S for s in recoveries), recoveries

    # (b) applied rounds: every member reported, no member discarded what others applied (a member holding
    # another result loads state instead; one that tagged along, to load state or while stopping, does not
    # apply rounds), and the result is the median of exactly the members' inputs (one that tagged along before
    # it triggered sent nothing that counts; a member killed after it reported left its dump "pending")
    by_round: dict[str, dict[str, dict]] = {}  # round (the all-reduce group's id) -> member -> its dump
    for r in rounds:
        if r["group"] is not None:
            by_round.setdefault(r["round"], {})[r["peer"]] = r
    checked = discarded = 0
    worst = 0.0
    for round_id, members in by_round.items():
        group = next(iter(members.values()))["group"]
        applied = [r for r in members.values() if r["outcome"] == "apply"]
        if not applied:
            discarded += 1
            continue
        assert set(members) == set(group), f"round {round_id}: applied although {set(group) - set(members)} never reported"
        senders = [p for p in group if members[p]["sent"] is not None]
        assert not [p for p in group if members[p]["outcome"] == "discard" and members[p]["reason"] != "tag-along"], \
            f"round {round_id}: members disagree"
        for k in range(len(applied[0]["result"])):
            expected = coordinate_median(torch.stack([members[p]["sent"][k] for p in senders]))
            for r in applied:
                worst = max(worst, float((r["result"][k] - expected).abs().max()))
        checked += 1
    print(f"kills at {[round(k - kills[0][0], 1) for k, _ in kills]} s; rounds applied and checked: {checked}, "
          f"discarded: {discarded}; max error vs the median of the members' inputs {worst:.2e}")
    assert worst <= 1e-5
    assert checked >= 4
    assert discarded >= len(KILLS)  # each kill landed inside a round, and the survivors caught it

    # (c) after every round they shared, the survivors hold the same parameters (a survivor told by the round
    # to load state is compared from its next round on: the state it loads may already be a round newer)
    after: dict[str, dict[str, list[torch.Tensor]]] = {}  # round -> survivor -> parameters after it
    reloaded = set()
    for p in params:
        if p["dumper"] in SURVIVORS and p["round"]:
            after.setdefault(p["round"], {})[p["dumper"]] = p["params"]
            if p["loaded_state"]:
                reloaded.add(p["round"])
    common = [rid for rid, who in after.items() if set(who) == set(SURVIVORS) and rid not in reloaded]
    diff = max(float((a - b).abs().max()) for rid in common for p in SURVIVORS[1:]
               for a, b in zip(after[rid]["peer0"], after[rid][p]))
    print(f"rounds all survivors shared: {len(common)} (+{len(reloaded)} after which one loaded state); "
          f"max parameter difference between survivors {diff:.2e}")
    assert len(common) >= 6
    assert diff <= 1e-5
