"""docker/: no engine here, so the files are checked statically: the compose file parses, runs every role
of a network (operator, contributors, trainers, validator) with its real hivenet commands, every one of which
parses with the real CLI, and no two roles share a volume or name each other's paths.

    .venv/bin/python -m pytest tests/daemon/test_docker.py -q
"""

from __future__ import annotations

import json
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


# Values a script computes at run time ("$(cat operator.address)"), replaced by a typed stand-in per option so
# that the option is parsed as the CLI parses it; an option not listed here fails the test (add it).
RUNTIME_VALUES = {
    "--initial-peers": "/ip4/10.0.0.2/tcp/31337/p2p/QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N",
    "--manifest-creator": "0x" + "22" * 20, "--address": "0x" + "33" * 20, "--to": "0x" + "44" * 20,
    "--owner": "0x" + "55" * 20, "--ledger": "0x" + "66" * 20, "--chain-id": "31337",
}
SHELL_WORDS = ("while", "do", "exec", "then", "until", "if", "!", "else", "{")


def _script_parts(script: str) -> list[str]:
    """A `sh -c` script's simple commands: lines, then ;/&&/||/|/& parts (compose's $$ is the shell's $)."""
    script = script.replace("$$", "$").replace("\\\n", " ")
    return [part for line in script.splitlines() for part in re.split(r";|&&|\|\||\||(?<![<>])&(?!>)", line)]


def hivenet_commands(command: list[str] | str) -> list[list[str]]:
    """Every hivenet invocation of a service command (a list, or a `sh -c` / `sh -ec` script)."""
    argv = shlex.split(command) if isinstance(command, str) else list(command)
    if argv[:1] != ["sh"]:
        return [argv] if argv[:1] == ["hivenet"] else []
    found = []
    for part in _script_parts(argv[-1]):
        words = shlex.split(part)
        while words and words[0] in SHELL_WORDS:
            words = words[1:]
        for redirect in (">", "<", "2>"):
            if redirect in words:  # a redirection ends the command's own arguments
                words = words[: words.index(redirect)]
        if words[:1] == ["hivenet"]:
            found.append(words)
    return found


def with_runtime_values(argv: list[str]) -> list[str]:
    out = list(argv)
    for i, word in enumerate(out):
        if "$" in word:
            assert i > 0 and out[i - 1] in RUNTIME_VALUES, f"{argv}: no stand-in for the value of {out[i - 1]!r}"
            out[i] = RUNTIME_VALUES[out[i - 1]]
    return out


def test_dockerfile_builds_cpu_torch_hivemind_wheel_and_runs_as_a_user(cli):
    text = (DOCKER / "Dockerfile").read_text()
    assert "download.pytorch.org/whl/cpu torch==2.13.0" in text and "--only-binary=:all: hivemind==1.1.12" in text
    assert re.search(r"^USER hivenet$", text, re.M)
    cmd = re.search(r'^CMD (\[.*?\])$', text, re.M | re.S).group(1).replace("\\\n", "")
    check_hivenet_argv(cli, yaml.safe_load(cmd))


ROLES = {"anvil", "mosquitto", "operator", "contributor1", "contributor2", "trainer1", "trainer2", "trainer3",
         "validator"}
HOME = "/data"  # every role's home inside its own container


def compose() -> dict:
    return yaml.safe_load((DOCKER / "compose.yml").read_text())


def ours(service: dict) -> bool:
    return "build" in service or str(service.get("image", "")).startswith("hivenet")


def script(service: dict) -> str:
    """A role's command as one text (a `sh -c` script, or the words of a list)."""
    command = service.get("command", [])
    return command[-1] if command[:1] == ["sh"] else " ".join(command)


def mounts(service: dict) -> list[tuple[str, str]]:
    """(source, target) of each volume: a named volume's name, or a bind's resolved host path."""
    out = []
    for v in service.get("volumes", []):
        source, target = (v["source"], v["target"]) if isinstance(v, dict) else v.split(":")[:2]
        if source.startswith((".", "/", "~")):
            source = str((DOCKER / source).resolve())
        out.append((source, target))
    return out


def test_compose_runs_every_role_and_every_hivenet_command_is_real(cli):
    services = compose()["services"]
    assert set(services) == ROLES
    checked = 0
    for name, service in services.items():
        if not ours(service):
            assert ":" in service["image"], f"{name}: pin the image tag"
            assert "healthcheck" in service, f"{name} has no health check"
            continue
        health = service.get("healthcheck", {}).get("test", ["CMD"])[1:]
        commands = hivenet_commands(service["command"]) + hivenet_commands(health)
        assert commands, f"{name} runs no hivenet command"
        for argv in commands:
            check_hivenet_argv(cli, with_runtime_values(argv))
            checked += 1
    assert checked >= 25, checked


def _commands_of(name: str) -> list[list[str]]:
    return hivenet_commands(compose()["services"][name]["command"])


def _has(name: str, path: list[str], *flags: str) -> bool:
    return any(argv[1:1 + len(path)] == path and all(f in argv for f in flags) for argv in _commands_of(name))


