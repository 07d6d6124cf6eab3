"""In-process DHT swarms for the rewards tests: every DHT and publisher is always stopped."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

from hivemind import DHT
from hivemind.utils.crypto import RSAPrivateKey

from node.swarm.rewards_board import RewardsBoard, RewardsBoardConfig, RewardsPeer
from protocol.rewards_publication import RewardsPublication
from protocol.rewards_tree import RewardsTree

RUN = "rewards-test"
FAST = RewardsBoardConfig(timeout=20.0, request_timeout=20.0)


@contextmanager
def dht_swarm(n: int) -> Iterator[list[DHT]]:
    dhts: list[DHT] = []
    try:
        first = DHT(start=True, host_maddrs=["/ip4/127.0.0.1/tcp/0"], await_ready=True)
        dhts.append(first)
        for _ in range(n - 1):
            dhts.append(DHT(start=True, host_maddrs=["/ip4/127.0.0.1/tcp/0"],
                            initial_peers=first.get_visible_maddrs(), await_ready=True))
        yield dhts
    finally:
        for d in dhts:
            d.shutdown()


@contextmanager
def publishers(dhts: list[DHT], serve: bool = True) -> Iterator[list[RewardsPeer]]:
    """One publisher per DHT, each with its own key (one process holds them all, so the process-wide key
    would make them one owner)."""
    with ExitStack() as stack:
        made = []
        for d in dhts:
            p = RewardsPeer(RewardsBoard(d, RUN, FAST, private_key=RSAPrivateKey()), serve=serve)
            stack.callback(p.close)
            made.append(p)
        yield made


def forged_bytes(pub: RewardsPublication, kind: str) -> bytes:
    """The canonical bytes of ``pub`` forged one way: ``leaves`` (an amount raised, root kept), ``proof`` (a
    proof hash flipped), or ``root`` (a consistent tree of other amounts)."""
    import json

    doc = json.loads(pub.encode())
    if kind == "leaves":
        doc["accounts"][0]["amount"] = str(int(doc["accounts"][0]["amount"]) + 10**18)
    elif kind == "proof":
        proof = doc["accounts"][0]["proof"]
        proof[0] = ("0" if proof[0][0] != "0" else "1") + proof[0][1:]
    elif kind == "root":
        raised = {a: v * 10 for a, v in pub.tree.amounts.items()}
        return RewardsPublication(pub.run_id, pub.ledger_epoch, RewardsTree.build(raised)).encode()
    else:
        raise ValueError(kind)
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()
