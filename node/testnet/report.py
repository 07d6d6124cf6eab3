"""The run report: one self-contained HTML file (charts embedded as PNG) plus a PNG per chart.

    hivenet testnet report runs/churn        # writes runs/churn/report.html and runs/churn/charts/*.png

It reads only what a run leaves in its directory: peer*/metrics.jsonl, summary.json, and, for a
scenario run, scenario.json, timeline.json, accounts.json and result.json. A plain
``hivenet testnet up`` run gets the same report without the timeline and verdicts.
"""

from __future__ import annotations

import base64
import html
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from node.records import EpochRecord, Record, StartRecord, read_records

TOKEN = 10**18


@dataclass
class RunData:
    run_dir: Path
    metrics: dict[str, list[Record]]
    summary: dict[str, Any]
    timeline: list[dict[str, Any]] = field(default_factory=list)
    scenario: dict[str, Any] = field(default_factory=dict)
    result: dict[str, Any] = field(default_factory=dict)
    accounts: dict[str, str] = field(default_factory=dict)  # peerN / contributorN -> address
    receipts: dict[str, dict[str, int]] = field(default_factory=dict)  # address -> accepted/rejected
    t0: float = 0.0  # seconds are counted from here (the testnet's start)
    param_count: int = 0

    @property
    def shards(self) -> list[dict[str, Any]]:
        return list(self.summary.get("shards") or [])

    def _name(self, address: str, role: str = "") -> str:
        names = {a.lower(): n for n, a in self.accounts.items()}
        return names.get(address.lower(), f"{role or 'account'} {address[:8]}")

    def swarm_val_curve(self) -> list[tuple[float, float]]:
        """The swarm's loss: every evaluation of any peer in time order (peers hold one model after each
        round), evaluations within 3 s of each other (a start or the final one of every peer) averaged."""
        first_epoch = min((r.t for recs in self.metrics.values() for r in recs if isinstance(r, EpochRecord)),
                          default=float("inf"))
        # A peer that joins or restarts evaluates its model before it loads the swarm's: not the swarm's loss.
        points = sorted((r.t - self.t0, v) for recs in self.metrics.values() for r in recs
                        if (v := getattr(r, "val_loss", None)) is not None
                        and (not isinstance(r, StartRecord) or r.t < first_epoch))
        groups: list[list[tuple[float, float]]] = []
        for t, v in points:
            if groups and t - groups[-1][0][0] <= 3.0:
                groups[-1].append((t, v))
            else:
                groups.append([(t, v)])
        return [(sum(t for t, _ in g) / len(g), sum(v for _, v in g) / len(g)) for g in groups]

    def group_sizes(self) -> dict[int, int]:
        groups: dict[int, int] = {}
        for recs in self.metrics.values():
            for r in recs:
                if isinstance(r, EpochRecord) and r.averaged:
                    groups[r.epoch] = max(groups.get(r.epoch, 0), r.group_size or 0)
        return dict(sorted(groups.items()))

    def bytes_estimate(self) -> dict[str, float]:
        """Per peer: the all-reduce traffic of its averaged rounds (float32, 2(n-1)/n of the model each way)."""
        if not self.param_count:
            return {}
        out = {}
        for p, recs in sorted(self.metrics.items()):
            sizes = [r.group_size for r in recs if isinstance(r, EpochRecord) and r.averaged and r.group_size]
            out[p] = sum(2 * (n - 1) / n * 4 * self.param_count for n in sizes)
        return out if any(out.values()) else {}

    def receipts_by_name(self) -> dict[str, dict[str, int]]:
        rows = {self._name(a, "peer"): r for a, r in self.receipts.items()}
        if not rows:  # a run without accounts.json: rejected receipts only, from the summary
            for d in self.summary.get("receipts_rejected_detail", []):
                row = rows.setdefault(self._name(str(d.get("account", "")), "peer"), {"accepted": 0, "rejected": 0})
                row["rejected"] += 1
        return dict(sorted(rows.items()))

    def tokens_by_name(self) -> dict[str, tuple[str, float]]:
        rows = {self._name(a, r.get("role", "")): (r.get("role", ""), int(r.get("tokens", 0)) / TOKEN)
                for a, r in (self.summary.get("rewards") or {}).items()}
        return dict(sorted(rows.items(), key=lambda kv: (kv[1][0], kv[0])))


def _json(path: Path, default: Any) -> Any:
    return json.loads(path.read_text()) if path.exists() else default


def load_run(run_dir: Path) -> RunData:
    peers = sorted((p for p in run_dir.glob("peer*") if p.is_dir()), key=lambda p: int(p.name[4:] or 0))
    metrics = {p.name: read_records(p / "metrics.jsonl") for p in peers}
    timeline = _json(run_dir / "timeline.json", {})
    acc = _json(run_dir / "accounts.json", {})
    starts = [r.t for recs in metrics.values() for r in recs]
    d = RunData(run_dir, metrics, _json(run_dir / "summary.json", {}), timeline.get("events", []),
                _json(run_dir / "scenario.json", {}), _json(run_dir / "result.json", {}), acc.get("accounts", {}),
                acc.get("receipts", {}), t0=timeline.get("started_at") or (min(starts) if starts else 0.0))
    d.param_count = _param_count(peers[0] / "checkpoint.pt") if peers else 0
    return d


