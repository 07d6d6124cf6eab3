"""docker/: no engine here, so the files are checked statically: the compose file parses, has the
local testnet's services with health checks, and every hivenet command in it is a real one."""

from __future__ import annotations

import os
import re
import shlex
from pathlib import Path

import pytest
import typer
import typer.main
import yaml
from typer._click.core import Context
from typer._click.exceptions import UsageError

from node.cli.app import _register_groups, app

DOCKER = Path(__file__).resolve().parents[2] / "docker"


@pytest.fixture(scope="module")
def cli():  # type: ignore[no-untyped-def]
    _register_groups()
    return typer.main.get_command(app)


def check_hivenet_argv(cli, argv: list[str]) -> None:
    """Resolve the command path and parse its options as the CLI would, without running it."""
    assert argv[0] == "hivenet", argv
    command, ctx, args = cli, Context(cli, info_name="hivenet"), list(argv[1:])
    while hasattr(command, "list_commands"):  # a group (typer vendors click: no isinstance on click.Group)
        assert args, f"{argv}: a group needs a command"
        name = args.pop(0)
        sub = command.get_command(ctx, name)
        assert sub is not None, f"{argv}: no command {name!r}"
        command, ctx = sub, Context(sub, info_name=name, parent=ctx)
    command.make_context(ctx.info_name, args, parent=ctx.parent)  # raises UsageError on a bad option or value


def hivenet_commands(command: list[str] | str) -> list[list[str]]:
    """Every hivenet invocation of a service command (a list, or a `sh -c` script of ;/&&/|| parts)."""
    argv = shlex.split(command) if isinstance(command, str) else list(command)
    if argv[:2] != ["sh", "-c"]:
        return [argv]
    found = []
    for part in re.split(r";|&&|\|\|", argv[2]):
        words = shlex.split(part)
        while words and words[0] in ("while", "do", "exec", "then", "until"):
            words = words[1:]
        if ">" in words:  # a redirection ends the command's own arguments
            words = words[: words.index(">")]
        if not words or words[0] in ("test", "sleep", "done", "true", "umask", "head"):
            continue
        found.append(words)
    return found


def test_dockerfile_builds_cpu_torch_hivemind_wheel_and_runs_as_a_user(cli):
    text = (DOCKER / "Dockerfile").read_text()
    assert "download.pytorch.org/whl/cpu torch==2.13.0" in text and "--only-binary=:all: hivemind==1.1.12" in text
    assert re.search(r"^USER hivenet$", text, re.M)
    cmd = re.search(r'^CMD (\[.*?\])$', text, re.M | re.S).group(1).replace("\\\n", "")
    check_hivenet_argv(cli, yaml.safe_load(cmd))


def test_compose_parses_and_every_hivenet_command_is_real(cli):
    doc = yaml.safe_load((DOCKER / "compose.yml").read_text())
    services = doc["services"]
    assert set(services) == {"anvil", "mosquitto", "validator", "trainer1", "trainer2", "trainer3"}
    checked = 0
    for name, service in services.items():
        assert "healthcheck" in service, f"{name} has no health check"
        ours = "build" in service or str(service.get("image", "")).startswith("hivenet")
        if not ours:
            assert ":" in service["image"], f"{name}: pin the image tag"
            continue
        commands = hivenet_commands(service["command"]) + hivenet_commands(service["healthcheck"]["test"][1:])
        assert commands, f"{name} runs no hivenet command"
        for argv in commands:
            assert argv[0] == "hivenet", f"{name}: {argv} is not a hivenet command"
            check_hivenet_argv(cli, argv)
            checked += 1
    assert checked >= 8
    # The trainers bootstrap through trainer1, whose address they read from its status endpoint.
    for name in ("trainer2", "trainer3"):
        script = services[name]["command"][2]
        assert "hivenet status --url http://trainer1:8470 --maddrs" in script and "--initial-peers" in script
        assert "trainer1-data" not in str(services[name]["volumes"])  # no volume shared between roles
    assert "set_tcp_nodelay true" in (DOCKER / "mosquitto.conf").read_text()


def test_no_private_key_or_password_is_committed():
    """Keys and passwords are made where they are used, at first start; none lives in the repository."""
    root = DOCKER.parent
    skip = {".git", ".venv", "node_modules", "runs", "__pycache__", ".hypothesis", ".pytest_cache", "build", "dist",
            "cache", "out"}
    files = []
    for folder, dirs, names in os.walk(root):
        dirs[:] = [d for d in dirs if d not in skip and not d.endswith(".egg-info")]  # prune what git ignores
        files += [Path(folder) / name for name in names]
    offenders = [str(f.relative_to(root)) for f in files if re.search(r"(\.key|password|passwd|\.pem)$", f.name, re.I)]
    assert not offenders, offenders
    for f in files:
        if f.suffix in (".py", ".md", ".toml", ".yml", ".yaml", ".json", ".txt", ".sh", ".conf", "") \
                and "tests" not in f.relative_to(root).parts and f.stat().st_size < 1_000_000:
            assert b"PRIVATE KEY-----" not in f.read_bytes(), f


def test_the_checker_rejects_what_is_not_a_command(cli):
    for bad in (["hivenet", "node", "strat"], ["hivenet", "node", "start", "--no-such-flag"],
                ["hivenet", "doctor", "--json", "--initial-peers"]):
        with pytest.raises((AssertionError, UsageError)):
            check_hivenet_argv(cli, bad)
