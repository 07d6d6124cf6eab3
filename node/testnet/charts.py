"""The run report's charts: one matplotlib figure per question, saved as PNG (pure data in, file out).

Every chart takes the ``RunData`` of node.testnet.report and a path; a chart with nothing to show
still renders (a labelled empty axis), so a report always has the same set of images.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, no display: the report is built headless
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402

from node.records import EpochRecord  # noqa: E402

VERDICT_COLORS = {"pass": "#2e7d32", "review": "#f9a825", "fail": "#c62828", "unknown": "#757575"}
EVENT_COLORS = {"kill": "#c62828", "restart": "#2e7d32", "add_peer": "#1565c0", "partition": "#6a1b9a",
                "heal": "#8e24aa", "byzantine": "#d84315", "broker_stop": "#5d4037", "broker_start": "#8d6e63",
                "chain_stop": "#37474f", "chain_start": "#78909c"}


def _empty(ax: Axes, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="#555", fontsize=11)
    ax.set_xticks([])
    ax.set_yticks([])


def _events(ax: Axes, timeline: list[dict[str, Any]], key: str) -> None:
    """The scenario's events as labelled vertical lines (x = seconds or epoch, per ``key``)."""
    seen: dict[float, int] = {}
    for e in timeline:
        if e["action"] in ("poisoned_shard", "duplicate_shard"):
            continue  # before the start: shown in the shard chart
        x = e[key]
        color = EVENT_COLORS.get(e["action"], "#444")
        ax.axvline(x, color=color, linestyle="--", linewidth=1, alpha=0.8)
        label = e["action"] + (f" p{e['peer']}" if e.get("peer") is not None else "")
        near = sum(n for at, n in seen.items() if abs(at - x) <= (3.0 if key == "t" else 0.5))
        seen[x] = seen.get(x, 0) + 1  # labels of events at (nearly) the same place step down the line
        ax.text(x, 0.98 - 0.3 * (near % 3), label, rotation=90, va="top", ha="right", fontsize=7, color=color,
                transform=ax.get_xaxis_transform())


def _save(fig: Any, path: Path) -> None:
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def loss_over_time(d: Any, path: Path) -> None:
    fig, (ax, ax2) = plt.subplots(2, 1, figsize=(9, 6.5), sharex=True)
    for peer, recs in d.metrics.items():
        val = [(r.t - d.t0, v) for r in recs if (v := getattr(r, "val_loss", None)) is not None]
        if val:
            ax.plot(*zip(*val), marker="o", markersize=3, linewidth=1, label=peer)
        train = [(r.t - d.t0, r.loss) for r in recs if isinstance(r, EpochRecord)]
        if train:
            ax2.plot(*zip(*train), linewidth=1, label=peer)
    swarm = d.swarm_val_curve()
    if swarm:
        ax.plot(*zip(*swarm), color="black", linewidth=2.2, label="swarm (every evaluation; simultaneous ones averaged)")
    if not swarm:
        _empty(ax, "no validation loss recorded")
    ax.set_ylabel("validation loss (nats/byte)")
    ax.set_title("Validation loss over time, per peer and for the swarm")
    ax.legend(fontsize=7, loc="upper right")
    ax2.set_ylabel("local training loss")
    ax2.set_xlabel("seconds since start")
    ax2.set_title("Training loss per peer (each epoch)")
    for a in (ax, ax2):
        _events(a, d.timeline, "t")
    _save(fig, path)


def participation(d: Any, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(9, 3.6))
    names = sorted(d.metrics, key=lambda p: int(p.removeprefix("peer")))
    for row, peer in enumerate(names):
        rounds = [r for r in d.metrics[peer] if isinstance(r, EpochRecord)]
        ok = [r.epoch for r in rounds if r.averaged]
        alone = [r.epoch for r in rounds if not r.averaged]
        ax.scatter(ok, [row] * len(ok), marker="s", color="#2e7d32", s=30, label="averaged" if row == 0 else None)
        ax.scatter(alone, [row] * len(alone), marker="x", color="#c62828", s=30, label="not averaged" if row == 0 else None)
    groups = d.group_sizes()
    if groups:
        ax2 = ax.twinx()
        ax2.step(list(groups), list(groups.values()), where="mid", color="#1565c0", alpha=0.6, label="group size")
        ax2.set_ylabel("largest group", color="#1565c0")
        ax2.set_ylim(0, max(groups.values()) + 1)
    if not names:
        _empty(ax, "no peer metrics")
    ax.set_yticks(range(len(names)), names)
    ax.set_xlabel("collaborative epoch")
    ax.set_title("Round participation: who averaged in which epoch")
    ax.legend(fontsize=7, loc="lower right")
    _events(ax, d.timeline, "epoch")
    _save(fig, path)


