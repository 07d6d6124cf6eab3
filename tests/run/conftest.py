"""Shared by the run-manifest tests: a keystore, the `hivenet` app in-process, a manifest file made by the CLI."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from node.cli import app as app_module
from node.identity import KeystoreConfig, NodeIdentity, save_keystore

runner = CliRunner()
app_module._register_groups()
APP = app_module.app
CHEAP = KeystoreConfig(scrypt_n=2**12)  # a keystore that opens in milliseconds


def hivenet(*args: str, env: dict[str, str] | None = None) -> Any:
    """`hivenet ARGS` in this process; the result has exit_code and output (stdout and stderr)."""
    return runner.invoke(APP, list(args), env=env)


def make_keystore(directory: Path, name: str = "creator") -> tuple[Path, Path, NodeIdentity]:
    identity = NodeIdentity.generate()
    keystore, password = directory / f"{name}.key", directory / f"{name}.pw"
    save_keystore(identity, keystore, "secret", CHEAP)
    password.write_text("secret\n")
    return keystore, password, identity


@pytest.fixture
def creator(tmp_path: Path) -> tuple[Path, Path, NodeIdentity]:
    return make_keystore(tmp_path)


def create(tmp_path: Path, creator: tuple[Path, Path, NodeIdentity], *settings: str, out: str = "manifest.json",
           run_id: str = "r1") -> Path:
    keystore, password, _ = creator
    path = tmp_path / out
    result = hivenet("run", "create", "--run-id", run_id, "--keystore", str(keystore), "--password-file",
                     str(password), "--out", str(path), *settings)
    assert result.exit_code == 0, result.output
    return path
