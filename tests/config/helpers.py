"""Shared by the config tests: a sample value per key, how each source spells it, and a CLI that stops
before the daemon, handing back the config `hivenet node start` built."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from node.cli import node_cmd
from node.config import Key, NodeConfig
from node.config.template import toml_value

cli = typer.Typer()
cli.add_typer(node_cmd.app, name="node")
runner = CliRunner()


def sample(key: Key, tmp_path: Path) -> Any:
    """A valid value of ``key`` other than its default."""
    if key.kind is bool:
        return not key.default
    if key.kind is Path:
        return tmp_path / f"{key.section}-{key.name}"
    if key.kind is list:
        return ["/ip4/10.0.0.1/tcp/4001", "/ip4/10.0.0.2/tcp/4002"]
    if key.choices:
        return next(c for c in key.choices if c != key.default)
    if key.form is not None and key.form.example is not None:
        return key.form.example
    if key.kind is str:
        return f"sample-{key.name}"
    if key.below is not None:  # within [minimum, below)
        return (key.minimum or 0) + (key.below - (key.minimum or 0)) / 4
    if key.kind is int:
        return key.default * 2 or 1  # doubled, not incremented: n_embd must stay divisible by n_head
    return key.default + 0.5


def env_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(value)
    return str(value)


def flag_args(key: Key, value: Any) -> list[str]:
    if key.kind is bool:
        return [key.flag if value else f"--no-{key.flag[2:]}"]
    if key.kind is list:
        return [arg for v in value for arg in (key.flag, v)]
    return [key.flag, str(value)]


def file_text(key: Key, value: Any) -> str:
    return f"[{key.section}]\n{key.name} = {toml_value(str(value) if isinstance(value, Path) else value)}\n"


def landed(cfg: NodeConfig, key: Key) -> Any:
    """The value at ``key.into`` in the built config (``train...`` in NodeConfig.train())."""
    head, *path = key.into.split(".")
    obj = cfg.train() if head == "train" else getattr(cfg, head)
    for name in path:
        obj = getattr(obj, name)
    return obj


def start(monkeypatch: pytest.MonkeyPatch, args: list[str],
          env: dict[str, str] | None = None) -> tuple[Any, NodeConfig | None]:
    """Run `hivenet node start ARGS` up to the daemon; (the CLI result, the config it would have run with)."""
    built: list[NodeConfig] = []
    monkeypatch.setattr(node_cmd, "run_node", lambda cfg, progress, hooks: built.append(cfg))
    result = runner.invoke(cli, ["node", "start", *args], env=env)
    return result, (built[0] if built else None)
