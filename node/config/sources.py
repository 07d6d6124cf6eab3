"""Where values come from: the TOML file, ``HIVENET_<SECTION>_<KEY>`` variables and flags, merged in that order.

Every value is checked against its key's declaration as it is read, so an error names the key and the
source it came from (``config file hivenet.toml``, ``environment variable HIVENET_TRAIN_LR``,
``flag --lr``).
"""

from __future__ import annotations

import difflib
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from node.config.keys import BY_DOTTED, BY_ENV, CONFIG_ENV, ENV_PREFIX, KEYS, SECTIONS, Key
from protocol.errors import ConfigError


def describe(value: Any) -> str:
    kind = {bool: "boolean", int: "integer", float: "number", str: "string", list: "array", dict: "table"}.get(
        type(value), type(value).__name__)
    return f"the {kind} {value!r}"


def expected(key: Key) -> str:
    return {int: "an integer", float: "a number", str: "a string", bool: "true or false", list: "an array of strings",
            Path: "a path (string)"}[key.kind]


def coerce(key: Key, value: Any, where: str) -> Any:
    """``value`` as ``key``'s type within its bounds, or ConfigError naming the key and ``where`` it came from."""
    bad = ConfigError(f"{where}: {key.dotted} must be {expected(key)}, not {describe(value)}")
    if key.kind is bool:
        if not isinstance(value, bool):
            raise bad
    elif key.kind is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad
    elif key.kind is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise bad
        value = float(value)
    elif key.kind is str:
        if not isinstance(value, str):
            raise bad
    elif key.kind is list:
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
            raise bad
        value = list(value)
    elif key.kind is Path:
        if isinstance(value, Path):
            pass
        elif isinstance(value, str) and value:
            value = Path(value).expanduser()
        else:
            raise bad
    if key.normalize is not None:
        value = key.normalize(value)
    if key.minimum is not None and value < key.minimum:
        raise ConfigError(f"{where}: {key.dotted} must be at least {key.minimum:g}, not {value!r}")
    if key.below is not None and value >= key.below:
        raise ConfigError(f"{where}: {key.dotted} must be below {key.below:g}, not {value!r}")
    if key.choices and value not in key.choices:
        raise ConfigError(f"{where}: {key.dotted} must be one of {', '.join(key.choices)}, not {value!r}")
    if key.form is not None:
        try:
            key.form.decode(value)
        except ConfigError as e:
            raise ConfigError(f"{where}: {key.dotted}: {e}") from None
    return value


def _unknown(name: str, known: list[str], where: str, what: str) -> ConfigError:
    close = difflib.get_close_matches(name, known, n=1)
    hint = f" (did you mean {close[0]}?)" if close else ""
    return ConfigError(f"{where}: unknown {what} {name}{hint}; known: {', '.join(known)}")


def read_file(path: Path) -> dict[str, Any]:
    """The file's values by dotted key, checked; ConfigError naming the file (and key) otherwise."""
    where = f"config file {path}"
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(f"{where} does not exist; create it with `hivenet init --config {path}` or fix the path") from None
    except IsADirectoryError:
        raise ConfigError(f"{where} is a directory, not a TOML file") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{where} is not valid TOML: {e}") from None
    values: dict[str, Any] = {}
    for section, table in data.items():
        if section not in SECTIONS:
            raise _unknown(f"[{section}]", [f"[{s}]" for s in SECTIONS], where, "section")
        if not isinstance(table, dict):
            raise ConfigError(f"{where}: {section} must be a table ([{section}]), not {describe(table)}")
        for name, value in table.items():
            key = BY_DOTTED.get(f"{section}.{name}")
            if key is None:
                raise _unknown(f"{section}.{name}", [k.dotted for k in KEYS if k.section == section], where, "key")
            values[key.dotted] = coerce(key, value, where)
    return values


def parse_env_value(key: Key, raw: str) -> Any:
    """Environment values are strings: read them as the key's type (lists are comma-separated)."""
    if key.kind is bool:
        low = raw.strip().lower()
        return {"1": True, "true": True, "yes": True, "0": False, "false": False, "no": False}.get(low, raw)
    if key.kind in (int, float):
        try:
            return int(raw) if key.kind is int else float(raw)
        except ValueError:
            return raw
    if key.kind is list:
        return [part.strip() for part in raw.split(",") if part.strip()]
    return raw


def read_env(environ: Mapping[str, str]) -> dict[str, Any]:
    """``HIVENET_<SECTION>_<KEY>`` values by dotted key; an unknown key of a known section is an error.

    Variables of other sections (``HIVENET_SHARD_STORE``, ``HIVENET_CONFIG``) belong to other commands.
    """
    values: dict[str, Any] = {}
    for name, raw in sorted(environ.items()):
        if not name.startswith(ENV_PREFIX) or name == CONFIG_ENV:
            continue
        key = BY_ENV.get(name)
        if key is None:
            section = name[len(ENV_PREFIX):].split("_", 1)[0].lower()
            if section in SECTIONS:
                raise _unknown(name, [k.env for k in KEYS if k.section == section], "environment", "variable")
            continue
        if key.kind is Path and raw == "":
            continue  # an empty path variable means "not set"
        values[key.dotted] = coerce(key, parse_env_value(key, raw), f"environment variable {name}")
    return values


def read_flags(flags: Mapping[str, Any]) -> dict[str, Any]:
    """Flag values by dotted key, checked; None (and an empty repeatable flag) means the flag was not given."""
    values: dict[str, Any] = {}
    for dotted, value in flags.items():
        if value is None or (isinstance(value, (list, tuple)) and not value):
            continue
        key = BY_DOTTED[dotted]
        values[dotted] = coerce(key, value, f"flag {key.flag}")
    return values


def merge(file_values: Mapping[str, Any], env_values: Mapping[str, Any], flags: Mapping[str, Any]) -> dict[str, Any]:
    """Defaults, then the file, then the environment, then flags (None means the flag was not given)."""
    merged = {k.dotted: k.default for k in KEYS}
    merged.update(file_values)
    merged.update(env_values)
    merged.update(read_flags(flags))
    return merged


def config_path(flag: Path | None, environ: Mapping[str, str]) -> Path | None:
    """The config file to read: the --config flag, else $HIVENET_CONFIG, else none."""
    if flag is not None:
        return flag
    env = environ.get(CONFIG_ENV)
    return Path(env).expanduser() if env else None


def load_values(path: Path | None, environ: Mapping[str, str], flags: Mapping[str, Any]) -> dict[str, Any]:
    """Merged, checked values by dotted key."""
    return merge(read_file(path) if path is not None else {}, read_env(environ), flags)
