"""``hivenet rewards show|claim``: the tree comes from exactly one source, refused before anything is read.

    .venv/bin/python -m pytest tests/rewards/test_cli_sources.py -q
"""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from node.cli.app import _register_groups, app

_register_groups()
runner = CliRunner()


@pytest.mark.parametrize("command", ["show", "claim"])
@pytest.mark.parametrize("source, message", [
    ([], "either --run-id"),
    (["--run-id", "r", "--rewards-file", "rewards-1.json"], "either --run-id"),
    (["--run-id", "r"], "needs --initial-peers"),
])
def test_a_missing_or_double_source_is_one_error_line(tmp_path: Path, command: str, source: list[str],
                                                      message: str) -> None:
    keystore = tmp_path / "node.key"  # absent: the source is checked before the keystore is opened
    result = runner.invoke(app, ["rewards", command, "--rpc-url", "http://127.0.0.1:9", *source,
                                 "--keystore", str(keystore)])
    assert result.exit_code == 2
    assert [line for line in result.output.splitlines() if line.startswith("error:")] == [
        line for line in result.output.splitlines() if line.strip()]
    assert message in result.output and not any(tmp_path.iterdir())
