"""A scenario's expectations against what the run produced: pure functions on the summary and metrics.

Each expectation yields one message, ``ok: ...`` or ``FAIL: ...``, naming its line in the scenario
file, the measured value and the bound, so a failed run says what to look at.
"""

from __future__ import annotations

from typing import Any

from node.records import Record, StartRecord
from node.testnet.scenario import Expectation, Scenario

TOKEN = 10**18  # token amounts in the summary are in base units; expectations are in whole tokens


def check_expectations(s: Scenario, summary: dict[str, Any], metrics: dict[str, list[Record]],
                       accounts: dict[str, str], byzantine: set[int]) -> list[str]:
    return [_check(s, x, summary, metrics, accounts, byzantine) for x in s.expectations]


def _bounds(x: Expectation) -> str:
    parts = ([f">= {x.min:g}"] if x.min is not None else []) + ([f"<= {x.max:g}"] if x.max is not None else [])
    return " and ".join(parts)


def _within(x: Expectation, value: float) -> bool:
    return (x.min is None or value >= x.min) and (x.max is None or value <= x.max)


def _verdict(s: Scenario, x: Expectation, what: str, value: float | None, hint: str = "") -> str:
    where = f"{s.source}:{x.line}"
    if value is None:
        return f"FAIL: {where}: {what}: not measured{f' ({hint})' if hint else ''}"
    ok = _within(x, value)
    text = f"{where}: {what} = {value:.4g}, expected {_bounds(x)}"
    return f"ok: {text}" if ok else f"FAIL: {text}{f' ({hint})' if hint else ''}"


def _check(s: Scenario, x: Expectation, summary: dict[str, Any], metrics: dict[str, list[Record]],
           accounts: dict[str, str], byzantine: set[int]) -> str:
    if x.check == "final_loss":
        return _verdict(s, x, "swarm final validation loss", summary.get("val_loss_end"),
                        "no peer wrote a final record" if summary.get("val_loss_end") is None else "")
    if x.check == "honest_loss":
        finals = summary.get("val_loss_end_per_peer", {})
        honest = [v for p, v in finals.items() if int(p.removeprefix("peer")) not in byzantine and v is not None]
        return _verdict(s, x, f"worst honest final validation loss (peers {sorted(set(finals) - {f'peer{i}' for i in byzantine})})",
                        max(honest) if honest else None)
    if x.check == "failed_peers":
        failed = summary.get("failed_peers", [])
        return _verdict(s, x, "failed peers", float(len(failed)), f"failed: {', '.join(failed)}" if failed else "")
    if x.check == "rounds":
        return _verdict(s, x, "averaging rounds", float(summary.get("rounds", 0)))
    if x.check == "receipts_rejected":
        detail = summary.get("receipts_rejected_detail", [])
        if x.peer is None:
            return _verdict(s, x, "rejected receipts", float(summary.get("receipts_rejected", len(detail))))
        account = accounts.get(f"peer{x.peer}", "").lower()
        mine = [d for d in detail if str(d.get("account", "")).lower() == account]
        reasons = sorted({str(d.get("reason")) for d in mine})
        return _verdict(s, x, f"rejected receipts of peer{x.peer}", float(len(mine)),
                        f"reasons: {', '.join(reasons)}" if reasons else "")
    if x.check == "tokens":
        who = f"peer{x.peer}" if x.peer is not None else f"contributor{x.contributor}"
        address = accounts.get(who)
        if address is None:
            return _verdict(s, x, f"tokens of {who}", None, "it has no reward account (no shard or no keystore)")
        row = {a.lower(): r for a, r in summary.get("rewards", {}).items()}.get(address.lower())
        return _verdict(s, x, f"tokens of {who}", int(row["tokens"]) / TOKEN if row else 0.0)
    return _shard(s, x, summary, metrics)


def _shard(s: Scenario, x: Expectation, summary: dict[str, Any], metrics: dict[str, list[Record]]) -> str:
    where = f"{s.source}:{x.line}"
    shard = next((r for r in summary.get("shards", []) if r.get("contributor") == x.contributor), None)
    if shard is None:
        return f"FAIL: {where}: contributor {x.contributor} published no shard"
    used = {sid for recs in metrics.values() for r in recs if isinstance(r, StartRecord) for sid in r.shards}
    assigned = shard.get("content_id") in used
    got = f"verdict {shard.get('verdict')}, {'assigned to a trainer' if assigned else 'never assigned'}"
    want = []
    if x.verdict is not None:
        want.append(f"verdict {x.verdict}")
    if x.assigned is not None:
        want.append("assigned to a trainer" if x.assigned else "never assigned")
    ok = (x.verdict is None or shard.get("verdict") == x.verdict) and (x.assigned is None or assigned == x.assigned)
    why = f"; vetting said: {'; '.join(shard.get('reasons', []))}" if shard.get("reasons") else ""
    text = f"{where}: shard of contributor {x.contributor}: {got}, expected {', '.join(want)}{why}"
    return f"ok: {text}" if ok else f"FAIL: {text}"
