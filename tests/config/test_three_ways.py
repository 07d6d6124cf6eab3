"""Every key is settable by the config file, its HIVENET_<SECTION>_<KEY> variable and its flag, through
`hivenet node start` itself; the later source wins; a bad value is refused naming the key and the source."""

from __future__ import annotations

from pathlib import Path

import pytest

from node.config import KEYS, Key
from tests.config.helpers import env_text, file_text, flag_args, landed, sample, start

IDS = [k.dotted for k in KEYS]


@pytest.mark.parametrize("key", KEYS, ids=IDS)
def test_every_key_is_settable_by_file_environment_and_flag(key: Key, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    value = sample(key, tmp_path)
    assert value != key.default
    expected = key.decode(value)
    path = tmp_path / "node.toml"
    path.write_text(file_text(key, value))
    ways = {
        "file": start(monkeypatch, ["--config", str(path)]),
        "env": start(monkeypatch, [], env={key.env: env_text(value)}),
        "flag": start(monkeypatch, flag_args(key, value)),
    }
    for way, (result, cfg) in ways.items():
        assert result.exit_code == 0, f"{way}: {result.output}"
        assert cfg is not None and landed(cfg, key) == expected, way
        assert cfg.values[key.dotted] == value, way


def test_later_sources_win_defaults_file_environment_flags(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "node.toml"
    path.write_text("[swarm]\nmin_group_size = 3\naggregator = \"median\"\nworker_momentum = 0.5\n")
    env = {"HIVENET_SWARM_AGGREGATOR": "mean", "HIVENET_SWARM_WORKER_MOMENTUM": "0.25"}
    result, cfg = start(monkeypatch, ["--config", str(path), "--worker-momentum", "0.125"], env=env)
    assert result.exit_code == 0, result.output
    assert cfg is not None
    assert cfg.swarm.min_group_size == 3  # file over default
    assert cfg.swarm.aggregator == "mean"  # environment over file
    assert cfg.swarm.worker_momentum == 0.125  # flag over environment
    assert cfg.swarm.expected_peers == 1  # default


def test_the_config_file_may_come_from_hivenet_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "node.toml"
    path.write_text("[train]\ninner_steps = 7\n")
    result, cfg = start(monkeypatch, [], env={"HIVENET_CONFIG": str(path)})
    assert result.exit_code == 0, result.output
    assert cfg is not None and cfg.train().diloco.inner_steps == 7 and cfg.file == path


def _out_of_bounds(key: Key) -> list[object]:
    """Values of the key's type that its bounds, choices or format refuse."""
    bad: list[object] = []
    if key.minimum is not None:
        bad.append(key.minimum - 1 if key.kind is int else key.minimum - 0.5)
    if key.below is not None:
        bad.append(key.below)
    if key.choices:
        bad.append("no-such-choice")
    if key.dotted == "telemetry.broker":
        bad.append("http://broker.lan")
    if key.dotted == "status.listen":
        bad.append("no-port")
    return bad


BOUNDED = [(k, v) for k in KEYS for v in _out_of_bounds(k)]


@pytest.mark.parametrize("key, value", BOUNDED, ids=[f"{k.dotted}={v}" for k, v in BOUNDED])
def test_out_of_bounds_values_are_refused_naming_the_key_and_the_source(key: Key, value: object, tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "node.toml"
    path.write_text(file_text(key, value))
    ways = {
        f"config file {path}": start(monkeypatch, ["--config", str(path)]),
        f"environment variable {key.env}": start(monkeypatch, [], env={key.env: env_text(value)}),
        f"flag {key.flag}": start(monkeypatch, flag_args(key, value)),
    }
    for source, (result, cfg) in ways.items():
        assert result.exit_code == 2 and cfg is None, source
        assert f"error: {source}: {key.dotted}" in result.output, result.output


def _wrong_type(key: Key) -> object:
    return {bool: "yes please", int: "many", float: "lots", str: 5, list: 5, Path: 5}[key.kind]


@pytest.mark.parametrize("key", KEYS, ids=IDS)
def test_values_of_the_wrong_type_are_refused_naming_the_key_and_the_source(key: Key, tmp_path: Path,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    value = _wrong_type(key)
    path = tmp_path / "node.toml"
    path.write_text(file_text(key, value))
    result, cfg = start(monkeypatch, ["--config", str(path)])
    assert result.exit_code == 2 and cfg is None
    assert f"error: config file {path}: {key.dotted} must be" in result.output
    if key.kind in (bool, int, float):  # a variable is text: only these can be of the wrong type
        result, cfg = start(monkeypatch, [], env={key.env: str(value)})
        assert result.exit_code == 2 and cfg is None
        assert f"error: environment variable {key.env}: {key.dotted} must be" in result.output
        result, cfg = start(monkeypatch, [key.flag if key.kind is not bool else f"{key.flag}={value}", str(value)])
        assert result.exit_code == 2 and cfg is None and key.flag in result.output  # the option parser's refusal


def test_log_level_is_read_in_any_case_from_every_source(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "node.toml"
    path.write_text('[log]\nlevel = "debug"\n')
    levels = [cfg.log.level if cfg else None for _, cfg in (
        start(monkeypatch, ["--config", str(path)]),
        start(monkeypatch, [], env={"HIVENET_LOG_LEVEL": "warning"}),
        start(monkeypatch, ["--log-level", "error"]),
    )]
    assert levels == ["DEBUG", "WARNING", "ERROR"]
