"""``hivenet node``: run one peer.

    hivenet node start --run-id demo                       # first peer of a new swarm
    hivenet node start --run-id demo --initial-peers ADDR  # join through any running peer
    hivenet node start --config hivenet.toml               # settings from `hivenet init`'s file
    hivenet node start --manifest manifest.json            # the run's settings from its signed manifest
    hivenet node start --run-id R --manifest-from-dht --initial-peers ADDR   # ... fetched from the DHT

Settings merge in this order: defaults < config file < HIVENET_<SECTION>_<KEY> < flags. The flags are
generated from the key declarations (node.config.keys); docs/configuration.md lists them all.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

from node.cli.common import graceful_signals, user_errors
from node.config.options import key_options
from node.hooks import NO_HOOKS, Hooks
from protocol.errors import ConfigError

if TYPE_CHECKING:
    from node.config import NodeConfig
    from protocol.run_manifest import SignedRunManifest

app = typer.Typer(no_args_is_help=True, help="Run a node (one training peer).")


@app.command()
@key_options()
def start(
    ctx: typer.Context,
    flags: dict[str, Any],
    config: Annotated[Optional[Path], typer.Option(help="TOML config file (see `hivenet init`); default: $HIVENET_CONFIG.")] = None,
    progress: Annotated[bool, typer.Option(help="Show a live progress line (off with --log-json).")] = True,
) -> None:
    """Run one training peer in the foreground until --max-epochs or Ctrl-C (checkpoints on both).

    The first SIGINT/SIGTERM stops gracefully (checkpoint, flush, leave; exit 0); a second one forces.
    Every setting below is also a key of the config file and a HIVENET_<SECTION>_<KEY> variable.
    """
    with user_errors():
        from node.config import config_path, load_config

        cfg = load_config(config_path(config, os.environ), os.environ, flags)
        # Hooks (node.hooks) come only from a caller that invokes this command in-process with a context object:
        # the testnet's peer entry point (node.cli.testnet_peer). A user's command line cannot set them.
        hooks = ctx.obj.get("hooks", NO_HOOKS) if isinstance(ctx.obj, dict) else NO_HOOKS
        run_node(cfg, progress, hooks)


def run_node(cfg: NodeConfig, progress: bool, hooks: Hooks = NO_HOOKS) -> None:
    """Set up logging and run the daemon in the foreground with graceful signal handling."""
    from node.daemon import Daemon
    from node.logfmt import setup_logging

    setup_logging(cfg.log.level, str(cfg.log.file) if cfg.log.file else None, cfg.log.json)
    cfg, manifest = join_run(cfg, os.environ)
    if progress and not cfg.log.json:
        from node.cli.progress import PeerProgress

        display = PeerProgress()
        daemon = Daemon(cfg, on_status=display.update, hooks=hooks, manifest=manifest)
        with display, graceful_signals(daemon.request_stop):
            daemon.run()
    else:
        daemon = Daemon(cfg, hooks=hooks, manifest=manifest)
        with graceful_signals(daemon.request_stop):
            daemon.run()


def join_run(cfg: NodeConfig, environ: Mapping[str, str]) -> tuple[NodeConfig, SignedRunManifest | None]:
    """``cfg`` with the run manifest's settings applied, and the manifest; ``cfg`` as is when none is asked for.

    The manifest comes from ``[run] manifest`` (a file) or, with ``[run] manifest_from_dht``, from the DHT
    under the run id. A setting the user gave that contradicts it is a ConfigError naming both values.
    """
    from node.config.build import assemble, build, fields_of
    from node.run.config import RunConfig

    run: RunConfig = assemble(RunConfig, fields_of(cfg.values, "run"))
    if not run.wants_manifest:
        return cfg, None
    from node.run.apply import manifest_values
    from node.run.resolve import fetch_manifest, load_manifest_file

    if run.manifest is not None and run.manifest_from_dht:
        raise ConfigError("give the run manifest one way: --manifest FILE or --manifest-from-dht, not both")
    explicit = explicit_settings(cfg, environ)
    if run.manifest is not None:
        signed = load_manifest_file(run.manifest, run.manifest_creator)
    else:
        if "swarm.run_id" not in explicit:
            raise ConfigError("--manifest-from-dht fetches the manifest of --run-id: name the run to join")
        signed = fetch_manifest(cfg.swarm.run_id, cfg.swarm.initial_peers, run.manifest_timeout, run.manifest_creator)
    return build(manifest_values(signed.manifest, cfg.values, explicit), cfg.file), signed


def explicit_settings(cfg: NodeConfig, environ: Mapping[str, str]) -> dict[str, str]:
    """Where the user set each key that was set ("flag --lr", "environment variable ...", "config file ...").

    A flag is told apart by its value: one that repeats the value the file, variable or default gave
    changes nothing, so it cannot contradict anything either.
    """
    from node.config.keys import BY_DOTTED
    from node.config.sources import merge, read_env, read_file

    file_values = read_file(cfg.file) if cfg.file is not None else {}
    env_values = read_env(environ)
    before_flags = merge(file_values, env_values, {})
    out = {}
    for dotted, value in cfg.values.items():
        if value != before_flags[dotted]:
            out[dotted] = f"flag {BY_DOTTED[dotted].flag}"
        elif dotted in env_values:
            out[dotted] = f"environment variable {BY_DOTTED[dotted].env}"
        elif dotted in file_values:
            out[dotted] = f"config file {cfg.file}"
    return out
