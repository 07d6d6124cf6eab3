"""`hivenet run create|show` and `hivenet node start --manifest` in-process: the settings a node runs with come
from the manifest, a contradicting setting or a forged manifest is one `error:` line, exit 2, nothing written.

    .venv/bin/python -m pytest tests/run/test_run_cli.py -q
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from node.identity import NodeIdentity
from protocol.run_manifest import parse_signed_manifest, sign_manifest
from tests.run.conftest import create, hivenet

Creator = tuple[Path, Path, NodeIdentity]


def error_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("error:")]


# -- run create / show -------------------------------------------------------------------------------------------


def test_create_writes_a_manifest_signed_by_the_keystore_with_the_settings_given(tmp_path: Path, creator: Creator) -> None:
    path = create(tmp_path, creator, "--max-epochs", "7", "--mode", "diloco", "--inner-steps", "9", "--n-layer", "2",
                  "--chain-id", "31337", "--ledger", "0x" + "AB" * 20, "--receipt-probability", "0.25")
    signed = parse_signed_manifest(path.read_bytes())
    m = signed.manifest
    assert signed.creator == creator[2].address.lower()
    assert (m.run_id, m.schedule.max_epochs, m.mode, m.model.n_layer, m.receipt_probability) == ("r1", 7, "diloco", 2, 0.25)
    assert m.diloco is not None and m.diloco.inner_steps == 9
    assert m.chain is not None and (m.chain.chain_id, m.chain.ledger) == (31337, "0x" + "ab" * 20)
    assert m.batch_size == 16 and m.model.n_head == 4  # not given: a node's defaults


def test_show_verifies_a_file_and_prints_it_as_json(tmp_path: Path, creator: Creator) -> None:
    path = create(tmp_path, creator, "--max-epochs", "3")
    result = hivenet("run", "show", "--manifest", str(path), "--json")
    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)
    assert shown["manifest"]["schedule"]["max_epochs"] == 3
    assert shown["content_id"] == parse_signed_manifest(path.read_bytes()).content_id


@pytest.mark.parametrize("settings, reason", [
    (["--n-head", "3"], "n_embd 256 is not divisible by n_head 3"),
    (["--mode", "async"], "mode"),
    (["--corpus", "shards"], "at least one shard id"),
    (["--chain-id", "1"], "chain.ledger"),
])
def test_create_with_bad_settings_writes_nothing(tmp_path: Path, creator: Creator, settings: list[str], reason: str) -> None:
    keystore, password, _ = creator
    out = tmp_path / "m.json"
    result = hivenet("run", "create", "--run-id", "r1", "--keystore", str(keystore), "--password-file", str(password),
                     "--out", str(out), *settings)
    assert result.exit_code == 2
    assert len(error_lines(result.output)) == 1 and reason in result.output
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["creator.key", "creator.pw"]


def test_create_refuses_a_wrong_password_and_an_existing_file_writing_nothing(tmp_path: Path, creator: Creator) -> None:
    keystore, _, _ = creator
    wrong = tmp_path / "wrong.pw"
    wrong.write_text("nope\n")
    out = tmp_path / "m.json"
    result = hivenet("run", "create", "--run-id", "r1", "--keystore", str(keystore), "--password-file", str(wrong),
                     "--out", str(out))
    assert result.exit_code == 2 and "wrong password" in result.output and not out.exists()
    out.write_text("keep me")
    result = hivenet("run", "create", "--run-id", "r1", "--keystore", str(keystore), "--password-file", str(wrong),
                     "--out", str(out))
    assert result.exit_code == 2 and "--force" in result.output and out.read_text() == "keep me"


def test_show_refuses_a_file_changed_after_signing(tmp_path: Path, creator: Creator) -> None:
    path = create(tmp_path, creator)
    envelope = json.loads(path.read_text())
    envelope["manifest"]["schedule"]["max_epochs"] = 1000
    path.write_text(json.dumps(envelope))
    result = hivenet("run", "show", "--manifest", str(path))
    assert result.exit_code == 2
    assert error_lines(result.output) == [line for line in result.output.splitlines() if line]
    assert "hashes to" in result.output and "fetch it again from its creator" in result.output


def test_show_refuses_a_manifest_of_another_creator_than_the_one_asked_for(tmp_path: Path, creator: Creator) -> None:
    path = create(tmp_path, creator)
    result = hivenet("run", "show", "--manifest", str(path), "--creator", "0x" + "11" * 20)
    assert result.exit_code == 2 and "not by the expected creator 0x1111" in result.output


@pytest.mark.parametrize("args, reason", [
    (["run", "show"], "give --run-id"),
    (["run", "show", "--run-id", "r1"], "needs --initial-peers"),
    (["run", "publish", "--manifest", "m.json"], "needs --initial-peers"),
])
def test_commands_missing_where_to_look_say_what_to_add(args: list[str], reason: str) -> None:
    result = hivenet(*args)
    assert result.exit_code == 2 and reason in result.output


# -- node start --manifest ---------------------------------------------------------------------------------------


class FakeDaemon:
    """Stands in for node.daemon.Daemon: keeps what `node start` would run with."""

    started: list[FakeDaemon] = []

    def __init__(self, cfg: Any, on_status: Any = None, hooks: Any = None, manifest: Any = None) -> None:
        self.cfg, self.manifest = cfg, manifest
        FakeDaemon.started.append(self)

    def request_stop(self) -> None:
        pass

    def run(self) -> None:
        pass


@pytest.fixture
def node_start(monkeypatch: pytest.MonkeyPatch) -> Any:
    import node.daemon
    import node.logfmt

    FakeDaemon.started = []
    monkeypatch.setattr(node.daemon, "Daemon", FakeDaemon)
    monkeypatch.setattr(node.logfmt, "setup_logging", lambda *a, **k: None)

    def start(*args: str, env: dict[str, str] | None = None) -> tuple[Any, FakeDaemon | None]:
        result = hivenet("node", "start", "--no-progress", *args, env=env)
        return result, (FakeDaemon.started[-1] if FakeDaemon.started else None)

    return start


def test_a_node_takes_its_settings_from_the_manifest(tmp_path: Path, creator: Creator, node_start: Any) -> None:
    path = create(tmp_path, creator, "--max-epochs", "7", "--batch-size", "4", "--n-layer", "2",
                  "--n-head", "2", "--n-embd", "64", "--warmup-epochs", "1", "--mode", "diloco", "--inner-steps", "5", run_id="r2")
    result, daemon = node_start("--manifest", str(path), "--batch-size", "4")  # agreeing with it is fine
    assert result.exit_code == 0, result.output
    assert daemon is not None and daemon.manifest is not None
    cfg = daemon.cfg
    assert cfg.swarm.run_id == "r2" and cfg.telemetry.run_id == "r2"
    train = cfg.train()
    assert (train.max_epochs, train.batch_size, train.mode, train.diloco.inner_steps) == (7, 4, "diloco", 5)
    assert (train.model.n_layer, train.model.n_embd) == (2, 64)
    from node.run.apply import apply_to_train

    applied = apply_to_train(train, daemon.manifest.manifest)  # what the daemon does with the key-less fields
    assert (applied.model.n_head, applied.warmup_epochs) == (2, 1)


@pytest.mark.parametrize("args, env, named", [
    (["--batch-size", "8"], None, "flag --batch-size sets train.batch_size = 8, the manifest 16"),
    ([], {"HIVENET_TRAIN_MAX_EPOCHS": "3"}, "environment variable HIVENET_TRAIN_MAX_EPOCHS sets train.max_epochs = 3"),
    (["--run-id", "other"], None, "flag --run-id sets swarm.run_id = 'other', the manifest 'r1'"),
    (["--mode", "diloco"], None, "flag --mode sets train.mode = 'diloco', the manifest 'sync'"),
])
def test_a_setting_that_contradicts_the_manifest_is_refused_naming_both(
        tmp_path: Path, creator: Creator, node_start: Any, args: list[str], env: dict[str, str] | None,
        named: str) -> None:
    path = create(tmp_path, creator)
    result, daemon = node_start("--manifest", str(path), *args, env=env)
    assert result.exit_code == 2 and daemon is None
    assert len(error_lines(result.output)) == 1 and named in result.output


def test_a_config_file_value_that_contradicts_the_manifest_names_the_file(tmp_path: Path, creator: Creator,
                                                                           node_start: Any) -> None:
    path = create(tmp_path, creator)
    config = tmp_path / "node.toml"
    config.write_text(f'[train]\nlr = 0.5\n[run]\nmanifest = "{path}"\n')
    result, daemon = node_start("--config", str(config))
    assert result.exit_code == 2 and daemon is None
    assert f"config file {config} sets train.lr = 0.5, the manifest 0.001" in result.output


def test_a_forged_manifest_stops_the_node_before_it_starts(tmp_path: Path, creator: Creator, node_start: Any) -> None:
    path = create(tmp_path, creator)
    other = NodeIdentity.generate()
    signed = parse_signed_manifest(path.read_bytes())
    forged = {**sign_manifest(signed.manifest, other.eth_private_key).to_dict(), "creator": signed.creator}
    path.write_text(json.dumps(forged))
    result, daemon = node_start("--manifest", str(path))
    assert result.exit_code == 2 and daemon is None and "the signature is not" in result.output


@pytest.mark.parametrize("args, reason", [
    (["--manifest", "m.json", "--manifest-from-dht"], "not both"),
    (["--manifest-from-dht"], "name the run to join"),
    (["--manifest-from-dht", "--run-id", "r1"], "needs --initial-peers"),
    (["--manifest", "missing.json"], "does not exist"),
    (["--manifest-creator", "0x12"], "not an Ethereum address"),
])
def test_asking_for_a_manifest_the_wrong_way_says_how(node_start: Any, args: list[str], reason: str) -> None:
    result, daemon = node_start(*args)
    assert result.exit_code == 2 and daemon is None and reason in result.output


def test_the_corpus_of_the_manifest_must_match_the_node_s_shard_store(tmp_path: Path, creator: Creator,
                                                                      node_start: Any) -> None:
    demo = create(tmp_path, creator, out="demo.json")
    result, _ = node_start("--manifest", str(demo), "--shard-store", str(tmp_path / "store"))
    assert result.exit_code == 2 and "the manifest trains on the demo corpus" in result.output
    vetted = create(tmp_path, creator, "--corpus", "vetted", out="vetted.json")
    result, _ = node_start("--manifest", str(vetted))
    assert result.exit_code == 2 and "pass --shard-store" in result.output


def test_without_a_manifest_a_node_runs_with_its_own_settings(node_start: Any) -> None:
    result, daemon = node_start("--batch-size", "8")
    assert result.exit_code == 0, result.output
    assert daemon is not None and daemon.manifest is None and daemon.cfg.train().batch_size == 8


def test_a_held_out_split_other_than_the_manifest_s_is_refused(tmp_path: Path, creator: Creator) -> None:
    from node.run.apply import check_corpus
    from node.train.config import TrainConfig
    from protocol.errors import ConfigError

    manifest = parse_signed_manifest(create(tmp_path, creator).read_bytes()).manifest
    check_corpus(TrainConfig(), manifest)  # the node's own split: accepted
    other = manifest.model_copy(update={"corpus": manifest.corpus.model_copy(update={"held_out_sha256": "0" * 64})})
    with pytest.raises(ConfigError, match="held-out split hashes to .* says 0000"):
        check_corpus(TrainConfig(), other)


def test_the_daemon_trains_the_manifest_s_model_and_refuses_a_wrong_corpus(tmp_path: Path, creator: Creator,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    import node.sync
    from node.config import load_config
    from node.daemon import Daemon
    from protocol.errors import ConfigError

    class Built(Exception):
        """Raised by the stand-in synchronizer: the trainer's config is what the daemon would train with."""

    seen: list[Any] = []

    def capture(swarm: Any, train: Any, hooks: Any) -> Any:
        seen.append(train)
        raise Built

    monkeypatch.setattr(node.sync, "make_synchronizer", capture)
    signed = parse_signed_manifest(create(tmp_path, creator, "--n-head", "8", "--warmup-epochs", "0").read_bytes())
    cfg = load_config(None, {}, {"telemetry.broker": "", "status.listen": ""})
    with pytest.raises(Built):
        Daemon(cfg, manifest=signed).run()
    assert (seen[0].model.n_head, seen[0].warmup_epochs) == (8, 0)
    other = signed.manifest.model_copy(update={"corpus": signed.manifest.corpus.model_copy(
        update={"held_out_sha256": "0" * 64})})
    with pytest.raises(ConfigError, match="held-out split"):
        Daemon(cfg, manifest=type(signed)(other, signed.content_id, signed.creator, signed.signature)).run()
    assert len(seen) == 1  # refused before the synchronizer (the swarm) was touched
