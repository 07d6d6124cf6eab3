"""`hivenet validator start` and `status` refuse bad input with one `error:` line naming the fix, a non-zero
exit, and nothing written: no RPC URL, a chain that does not answer, no deployment file, no keystore, a
wrong password; a status URL where nothing (or a node) answers."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
from typer.testing import CliRunner

from node.cli.app import _register_groups, app
from node.identity import KeystoreConfig, NodeIdentity, save_keystore

_register_groups()
runner = CliRunner()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def setup(tmp_path: Path) -> dict[str, Path]:
    """A keystore, its password file and a deployment file naming chain 31337; nothing listens anywhere."""
    keystore = tmp_path / "v.key"
    save_keystore(NodeIdentity.generate(), keystore, "pw", KeystoreConfig(scrypt_n=2**4))
    (tmp_path / "v.pass").write_text("pw\n")
    deployment = tmp_path / "deployment.json"
    deployment.write_text(json.dumps({
        "version": 1, "chain_id": 31337, "token": "0x" + "11" * 20, "node_registry": "0x" + "22" * 20,
        "shard_registry": "0x" + "33" * 20, "ledger": "0x" + "44" * 20, "deployer": "0x" + "55" * 20, "block": 1,
        "compiler_version": "0.8.30"}))
    return {"keystore": keystore, "password": tmp_path / "v.pass", "deployment": deployment, "home": tmp_path / "home",
            "url_file": tmp_path / "status.url"}


def start(files: dict[str, Path], *extra: str, rpc: str | None = None) -> tuple[int, str]:
    args = ["validator", "start", "--validator-home", str(files["home"]), "--broker", "",
            "--status-listen", "127.0.0.1:0", "--status-url-file", str(files["url_file"]), *extra]
    if rpc is not None:
        args += ["--rpc-url", rpc]
    result = runner.invoke(app, args)
    return result.exit_code, result.output


def full(files: dict[str, Path]) -> list[str]:
    return ["--deployment", str(files["deployment"]), "--validator-keystore", str(files["keystore"]),
            "--validator-password-file", str(files["password"])]


def assert_refused(code: int, output: str, *needles: str) -> None:
    lines = [line for line in output.splitlines() if line.strip()]
    assert code != 0 and len(lines) == 1 and lines[0].startswith("error: "), output
    for needle in needles:
        assert needle in lines[0], output


def assert_nothing_written(files: dict[str, Path]) -> None:
    assert not files["home"].exists() and not files["url_file"].exists()


def test_an_unreachable_rpc_url_is_refused_naming_the_fix(setup: dict[str, Path]) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    code, output = start(setup, *full(setup), rpc=url)
    assert_refused(code, output, f"no chain answers at {url}", "--rpc-url")
    assert_nothing_written(setup)


def test_no_rpc_url_is_refused_the_embedded_chain_is_the_testnets_only(setup: dict[str, Path]) -> None:
    code, output = start(setup, *full(setup))
    assert_refused(code, output, "set --rpc-url", "hivenet testnet")
    assert_nothing_written(setup)


def test_a_missing_deployment_file_is_refused(setup: dict[str, Path]) -> None:
    missing = setup["home"].parent / "nowhere.json"
    args = full(setup)
    args[1] = str(missing)
    code, output = start(setup, *args, rpc=f"http://127.0.0.1:{free_port()}")
    assert_refused(code, output, f"no deployment file at {missing}", "hivenet ledger deploy")
    code, output = start(setup, rpc=f"http://127.0.0.1:{free_port()}")
    assert_refused(code, output, "set --deployment")
    assert_nothing_written(setup)


def test_no_keystore_or_a_wrong_password_is_refused(setup: dict[str, Path]) -> None:
    rpc = f"http://127.0.0.1:{free_port()}"
    code, output = start(setup, "--deployment", str(setup["deployment"]), rpc=rpc)
    assert_refused(code, output, "set --validator-keystore", "hivenet keys new")
    setup["password"].write_text("not the password\n")
    code, output = start(setup, *full(setup), rpc=rpc)
    assert_refused(code, output, "wrong password")
    assert_nothing_written(setup)


def test_a_bad_validator_setting_is_refused_naming_the_key(setup: dict[str, Path]) -> None:
    code, output = start(setup, *full(setup), "--validator-mode", "relax", rpc="http://127.0.0.1:1")
    assert_refused(code, output, "validator.mode must be one of settle, watch")
    assert_nothing_written(setup)


def test_status_where_no_validator_answers_names_the_command_to_start_one() -> None:
    result = runner.invoke(app, ["validator", "status", "--url", f"http://127.0.0.1:{free_port()}"])
    assert_refused(result.exit_code, result.output, "no validator answers", "hivenet validator start")


def test_the_validator_endpoint_defaults_next_to_the_nodes_and_keeps_a_chosen_address() -> None:
    from node.cli.validator_cmd import validator_http
    from node.config import load_config

    assert validator_http(load_config(None, {}, {})).listen == ("127.0.0.1", 8471)
    chosen = load_config(None, {"HIVENET_STATUS_LISTEN": "0.0.0.0:9000"}, {})
    assert validator_http(chosen).listen == ("0.0.0.0", 9000)
