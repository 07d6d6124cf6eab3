"""``hivenet monitor``: a live table of a run's peers, from MQTT telemetry.

    hivenet monitor --broker mqtt://127.0.0.1:1883 --run demo
    hivenet monitor --broker "$(cat runs/latest/broker.txt)" --duration 10 --json
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import time
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.live import Live
from rich.table import Table

from node.cli.common import user_errors
from node.telemetry.monitor import MonitorState, watch


def _fmt(v: Any, digits: int = 3) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return f"{v:.{digits}f}" if isinstance(v, float) else str(v)


def render(state: MonitorState, broker: str, run_id: str | None) -> Table:
    link = "connected" if state.connected else (state.error or "connecting…")
    t = Table(title=f"hivenet monitor · {broker} · run {run_id or 'all'} · {link}")
    for col in ("run", "peer", "stage", "epoch", "loss", "val loss", "samples/s", "peers", "receipts", "tokens", "seen"):
        t.add_column(col)
    now = time.time()
    for r in state.peers(run_id):
        t.add_row(r.run_id, r.peer_id[-10:], r.stage, _fmt(r.get("epoch")), _fmt(r.get("loss")), _fmt(r.get("val_loss")),
                  _fmt(r.get("samples_per_s"), 0), _fmt(r.get("peers")), _fmt(r.get("receipts_accepted")),
                  _fmt(r.get("tokens")), f"{now - r.last_seen:.0f} s ago")
    return t


def monitor(
    broker: Annotated[str, typer.Option(help="MQTT broker URL (a testnet writes its own to <run-dir>/broker.txt).")] = "mqtt://127.0.0.1:1883",
    run: Annotated[Optional[str], typer.Option("--run", help="Only this run id (default: every run on the broker).")] = None,
    duration: Annotated[Optional[float], typer.Option(help="Stop after this many seconds (default: until Ctrl-C).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="At the end, print the peers' latest status as JSON.")] = False,
) -> None:
    """Subscribe to telemetry and show every peer: stage, epoch, loss, samples/s, receipts, tokens."""
    from node.telemetry.config import parse_broker_url

    with user_errors():
        address = parse_broker_url(broker)
    state = MonitorState()
    console = Console(stderr=as_json)

    async def main() -> None:
        task = asyncio.create_task(watch(address, run, state))
        deadline = None if duration is None else time.monotonic() + duration
        try:
            with Live(render(state, broker, run), console=console, refresh_per_second=2) as live:
                while deadline is None or time.monotonic() < deadline:
                    await asyncio.sleep(0.5)
                    live.update(render(state, broker, run))
        finally:
            task.cancel()
            await asyncio.wait([task])  # the watcher's end, without swallowing our own cancellation

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())
    if as_json:
        typer.echo(json.dumps({"peers": [{"run_id": r.run_id, "peer_id": r.peer_id, **r.status} for r in state.peers(run)]}))
