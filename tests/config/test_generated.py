"""What is generated from the key declarations: the `hivenet init` file, docs/configuration.md and the
`hivenet node start` options; and the declarations' own rules (one default, read from its component)."""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from node.cli import doctor_cmd, init_cmd, node_cmd
from node.config import KEYS, NodeConfig, build, default_toml, load_values
from node.config.docs import DOCS_FILE, main, render
from node.config.keys import AGGREGATORS, COMPRESSIONS, Key
from tests.config.helpers import landed

runner = CliRunner()
REPO = Path(__file__).resolve().parents[2]


def _defaults() -> NodeConfig:
    return build({k.dotted: k.default for k in KEYS})


def test_hivenet_init_writes_a_file_that_loads_back_to_the_defaults(tmp_path: Path) -> None:
    app = typer.Typer()
    app.command()(init_cmd.init)
    app.command("unused")(lambda: None)  # two commands: `init` stays a subcommand, as in `hivenet init`
    path = tmp_path / "hivenet.toml"
    result = runner.invoke(app, ["init", "--config", str(path)])
    assert result.exit_code == 0, result.output
    text = path.read_text()
    assert text == default_toml()
    assert load_values(path, {}, {}) == {k.dotted: k.default for k in KEYS}
    for key in KEYS:  # each key is explained in the file, with its variable and flag
        assert key.help in text and key.env in text and key.flag in text
    again = runner.invoke(app, ["init", "--config", str(path)])
    assert again.exit_code == 2 and "exists" in again.output


def test_docs_configuration_md_is_up_to_date() -> None:
    assert DOCS_FILE == REPO / "docs" / "configuration.md"
    assert DOCS_FILE.read_text() == render(), "docs/configuration.md is stale: run python -m node.config.docs"
    assert main(["--check"]) == 0


def test_docs_list_every_key_with_its_variable_and_flag(tmp_path: Path) -> None:
    text = render()
    for key in KEYS:
        assert f"| `{key.name}` |" in text and f"`{key.env}`" in text and f"`{key.flag}`" in text
    stale = tmp_path / "configuration.md"
    stale.write_text(text.replace("Training run", "Trainig run"))
    assert main(["--check", "--out", str(stale)]) == 1
    assert main(["--out", str(stale)]) == 0 and stale.read_text() == text


def _option_names(command: object) -> set[str]:
    click_command = typer.main.get_command(command)  # type: ignore[arg-type]
    return {name for p in click_command.params for name in (*p.opts, *p.secondary_opts)}


def test_node_start_offers_every_key_as_a_flag_and_its_help_lists_them() -> None:
    app = typer.Typer()
    app.add_typer(node_cmd.app, name="node")
    names = _option_names(node_cmd.app)
    for key in KEYS:
        assert key.flag in names
        if key.kind is bool:
            assert f"--no-{key.flag[2:]}" in names
    assert {"--config", "--progress"} <= names
    assert not {"--attack", "--slowdown", "--send-delay", "--dump-rounds"} & names  # faults are the testnet's hooks
    result = runner.invoke(app, ["node", "start", "--help"], env={"COLUMNS": "250", "TERMINAL_WIDTH": "250"})
    assert result.exit_code == 0
    for key in KEYS:
        assert key.flag in result.output and key.env in result.output


def test_doctor_takes_the_flags_of_the_keys_it_checks() -> None:
    app = typer.Typer(add_completion=False)
    app.command()(doctor_cmd.doctor)
    names = _option_names(app)
    assert {"--initial-peers", "--listen", "--rpc-url", "--deployment", "--broker", "--checkpoint", "--shard-store",
            "--config", "--p2p", "--json"} == names - {"--help", "--no-p2p"}


def test_flags_variables_and_names_are_unique() -> None:
    for attribute in ("dotted", "env", "flag", "param"):
        values = [getattr(k, attribute) for k in KEYS]
        assert len(values) == len(set(values)), attribute


def test_defaults_read_from_a_component_are_that_components_defaults() -> None:
    """A built default config holds, in every field a key fills, the field's own default."""
    from node.train.config import TrainConfig
    from node.train.model import GPTConfig

    cfg = _defaults()
    own = {"swarm": cfg.swarm, "telemetry": cfg.telemetry, "http": cfg.http, "log": cfg.log, "train": TrainConfig()}
    for key in KEYS:
        head, *path = key.into.split(".")
        if head not in own:
            continue
        expected: object = own[head]
        for name in path:
            expected = getattr(expected, name)
        assert landed(cfg, key) == expected, key.dotted
    assert cfg.train().model == GPTConfig()  # the model keys declare their defaults: they must agree


def test_declared_choices_are_the_ones_the_components_accept() -> None:
    from node.swarm.codecs import COMPRESSIONS as CODECS
    from node.swarm.robust import AGGREGATORS as RULES

    assert AGGREGATORS == tuple(RULES)
    assert COMPRESSIONS == tuple(CODECS)


def test_a_default_lives_in_one_place() -> None:
    with pytest.raises(TypeError, match="the default lives in the field swarm.matchmaking_time"):
        Key("swarm", "matchmaking_time", float, "twice", "swarm.matchmaking_time", default=5.0)
    with pytest.raises(TypeError, match="swarm.run_id has no default of its own"):
        Key("swarm", "run_id", str, "none", "swarm.run_id")
    with pytest.raises(TypeError, match="SwarmConfig has no field matchmaking"):
        Key("swarm", "matchmaking", float, "typo", "swarm.matchmaking")


def _module_file(module: str) -> Path | None:
    base = REPO / Path(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.exists():
            return candidate
    return None


def _top_level_imports(path: Path) -> list[str]:
    """Modules imported when ``path`` is imported: module-level statements, not under TYPE_CHECKING."""
    names: list[str] = []
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
            names += [f"{node.module}.{a.name}" for a in node.names]
    return names


def test_the_config_layer_and_the_cli_options_import_no_torch_hivemind_or_web3() -> None:
    """`hivenet init`, `--help` and loading a config must stay fast: none of them may import torch."""
    seen: set[str] = set()
    todo = ["node.config", "node.config.options", "node.config.docs", "node.cli.node_cmd", "node.cli.doctor_cmd"]
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        seen.add(module)
        path = _module_file(module)
        if path is None:
            continue
        for name in _top_level_imports(path):
            assert name.split(".")[0] not in {"torch", "hivemind", "web3"}, f"{module} imports {name}"
            if name.startswith(("node.", "protocol.")):
                parts = name.split(".")
                todo += [".".join(parts[:i]) for i in range(2, len(parts) + 1)]
    assert "node.train.config" in seen and "node.swarm.config" in seen
