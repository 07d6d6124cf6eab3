"""``hivenet status``: ask a running node's local endpoint what it is doing.

    hivenet status                              # the node on 127.0.0.1:8470
    hivenet status --file runs/x/peer0/status.url --json
"""

from __future__ import annotations

import json
import math
import urllib.error
import urllib.request
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from node.cli.common import user_errors
from protocol.errors import HivenetError


class NodeUnreachable(HivenetError, ConnectionError):
    """No node answered at the status URL."""


def fetch_status(url: str, timeout: float = 3.0) -> dict[str, Any]:
    try:
        with urllib.request.urlopen(url.rstrip("/") + "/status", timeout=timeout) as response:
            return dict(json.loads(response.read()))
    except (urllib.error.URLError, OSError, ValueError) as e:
        reason = getattr(e, "reason", e)
        raise NodeUnreachable(
            f"no node answers at {url} ({reason}); start one with `hivenet node start`, or point --url/--file "
            "at its endpoint (the node logs it at start: 'status endpoint on ...')"
        ) from None


def _fmt(v: Any) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return f"{v:.3f}" if isinstance(v, float) else str(v)


def status(
    url: Annotated[str, typer.Option(help="The node's status endpoint.")] = "http://127.0.0.1:8470",
    file: Annotated[Optional[Path], typer.Option(help="Read the URL from this file (status.url_file of the node).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the /status document as JSON.")] = False,
    maddrs: Annotated[bool, typer.Option("--maddrs", help="Print only the addresses other peers can join through "
                                         "(--initial-peers), one per line, loopback last; exit 1 while it has none.")] = False,
) -> None:
    """Show what a running node is doing (stage, epoch, loss, peers), from its /status endpoint."""
    with user_errors():
        if file is not None:
            from node.telemetry.http import read_url_file

            url = read_url_file(file)
        doc = fetch_status(url)
    if as_json:
        typer.echo(json.dumps(doc))
        return
    if maddrs:
        found = [str(a) for a in doc.get("maddrs") or [] if isinstance(a, str) and "/p2p/" in a]
        if not found:
            typer.echo(f"error: the node at {url} has no p2p address yet (stage {doc.get('stage')!r}); try again", err=True)
            raise typer.Exit(1)
        for a in sorted(found, key=lambda a: ("/ip4/127." in a or "/ip6/::1/" in a, a)):
            typer.echo(a)
        return
    for key in ("run_id", "peer_id", "daemon_stage", "stage", "epoch", "local_steps", "loss", "val_loss", "peers",
                "samples_per_s", "rounds", "receipts_accepted", "tokens", "telemetry_connected", "uptime_s", "error"):
        typer.echo(f"{key:20} {_fmt(doc.get(key))}")