def bytes_exchanged(d: Any, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(9, 3.4))
    per_peer = d.bytes_estimate()
    if per_peer:
        names = list(per_peer)
        ax.bar(names, [v / 1e6 for v in per_peer.values()], color="#1565c0")
        ax.set_ylabel("MB (estimate)")
        ax.set_title(f"Bytes exchanged per peer: estimated as rounds x 2(n-1)/n x {d.param_count:,} params x 4 B "
                     "(not measured)", fontsize=9)
    else:
        _empty(ax, "bytes exchanged: not recorded (no checkpoint or no averaged round)")
        ax.set_title("Bytes exchanged per peer")
    _save(fig, path)


def receipts(d: Any, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(9, 3.4))
    rows = d.receipts_by_name()
    if rows:
        names = list(rows)
        acc = [r["accepted"] for r in rows.values()]
        rej = [r["rejected"] for r in rows.values()]
        ax.bar(names, acc, color="#2e7d32", label="accepted")
        ax.bar(names, rej, bottom=acc, color="#c62828", label="rejected")
        for i, (a, r) in enumerate(zip(acc, rej)):
            ax.text(i, a + r, f"{a} / {r}", ha="center", va="bottom", fontsize=8)
        ax.set_ylabel("receipts")
        ax.set_ylim(0, max(a + r for a, r in zip(acc, rej)) * 1.2 + 1)  # room for the labels under the title
        ax.legend(fontsize=8)
    else:
        _empty(ax, "no receipts (validators off)")
    ax.set_title("Work receipts per peer: accepted / rejected by the validators")
    _save(fig, path)


def shard_verdicts(d: Any, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(9, max(2.4, 0.7 * len(d.shards) + 1.2)))
    if d.shards:
        labels = [f"contributor {s['contributor']}" for s in d.shards]
        values = [s.get("records", 0) for s in d.shards]
        colors = [VERDICT_COLORS.get(s.get("verdict") or ("pass" if s.get("passed") else "fail"), "#757575") for s in d.shards]
        ax.barh(labels, [max(v, 1) for v in values], color=colors)
        for i, s in enumerate(d.shards):
            verdict = s.get("verdict") or ("pass" if s.get("passed") else "fail")
            why = (s.get("reasons") or [""])[0]
            text = f" {verdict.upper()}  {values[i]} usable records" + (f"  - {why[:80]}" if why else "")
            ax.text(max(values[i], 1), i, text, va="center", fontsize=7)
        ax.invert_yaxis()
        ax.set_xlabel("usable records")
        ax.set_xlim(0, max(values + [1]) * 2.2)
    else:
        _empty(ax, "no data contributors (raw corpus)")
    ax.set_title("Vetting verdict per shard (green pass, amber review, red fail: never assigned)")
    _save(fig, path)


def tokens(d: Any, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(9, 3.4))
    rows = d.tokens_by_name()
    if rows:
        names = list(rows)
        colors = ["#6a1b9a" if role == "data" else "#1565c0" for role, _ in rows.values()]
        ax.bar(names, [v for _, v in rows.values()], color=colors)
        for i, (_, v) in enumerate(rows.values()):
            ax.text(i, v, f"{v:,.0f}", ha="center", va="bottom", fontsize=8)
        ax.set_ylabel("tokens")
        ax.set_ylim(0, max([v for _, v in rows.values()] + [1]) * 1.2)
        ax.tick_params(axis="x", labelsize=8)
    else:
        _empty(ax, "no rewards (validators off)")
    ax.set_title("Tokens earned: peers (blue) and data contributors (purple)")
    _save(fig, path)


CHARTS = {
    "loss": loss_over_time,
    "participation": participation,
    "bytes": bytes_exchanged,
    "receipts": receipts,
    "shards": shard_verdicts,
    "tokens": tokens,
}
