"""One isolated testnet run from start to claims, and what it shows (``hivenet testnet up --isolation netns``).

    summary = run_isolated(IsolatedConfig(run_dir=Path("runs/iso")), timeout_s=1200)
    summary["balances_match_policy"], summary["rounds_below_full_group"], summary["epochs_settled"]

The summary is written to ``RUN_DIR/summary.json``. Expected rewards are the reward policy
(``protocol.scoring.ProportionalPolicy``) replayed over the credits the validator verified, epoch by
epoch (``<validator home>/home/epochs/verdicts-N.json``), and compared with every account's token
balance on chain after its own claim: equal to the token, or the run fails.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from node.records import EpochRecord, read_records
from node.testnet.isolated import IsolatedConfig, IsolatedTestnet
from protocol.scoring import ProportionalPolicy

EMISSION = 1000 * 10**18  # tokens per epoch: the validator's default emission


def replay_policy(verdict_files: list[Path], compute_bps: int, emission: int = EMISSION) -> tuple[dict[str, int], int]:
    """(cumulative reward by account, carry) of the policy over the settled epochs' verified credits."""
    docs = sorted((json.loads(p.read_text()) for p in verdict_files), key=lambda d: d["epoch"])
    cumulative: dict[str, int] = {}
    carry = 0
    for d in docs:
        split = ProportionalPolicy(compute_bps).split(emission + carry, d["compute"], d["data"])
        carry = split.carry
        for account, tokens in split.rewards.items():
            cumulative[account] = cumulative.get(account, 0) + tokens
    return cumulative, carry


def trainer_rounds(home: Path) -> list[tuple[int, int | None]]:
    """(epoch, group size of the round that averaged it) for every epoch the trainer finished."""
    return [(r.epoch, r.group_size) for r in read_records(home / "metrics.jsonl") if isinstance(r, EpochRecord)]


def summarize(net: IsolatedTestnet, claims: dict[str, Any], balances: dict[str, int]) -> dict[str, Any]:
    c = net.cfg
    j = net.journal()
    verdicts = sorted((net.roles["validator"].home / "home" / "epochs").glob("verdicts-*.json"))
    expected, carry = replay_policy(verdicts, c.compute_bps)
    by_address = {r.address: r.name for r in net.roles.values() if r.address}
    expected_by_role = {by_address.get(a, a): v for a, v in expected.items()}
    paid = {name: balances.get(name, 0) for name in [t.name for t in net.trainers()] + [r.name for r in net.contributors()]}
    rounds = {t.name: trainer_rounds(t.home) for t in net.trainers()}
    return {
        "run_id": c.run_id, "isolation": "netns", "namespaces": sorted(r.host.netns for r in net.roles.values()),
        "addresses": {r.name: r.host.address for r in net.roles.values()},
        "elapsed_s": round(time.time() - net.started_at, 1),
        "epochs": c.epochs,
        "rounds": {n: [g for _, g in rs] for n, rs in rounds.items()},
        "rounds_below_full_group": sum(1 for rs in rounds.values() for _, g in rs if g != c.trainers),
        "epochs_settled": len(j["settled"]),
        "receipts": sum(s["receipts"] for s in j["settled"]),
        "receipts_checked": sum(s["checked"] for s in j["settled"]),
        "receipts_rejected": sum(s["rejected"] for s in j["settled"]),
        "expected_tokens": {k: str(v) for k, v in sorted(expected_by_role.items())},
        "balances": {k: str(v) for k, v in sorted(paid.items())},
        "carry": str(carry),
        "balances_match_policy": {n: v for n, v in paid.items() if v} == expected_by_role and all(paid.values()),
        "claims": claims,
    }


def run_isolated(cfg: IsolatedConfig, timeout_s: float = 1800.0, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Start every role, train to the last epoch, wait until every epoch is settled and final, claim, check."""
    net = IsolatedTestnet(cfg, log)
    deadline = time.monotonic() + timeout_s
    try:
        net.start()
        net.wait_trained(timeout=max(1.0, deadline - time.monotonic()))
        log("trainers done; waiting for the validator to settle every epoch and the last root to be final")
        net.wait_final(timeout=max(1.0, deadline - time.monotonic()))
        claims = net.claim_all()
        balances = net.balances()
        summary = summarize(net, claims, balances)
    finally:
        net.stop()
    (cfg.run_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary
