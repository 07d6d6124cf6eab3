"""``hivenet testnet run`` and ``hivenet testnet report``: scenarios on a local testnet, and their report.

    hivenet testnet run node/testnet/scenarios/churn.toml --run-dir runs/churn   # exit 1 if an expectation fails
    hivenet testnet report runs/churn                                           # rewrite runs/churn/report.html
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from node.cli.common import graceful_signals, user_errors


def run(
    scenario: Annotated[Path, typer.Argument(help="Scenario file (TOML); see node/testnet/scenarios/.")],
    run_dir: Annotated[Optional[Path], typer.Option(help="Run directory (default: runs/<scenario name>).")] = None,
    no_report: Annotated[bool, typer.Option("--no-report", help="Skip report.html and the charts.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Run a scenario: start its testnet, play its events, check its expectations, write the report."""
    from node.testnet.runner import RunnerConfig, ScenarioRun
    from node.testnet.scenario import load_scenario

    with user_errors():
        s = load_scenario(scenario)  # a malformed file stops here, before any process starts
        out_dir = run_dir or Path("runs") / s.name
        log = (lambda m: typer.echo(m, err=True)) if as_json else typer.echo
        log(f"scenario {s.name}: {s.network.peers} peers, {len(s.events)} events, {len(s.expectations)} checks; "
            f"run dir {out_dir}")
        runner = ScenarioRun(s, RunnerConfig(out_dir, report=not no_report), log)
        with graceful_signals(runner.request_stop, "stopping the scenario"):
            outcome = runner.run()
    if as_json:
        typer.echo(json.dumps({"scenario": s.name, "passed": outcome.passed, "messages": outcome.messages}))
    else:
        for m in outcome.messages:
            typer.echo(m)
        typer.echo(f"scenario {s.name}: {'PASSED' if outcome.passed else 'FAILED'}; "
                   f"{'report: ' + str(out_dir / 'report.html') if not no_report else 'no report'}")
    if not outcome.passed:
        raise typer.Exit(1)


def report(run_dir: Annotated[Path, typer.Argument(help="A run directory of `testnet run` or `testnet up`.")]) -> None:
    """Regenerate RUN_DIR/report.html and RUN_DIR/charts/*.png from what the run left there."""
    from node.testnet.report import write_report

    if not (run_dir / "summary.json").exists() and not list(run_dir.glob("peer*/metrics.jsonl")):
        typer.echo(f"error: {run_dir} is not a testnet run directory (no summary.json, no peer metrics)", err=True)
        raise typer.Exit(2)
    typer.echo(f"report written to {write_report(run_dir)}")
