"""Acceptance 5: configuration errors (unknown key, wrong type, missing file) name the key and the file;
file < environment < flags; `hivenet init` writes a file that loads back to the defaults."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from node.config import BY_DOTTED, KEYS, default_toml, load_config, load_values
from protocol.errors import ConfigError


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "node.toml"
    path.write_text(text)
    return path


def test_unknown_key_names_the_key_the_file_and_the_closest_known_key(tmp_path):
    path = _write(tmp_path, "[train]\nbatchsize = 8\n")
    with pytest.raises(ConfigError) as e:
        load_config(path, {}, {})
    assert str(path) in str(e.value) and "train.batchsize" in str(e.value) and "did you mean train.batch_size" in str(e.value)


def test_unknown_section_is_named(tmp_path):
    path = _write(tmp_path, "[trainer]\nbatch_size = 8\n")
    with pytest.raises(ConfigError, match=r"unknown section \[trainer\].*did you mean \[train\]") as e:
        load_config(path, {}, {})
    assert str(path) in str(e.value)


@pytest.mark.parametrize("line, key, shown", [
    ('batch_size = "16"', "train.batch_size", "must be an integer, not the string '16'"),
    ("fresh = 1", "train.fresh", "must be true or false"),
    ("lr = true", "train.lr", "must be a number"),
    ("batch_size = 0", "train.batch_size", "must be at least 1"),
    ('device = "tpu"', "train.device", "must be one of auto, cpu, cuda"),
])
def test_wrong_type_or_value_names_the_key_and_the_file(tmp_path, line, key, shown):
    path = _write(tmp_path, f"[train]\n{line}\n")
    with pytest.raises(ConfigError) as e:
        load_config(path, {}, {})
    message = str(e.value)
    assert f"config file {path}" in message and key in message and shown in message


def test_missing_file_names_the_file_and_how_to_create_it(tmp_path):
    path = tmp_path / "absent.toml"
    with pytest.raises(ConfigError, match="does not exist") as e:
        load_config(path, {}, {})
    assert str(path) in str(e.value) and "hivenet init" in str(e.value)


def test_invalid_toml_names_the_file(tmp_path):
    path = _write(tmp_path, "[train\n")
    with pytest.raises(ConfigError, match="is not valid TOML") as e:
        load_config(path, {}, {})
    assert str(path) in str(e.value)


def test_environment_errors_name_the_variable_and_the_key():
    with pytest.raises(ConfigError, match="environment variable HIVENET_TRAIN_BATCH_SIZE: train.batch_size must be an integer"):
        load_config(None, {"HIVENET_TRAIN_BATCH_SIZE": "many"}, {})
    with pytest.raises(ConfigError, match="unknown variable HIVENET_TELEMETRY_BROKR.*HIVENET_TELEMETRY_BROKER"):
        load_config(None, {"HIVENET_TELEMETRY_BROKR": "mqtt://x"}, {})
    # Variables of other commands' sections are theirs, not errors.
    load_config(None, {"HIVENET_SHARD_STORE": "/tmp/x", "HIVENET_CONFIG": "x.toml"}, {})


def test_bad_broker_url_names_the_key_and_the_file(tmp_path):
    path = _write(tmp_path, '[telemetry]\nbroker = "http://x"\n')
    with pytest.raises(ConfigError, match=r"telemetry\.broker.*mqtt://host:port") as e:
        load_config(path, {}, {})
    assert str(path) in str(e.value)


def test_precedence_is_defaults_then_file_then_environment_then_flags(tmp_path):
    path = _write(tmp_path, "[train]\nbatch_size = 8\nmax_epochs = 5\nlr = 0.01\n[swarm]\nrun_id = \"from-file\"\n")
    values = load_values(path, {"HIVENET_TRAIN_MAX_EPOCHS": "7", "HIVENET_TRAIN_LR": "0.02",
                                "HIVENET_SWARM_INITIAL_PEERS": "/ip4/1.2.3.4/tcp/1/p2p/A, /ip4/1.2.3.4/tcp/2/p2p/B"},
                         {"train.lr": 0.03, "train.batch_size": None})
    assert values["train.batch_size"] == 8  # file (flag not given)
    assert values["train.max_epochs"] == 7  # environment over file
    assert values["train.lr"] == 0.03  # flag over environment
    assert values["swarm.run_id"] == "from-file"
    assert values["swarm.initial_peers"] == ["/ip4/1.2.3.4/tcp/1/p2p/A", "/ip4/1.2.3.4/tcp/2/p2p/B"]
    assert values["train.threads"] == BY_DOTTED["train.threads"].default  # default
    cfg = load_config(path, {"HIVENET_TRAIN_MAX_EPOCHS": "7"}, {"telemetry.broker": ""})
    assert cfg.train().batch_size == 8 and cfg.train().max_epochs == 7 and cfg.swarm.run_id == "from-file"
    assert cfg.telemetry.broker is None  # "" turns telemetry off


def test_flag_value_errors_name_the_flag():
    with pytest.raises(ConfigError, match="flag --batch-size: train.batch_size must be at least 1"):
        load_config(None, {}, {"train.batch_size": 0})


@pytest.mark.process
def test_init_file_loads_back_to_the_defaults(tmp_path):
    path = tmp_path / "hivenet.toml"
    out = subprocess.run([sys.executable, "-m", "node.cli", "init", "--config", str(path)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert path.read_text() == default_toml()
    values = load_values(path, {}, {})
    assert values == {k.dotted: k.default for k in KEYS}
    for key in KEYS:  # every key is documented in the file, with its variable and flag
        assert key.help in path.read_text() and key.env in path.read_text()
    again = subprocess.run([sys.executable, "-m", "node.cli", "init", "--config", str(path)], capture_output=True, text=True, timeout=60)
    assert again.returncode == 2 and "exists" in again.stderr


@pytest.mark.process
def test_node_start_with_a_bad_config_exits_2_with_one_line_naming_key_and_file(tmp_path):
    path = _write(tmp_path, "[swarm]\nexpected_peers = \"three\"\n")
    out = subprocess.run([sys.executable, "-m", "node.cli", "node", "start", "--config", str(path)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and str(path) in lines[0] and "swarm.expected_peers" in lines[0]
    missing = subprocess.run([sys.executable, "-m", "node.cli", "node", "start", "--config", str(tmp_path / "nope.toml")],
                             capture_output=True, text=True, timeout=60)
    assert missing.returncode == 2 and "nope.toml does not exist" in missing.stderr
