"""A node's configuration: one TOML file, then ``HIVENET_*`` environment variables, then flags.

    hivenet init                          # writes hivenet.toml, every key commented
    HIVENET_TRAIN_BATCH_SIZE=8 hivenet node start --config hivenet.toml --max-epochs 5
    python -m node.config.docs            # regenerates docs/configuration.md

Each key is declared once, in ``keys`` (section, name, type, help, bounds, and the component field it
fills, whose default it reads). Generated from those declarations: the file template (``template``),
file and ``HIVENET_<SECTION>_<KEY>`` parsing and the checks (``sources``), the frozen component configs
(``build``), the flags of ``hivenet node start`` (``options``) and docs/configuration.md (``docs``).
Every value is checked before the node starts; an error names the key and where the value came from
(the file, the variable, the flag). This package and the CLI are the only places that read files and
``os.environ`` for configuration: components get frozen dataclasses.
"""

from node.config.build import NodeConfig, build, load_config
from node.config.keys import BY_DOTTED, CONFIG_ENV, DEFAULT_FILE, ENV_PREFIX, KEYS, SECTIONS, Key
from node.config.log import LogConfig
from node.config.sources import coerce, config_path, load_values, merge, read_env, read_file
from node.config.template import default_toml

__all__ = [
    "BY_DOTTED", "CONFIG_ENV", "DEFAULT_FILE", "ENV_PREFIX", "KEYS", "SECTIONS", "Key", "LogConfig", "NodeConfig",
    "build", "coerce", "config_path", "default_toml", "load_config", "load_values", "merge", "read_env", "read_file",
]
