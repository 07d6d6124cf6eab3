"""``hivenet testnet``: a local network of peers on this machine.

    hivenet testnet up --peers 3 --epochs 60 --run-dir runs/demo
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.live import Live
from rich.table import Table

from node.cli.common import graceful_signals, user_errors

app = typer.Typer(no_args_is_help=True, help="Run a local testnet: several peers training together on this machine.")


def _fmt(v: float | None) -> str:
    return "-" if v is None else f"{v:.3f}"


def _table(net: Any) -> Table:
    from node.testnet.metrics import peer_view

    t = Table(title=f"hivenet testnet · run {net.cfg.run_id} · {time.time() - net.started_at:.0f} s")
    for col in ("peer", "state", "epoch", "local loss", "val loss", "group", "rounds", "samples/s"):
        t.add_column(col)
    for p in net.peers:
        v = peer_view(net.metrics().get(p.name, []))
        state = "running" if p.alive() else ("killed" if p.killed else f"exited {p.returncode()}")
        t.add_row(p.name, state, str(v.epoch if v.epoch is not None else "-"), _fmt(v.loss), _fmt(v.val_loss),
                  str(v.group_size or "-"), str(v.rounds), f"{v.samples_per_s:.0f}" if v.samples_per_s else "-")
    return t


@app.command()
def up(
    peers: Annotated[int, typer.Option(help="Peer processes to start (the first is the bootstrap).")] = 3,
    epochs: Annotated[int, typer.Option(help="Collaborative epochs to train, then stop.")] = 60,
    run_dir: Annotated[Path, typer.Option(help="Run directory: per-peer logs, metrics, checkpoints, summary.json.")] = Path("runs/latest"),
    run_id: Annotated[str, typer.Option(help="Run id (DHT prefix).")] = "testnet",
    target_batch_size: Annotated[int, typer.Option(help="Samples per collaborative epoch, over all peers.")] = 128,
    batch_size: Annotated[int, typer.Option(help="Samples per local step of each peer.")] = 16,
    n_layer: Annotated[int, typer.Option(help="Transformer blocks.")] = 4,
    n_embd: Annotated[int, typer.Option(help="Model width.")] = 256,
    device: Annotated[str, typer.Option(help="auto | cpu | cuda")] = "auto",
    timeout: Annotated[float, typer.Option(help="Stop everything after this many seconds.")] = 1800.0,
    broker: Annotated[Optional[str], typer.Option(help='MQTT broker for telemetry (mqtt://host:port); default: an in-process amqtt broker; "" for none.')] = None,
    validators: Annotated[Optional[int], typer.Option(help="Validators checking signed receipts and settling epochs (0: no receipts); default 1, 0 in DiLoCo mode.")] = None,
    data_contributors: Annotated[int, typer.Option(help="Data contributors: one vetted shard each, paid for the samples drawn (0: raw corpus).")] = 2,
    chain: Annotated[str, typer.Option(help="embedded (eth-tester in this process) | anvil (started from contracts/node_modules).")] = "embedded",
    receipt_p: Annotated[float, typer.Option(help="Fraction of receipts the validators recompute.")] = 1.0,
    lr: Annotated[Optional[float], typer.Option(help="Peak learning rate of every peer (default: the node's).")] = None,
    byzantine: Annotated[int, typer.Option(help="Peers (the last ones) that misbehave as --attack says; testing only.")] = 0,
    attack: Annotated[str, typer.Option(help="sign-flip | gaussian | label-flip | ipm | constant | stale")] = "sign-flip",
    aggregator: Annotated[Optional[str], typer.Option(help="centered-clip (peers' default) | trimmed-mean | median | mean")] = None,
    mode: Annotated[str, typer.Option(help="sync (average gradients every epoch) | diloco (--epochs rounds of --inner-steps local steps)")] = "sync",
    inner_steps: Annotated[Optional[int], typer.Option(help="diloco: local steps per round (default: the node's).")] = None,
    compression: Annotated[Optional[str], typer.Option(help="diloco: pseudo-gradients travel as none | float16 | uint8.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print only the summary as JSON.")] = False,
    isolation: Annotated[str, typer.Option(help="process (every peer a process of this machine) | netns (root: every "
                                                "role in its own network namespace and home, anvil and mosquitto included; "
                                                "docs/testnet.md)")] = "process",
) -> None:
    """Start N peers, show them live, stop after --epochs (or Ctrl-C), and print the summary.

    ``--byzantine 1 --attack sign-flip`` makes the last peer send its gradients x -1000: watch the
    held-out loss keep falling with the robust default, and rise with ``--aggregator mean``.
    """
    from node.testnet.network import Testnet, TestnetConfig

    console = Console(stderr=as_json)
    if isolation not in ("process", "netns"):
        raise typer.BadParameter(f"--isolation must be process or netns, not {isolation!r}")
    if isolation == "netns":
        _up_isolated(peers, data_contributors, epochs, run_dir, run_id, target_batch_size, batch_size, n_layer, n_embd,
                     receipt_p, timeout, console, as_json,
                     unsupported={"--mode": mode != "sync", "--byzantine": byzantine > 0, "--validators": validators not in (None, 1),
                                  "--chain": chain != "embedded", "--broker": broker is not None, "--device": device not in ("auto", "cpu"),
                                  "--aggregator": aggregator is not None, "--lr": lr is not None})
        return
    if mode not in ("sync", "diloco"):
        raise typer.BadParameter(f"--mode must be sync or diloco, not {mode!r}")
    if mode == "diloco" and validators:
        raise typer.BadParameter("DiLoCo mode does not sign work receipts yet, so it runs without validators: drop --validators")
    validators = (1 if mode == "sync" else 0) if validators is None else validators
    extra: list[str] = []
    if mode == "diloco":
        extra += ["--mode", "diloco"]
        extra += ["--inner-steps", str(inner_steps)] if inner_steps is not None else []
        extra += ["--compression", compression] if compression is not None else []
    elif inner_steps is not None or compression is not None:
        raise typer.BadParameter("--inner-steps and --compression apply to --mode diloco")
    cfg = TestnetConfig(run_dir=run_dir, peers=peers, run_id=run_id, epochs=epochs, target_batch_size=target_batch_size,
                        batch_size=batch_size, n_layer=n_layer, n_embd=n_embd, device=device, lr=lr,
                        broker=broker, validators=validators, contributors=data_contributors, chain=chain,
                        receipt_p=receipt_p, byzantine=byzantine, attack=attack, aggregator=aggregator,
                        extra_args=tuple(extra))
    if not 0 <= byzantine < peers:
        raise typer.BadParameter(f"--byzantine must be between 0 and {peers - 1} (fewer than --peers)")
    stop = {"requested": False}
    with user_errors(), graceful_signals(lambda: stop.update(requested=True), "stopping the testnet"):
        net = Testnet(cfg)
        try:
            net.start()
            console.print(f"testnet: {peers} peers, run dir {run_dir}, bootstrap {net.bootstrap}, "
                          f"telemetry {net.broker_url or 'off'} (watch: hivenet monitor --broker {net.broker_url} --run {run_id})")
            deadline = time.monotonic() + timeout
            with Live(_table(net), console=console, refresh_per_second=1) as live:
                while (not net.finished() and not stop["requested"] and not net.failed_peers()
                       and time.monotonic() < deadline):
                    time.sleep(1.0)
                    live.update(_table(net))
            if not net.finished():
                console.print("stopping peers…")
        finally:
            net.stop()
        summary = net.write_summary()
    if as_json:
        typer.echo(json.dumps(summary))
    else:
        console.print_json(json.dumps(summary))
        console.print(f"summary written to {run_dir / 'summary.json'}")
    if summary["failed_peers"]:
        for name in summary["failed_peers"]:
            typer.echo(f"error: {name} failed: {net.failure_reason(name)}", err=True)
        raise typer.Exit(1)


def _up_isolated(peers: int, contributors: int, epochs: int, run_dir: Path, run_id: str, target_batch_size: int,
                 batch_size: int, n_layer: int, n_embd: int, receipt_p: float, timeout: float, console: Console,
                 as_json: bool, unsupported: dict[str, bool]) -> None:
    """The namespaced testnet: 1 validator, anvil and mosquitto of its own, each role its own machine."""
    from node.testnet.isolated import IsolatedConfig
    from node.testnet.isolated_run import run_isolated
    from node.testnet.netns import require_netns

    given = [flag for flag, used in unsupported.items() if used]
    if given:
        raise typer.BadParameter(f"{', '.join(given)} apply to --isolation process only: the namespaced testnet runs "
                                 "sync mode with one validator on anvil and mosquitto in namespaces of their own")
    if contributors < 1:
        raise typer.BadParameter("--isolation netns trains on contributed shards: give --data-contributors 1 or more")
    with user_errors():
        require_netns()
        cfg = IsolatedConfig(run_dir=run_dir, run_id=run_id, trainers=peers, contributors=contributors, epochs=epochs,
                             n_layer=n_layer, n_embd=n_embd, target_batch_size=target_batch_size, batch_size=batch_size,
                             receipt_p=receipt_p)
        summary = run_isolated(cfg, timeout, log=lambda line: console.print(line))
    if as_json:
        typer.echo(json.dumps(summary))
    else:
        console.print_json(json.dumps({k: v for k, v in summary.items() if k != "claims"}))
        console.print(f"summary written to {run_dir / 'summary.json'}")
    if not summary["balances_match_policy"] or summary["rounds_below_full_group"]:
        typer.echo("error: the run's balances or rounds are not what they should be; see the summary", err=True)
        raise typer.Exit(1)


def _register_scenario_commands() -> None:
    from node.cli import scenario_cmd

    app.command(name="run")(scenario_cmd.run)
    app.command(name="report")(scenario_cmd.report)


_register_scenario_commands()
