"""DiLoCo settings through the CLI and config: bad values are refused with the key's name, before any work."""

import pytest
from typer.testing import CliRunner

from node.cli.app import _register_groups, app
from node.config import load_config
from protocol.errors import ConfigError

_register_groups()
runner = CliRunner()


def test_testnet_refuses_validators_in_diloco_mode_and_diloco_flags_in_sync_mode(tmp_path):
    out = runner.invoke(app, ["testnet", "up", "--mode", "diloco", "--validators", "1", "--run-dir", str(tmp_path)])
    assert out.exit_code == 2 and "receipts" in out.output
    out = runner.invoke(app, ["testnet", "up", "--inner-steps", "50", "--run-dir", str(tmp_path)])
    assert out.exit_code == 2 and "--mode diloco" in out.output
    assert not any(tmp_path.iterdir())  # refused before anything started


def test_config_keys_reach_the_train_config_and_bad_values_name_the_key(tmp_path):
    cfg = load_config(None, {"HIVENET_TRAIN_MODE": "diloco"}, {"train.inner_steps": 40, "train.compression": "uint8"})
    train = cfg.train()
    diloco = train.diloco
    assert (train.mode, diloco.inner_steps, diloco.compression, diloco.outer_lr, diloco.outer_momentum) == \
        ("diloco", 40, "uint8", 0.7, 0.9)
    path = tmp_path / "hivenet.toml"
    path.write_text('[train]\nmode = "diloco"\ncompression = "int4"\n')
    with pytest.raises(ConfigError, match="train.compression") as refused:
        load_config(path, {}, {})
    assert str(path) in str(refused.value)