def test_each_role_runs_its_real_commands():
    assert _has("operator", ["keys", "new"]) and _has("operator", ["ledger", "deploy"])
    for step in (["ledger", "fund"], ["ledger", "grant-validator"], ["ledger", "faucet"]):
        assert _has("operator", step), step
    assert _has("operator", ["run", "create"], "--publish", "--initial-peers", "--chain-id", "--ledger")
    for name in ("contributor1", "contributor2"):
        assert _has(name, ["shard", "add"], "--owner") and _has(name, ["shard", "register"])
        assert _has(name, ["shard", "serve"], "--run-id", "--listen")
    assert _has("contributor2", ["shard", "serve"], "--initial-peers")  # contributor1 starts the run's DHT
    for name in ("trainer1", "trainer2", "trainer3"):
        assert _has(name, ["node", "start"], "--run-id", "--manifest-from-dht", "--fetch-shards", "--initial-peers",
                    "--keystore", "--snapshot-dir", "--snapshot-cap-mb"), name
    assert _has("validator", ["validator", "start"], "--run-id", "--manifest-from-dht", "--rpc-url", "--deployment",
                "--validator-keystore")
    # Every role makes its own secrets at its first start.
    for name in ROLES - {"anvil", "mosquitto"}:
        text = script(compose()["services"][name])
        assert "head -c 32 /dev/urandom" in text and _has(name, ["keys", "new"]), name


def test_no_volume_or_bind_is_mounted_by_two_services():
    doc = compose()
    owner: dict[str, str] = {}
    for name, service in doc["services"].items():
        assert "volumes_from" not in service, name
        for source, target in mounts(service):
            assert source not in owner, f"{source} is mounted by {owner.get(source)} and {name}"
            owner[source] = name
        if ours(service):  # one named volume, its own, for its home; nothing else mounted
            assert mounts(service) == [(f"{name}-home", HOME)], f"{name}: {mounts(service)}"
    assert set(doc["volumes"]) == {f"{n}-home" for n, s in doc["services"].items() if ours(s)}


def test_roles_name_only_their_own_home_and_reach_others_over_the_network():
    services = compose()["services"]
    homes = {f"{n}-home" for n in services}
    for name, service in services.items():
        if not ours(service):
            continue
        texts = [script(service), json.dumps(service.get("entrypoint", "")), json.dumps(service.get("environment", {}))]
        for text in texts:
            # Absolute paths (not the path part of a URL or a multiaddr): only the role's own home and /dev.
            for path in re.findall(r"(?<![\w:/.$-])/[\w./-]+", text):
                assert path == HOME or path.startswith((HOME + "/", "/dev/urandom", "/ip4/")), f"{name} names {path}"
                assert "/../" not in path + "/", f"{name} names {path}"
            named = [h for h in homes if re.search(rf"(?<![\w-]){h}(?![\w-])", text)]  # not --validator-home
            assert not named, f"{name} names the volume {named}"
        # What comes from another role comes by its service name, over HTTP, from that role's public folder.
        for host, _ in re.findall(r"http://([a-z0-9]+):(\d+)/", script(service)):
            assert host in services and host != name, f"{name} fetches from {host}"


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


@pytest.fixture()
def published(tmp_path: Path):  # type: ignore[no-untyped-def]
    """A role's public folder over HTTP (a thread of this process, as `python -m http.server` in a role)."""
    import functools
    import threading
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(tmp_path))
    handler.log_message = lambda *a: None  # type: ignore[method-assign]
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield tmp_path, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _helper():  # type: ignore[no-untyped-def]
    import importlib.util

    spec = importlib.util.spec_from_file_location("compose_helper", DOCKER / "compose_helper.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_helper_fetches_what_a_role_publishes_and_refuses_what_is_malformed(published, tmp_path: Path):
    public, url = published
    helper = _helper()
    (public / "deployment.json").write_text('{"chain_id": 31337, "ledger": "0xabc"}')
    (public / "bad.json").write_text("<html>not json</html>")
    (public / "serve.jsonl").write_text('status line\n{"event": "serving", "peer_id": "QmPeer1", "maddrs": []}\n')
    out = tmp_path / "mine"
    out.mkdir()
    helper.fetch(f"{url}/deployment.json", out / "deployment.json", timeout=5)
    assert helper.field(out / "deployment.json", "chain_id") == "31337"
    assert helper.bootstrap(f"{url}/serve.jsonl", "127.0.0.1", 31337, timeout=5) == "/ip4/127.0.0.1/tcp/31337/p2p/QmPeer1"
    with pytest.raises(SystemExit, match="not JSON"):
        helper.fetch(f"{url}/bad.json", out / "bad.json", timeout=5)
    assert not (out / "bad.json").exists()  # nothing written on failure
    with pytest.raises(SystemExit, match="no 'ledger2'"):
        helper.field(out / "deployment.json", "ledger2")
    with pytest.raises(SystemExit, match="did not answer"):
        helper.fetch(f"{url}/missing.json", out / "missing.json", timeout=1.5)
