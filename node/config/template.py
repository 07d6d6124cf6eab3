"""The file `hivenet init` writes: every key with its default, why, variable and flag; unset paths commented out.

    hivenet init --config hivenet.toml
"""

from __future__ import annotations

from typing import Any

from node.config.keys import KEYS, SECTIONS, Key


def toml_value(value: Any) -> str:
    """``value`` as a TOML literal (booleans, numbers, strings and arrays of strings)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def constraint(key: Key) -> str:
    """The key's bounds or choices in words ("" when it has none)."""
    parts = []
    if key.choices:
        parts.append("one of " + ", ".join(key.choices))
    if key.minimum is not None:
        parts.append(f">= {key.minimum:g}")
    if key.below is not None:
        parts.append(f"< {key.below:g}")
    return "; ".join(parts)


def default_toml() -> str:
    """The commented default configuration file."""
    lines = [
        "# hivenet node configuration. Precedence: this file < HIVENET_<SECTION>_<KEY> variables < flags.",
        "# Start a node with: hivenet node start --config <this file>",
    ]
    for section in SECTIONS:
        lines += ["", f"[{section}]"]
        for key in (k for k in KEYS if k.section == section):
            limits = constraint(key)
            lines.append(f"# {key.help}{f' ({limits})' if limits else ''}  (env {key.env}, flag {key.flag})")
            if key.default is None:
                lines.append(f'# {key.name} = "path/to/{key.name}"  (unset by default)')
            else:
                lines.append(f"{key.name} = {toml_value(key.default)}")
    return "\n".join(lines) + "\n"
