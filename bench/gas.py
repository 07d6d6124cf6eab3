"""Gas per peer-epoch: one Merkle root per epoch (ContributionLedger) against one stored
record per contribution (NaiveContributionLog), on the embedded chain, in the same run.

    .venv/bin/python bench/gas.py                 # peers 10, 100, 1000
    .venv/bin/python bench/gas.py --peers 10 100

Prints one JSON object per line:
{"bench": "gas", "peers": N, "ledger_gas_per_peer_epoch": ..., "naive_gas_per_peer_epoch": ...,
 "ratio": naive / ledger, "claim_gas": ..., ...}
``ledger_gas_per_peer_epoch`` is (postEpoch + finalizeEpoch gas) / N averaged over the
epochs (claims excluded); ``naive_gas_per_peer_epoch`` is the mean gas of one record
transaction. ``claim_gas`` is the worse of the two claims measured, each relayed with a
proof of depth ~log2 N: ``first_claim_gas``, a peer's first-ever claim (it turns the peer's
token record from zero to non-zero: 22,100 gas for one fresh slot, which holds the balance
and the claimed amount together), and ``repeat_claim_gas``, the same peer's claim an epoch
later. All figures are transaction gasUsed, including the 21,000 intrinsic gas.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
from typing import Any

from eth_account import Account

from node.ledger.chain import Chain
from node.ledger.client import LedgerClient
from node.ledger.config import DeployConfig, LedgerConfig
from node.ledger.outbox import Outbox
from protocol.rewards_tree import RewardsTree

EPOCHS = 2
WINDOW = 60


def run(peers: int, seed: int, baseline: bool = True) -> dict[str, Any]:
    """One line of the benchmark. ``baseline=False`` skips the naive contract (most of the
    run time: one transaction per peer-epoch) and reports its figures as None; tests use it
    to check claims at the full size."""
    rng = random.Random(seed)
    chain = Chain.connect(LedgerConfig())
    validator = Account.create()
    chain.faucet(validator.address, 10**21)
    client = LedgerClient(chain, validator, Outbox(None))
    client.deploy(DeployConfig(challenge_window_s=WINDOW))
    client.mint(validator.address, 10**30)
    client.fund(10**30)
    accounts = [Account.create().address for _ in range(peers)]
    cumulative = dict.fromkeys(accounts, 0)

    naive = client.deploy_contract("NaiveContributionLog", [], tag="naive")
    funder = chain.w3.eth.accounts[0]
    ledger_per_epoch: list[float] = []
    naive_gas: list[int] = []
    first_claim = repeat_claim = first_depth = 0
    for epoch in range(1, EPOCHS + 1):
        earned = {a: rng.randint(1, 10**18) for a in accounts}
        for account, amount in earned.items():
            cumulative[account] += amount
            if not baseline:
                continue
            tx = naive.functions.record(epoch, account, amount).transact({"from": funder})
            naive_gas.append(int(chain.w3.eth.get_transaction_receipt(tx)["gasUsed"]))
        tree = RewardsTree.build(cumulative)
        posted = client.post_epoch(epoch, tree.root, tree.total)
        chain.advance_time(WINDOW + 1)
        finalized = client.finalize_epoch(epoch)
        ledger_per_epoch.append((posted.gas_used + finalized.gas_used) / peers)
        if epoch == 1:  # the worst case: a peer with the longest proof (addresses are random, so leaf order is)
            claimant = max(accounts, key=lambda a: len(tree.proof(a)))
        proof = tree.proof(claimant)
        sent = client.claim(claimant, cumulative[claimant], proof)
        if epoch == 1:
            first_claim, first_depth = sent.gas_used, len(proof)
        else:
            repeat_claim = sent.gas_used
    ledger = statistics.mean(ledger_per_epoch)
    naive_mean = statistics.mean(naive_gas) if baseline else None
    client.close()
    return {
        "bench": "gas",
        "peers": peers,
        "ledger_gas_per_peer_epoch": round(ledger, 1),
        "naive_gas_per_peer_epoch": None if naive_mean is None else round(naive_mean, 1),
        "ratio": None if naive_mean is None else round(naive_mean / ledger, 1),
        "claim_gas": max(first_claim, repeat_claim),
        "first_claim_gas": first_claim,
        "repeat_claim_gas": repeat_claim,
        "proof_depth": first_depth,  # of the first claim, the one chosen for the longest proof
        "epochs": EPOCHS,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--peers", type=int, nargs="+", default=[10, 100, 1000])
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    for peers in args.peers:
        print(json.dumps(run(peers, args.seed)), flush=True)


if __name__ == "__main__":
    main()
