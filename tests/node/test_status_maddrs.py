"""`hivenet status --maddrs`: the addresses to join a node through, from its status endpoint (compose uses it)."""

from __future__ import annotations

import typer
from typer.testing import CliRunner

from node.cli import status_cmd

runner = CliRunner()


def invoke(monkeypatch, doc):  # type: ignore[no-untyped-def]
    monkeypatch.setattr(status_cmd, "fetch_status", lambda url: doc)
    app = typer.Typer()
    app.command()(status_cmd.status)
    return runner.invoke(app, ["--url", "http://trainer1:8470", "--maddrs"])


def test_prints_dialable_addresses_loopback_last(monkeypatch):
    doc = {"stage": "waiting-for-peers", "maddrs": ["/ip4/127.0.0.1/tcp/31337/p2p/QmA", "/ip4/172.18.0.5/tcp/31337/p2p/QmA",
                                                    "/ip4/172.18.0.5/tcp/31337", 7]}
    result = invoke(monkeypatch, doc)
    assert result.exit_code == 0
    assert result.output.splitlines() == ["/ip4/172.18.0.5/tcp/31337/p2p/QmA", "/ip4/127.0.0.1/tcp/31337/p2p/QmA"]


def test_a_node_without_addresses_yet_exits_1_and_says_so(monkeypatch):
    result = invoke(monkeypatch, {"stage": "starting", "maddrs": []})
    assert result.exit_code == 1 and "has no p2p address yet (stage 'starting')" in result.output