def _param_count(path: Path) -> int:
    if not path.exists():
        return 0
    try:
        from node.train.checkpoint import load_checkpoint

        state = load_checkpoint(path)
    except Exception:  # a half-written checkpoint of a killed run: the chart says "not recorded" instead
        return 0
    return sum(int(t.numel()) for t in (state or {}).get("model", {}).values())


def write_report(run_dir: Path) -> Path:
    """Render every chart to RUN_DIR/charts/NAME.png and RUN_DIR/report.html (PNGs inlined); returns the HTML path."""
    from node.testnet.charts import CHARTS

    if not run_dir.is_dir():
        raise FileNotFoundError(f"no run directory {run_dir}")
    d = load_run(run_dir)
    charts_dir = run_dir / "charts"
    charts_dir.mkdir(exist_ok=True)
    images = {}
    for name, draw in CHARTS.items():
        path = charts_dir / f"{name}.png"
        draw(d, path)
        images[name] = base64.b64encode(path.read_bytes()).decode()
    out = run_dir / "report.html"
    out.write_text(render_html(d, images))
    return out


TITLES = {"loss": "Model", "participation": "Rounds", "bytes": "Traffic", "receipts": "Receipts",
          "shards": "Data", "tokens": "Money"}

CSS = """body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1000px;color:#222}
h1{margin-bottom:.2em}.verdict{font-size:1.3em;font-weight:bold;padding:.4em .8em;border-radius:6px;display:inline-block}
.pass{background:#e8f5e9;color:#1b5e20}.fail{background:#ffebee;color:#b71c1c}
table{border-collapse:collapse;font-size:.9em;margin:.5em 0}td,th{border:1px solid #ddd;padding:.25em .6em;text-align:left}
figure{margin:1.2em 0}img{max-width:100%;border:1px solid #eee}.ok{color:#1b5e20}.bad{color:#b71c1c}"""

# Counts the charts the browser really decoded; the browser test reads the result from the DOM.
CHECK_JS = """window.addEventListener('load',function(){var n=0;document.querySelectorAll('img.chart')
.forEach(function(i){if(i.complete&&i.naturalWidth>0)n++;});document.body.setAttribute('data-charts-rendered',n);});"""


def render_html(d: RunData, images: dict[str, str]) -> str:
    e = html.escape
    s, sc = d.summary, d.scenario
    title = f"hivenet run report: {sc.get('name') or s.get('run_id') or d.run_dir.name}"
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{e(title)}</title><style>{CSS}</style>"
             f"<script>{CHECK_JS}</script></head><body data-charts='{len(images)}'><h1>{e(title)}</h1>"]
    if sc.get("description"):
        parts.append(f"<p>{e(sc['description'])}</p>")
    if d.result:
        ok = d.result.get("passed")
        parts.append(f"<div class='verdict {'pass' if ok else 'fail'}'>{'PASSED' if ok else 'FAILED'}</div><ul>")
        for m in d.result.get("messages", []):
            parts.append(f"<li class='{'ok' if m.startswith('ok') else 'bad'}'>{e(m)}</li>")
        parts.append("</ul>")
    figures = [("peers", s.get("peers")), ("epochs", s.get("epochs")), ("averaging rounds", s.get("rounds")),
               ("validation loss start", _f(s.get("val_loss_start"))), ("validation loss end", _f(s.get("val_loss_end"))),
               ("wall time (s)", s.get("wall_s")), ("receipts", s.get("receipts")),
               ("receipts rejected", s.get("receipts_rejected")), ("failed peers", ", ".join(s.get("failed_peers") or []) or "none")]
    parts.append("<table>" + "".join(f"<tr><th>{e(k)}</th><td>{e(str(v))}</td></tr>" for k, v in figures if v is not None) + "</table>")
    if d.timeline:
        parts.append("<h2>Timeline</h2><table><tr><th>t (s)</th><th>epoch</th><th>event</th><th>peer</th><th>line</th><th>detail</th></tr>")
        for ev in d.timeline:
            peer = "" if ev.get("peer") is None else f"peer{ev['peer']}"
            parts.append(f"<tr><td>{ev['t']}</td><td>{ev['epoch']}</td><td>{e(ev['action'])}</td><td>{peer}</td>"
                         f"<td>{ev.get('line', '')}</td><td>{e(ev.get('detail', ''))}</td></tr>")
        parts.append("</table>")
    for name, b64 in images.items():
        parts.append(f"<figure><h2>{e(TITLES.get(name, name))}</h2><img class='chart' id='chart-{name}' "
                     f"alt='{e(name)} chart' src='data:image/png;base64,{b64}'></figure>")
    parts.append("</body></html>")
    return "\n".join(parts)


def _f(v: Any) -> str | None:
    return None if v is None else f"{v:.3f}"
