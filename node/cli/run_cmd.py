"""``hivenet run``: create, publish and show a run's signed manifest.

    hivenet run create --run-id demo --keystore node.key --password-file pw --max-epochs 20 --out manifest.json
    hivenet run publish --manifest manifest.json --initial-peers /ip4/.../p2p/...
    hivenet run show --run-id demo --initial-peers /ip4/.../p2p/... [--json]
    hivenet run show --manifest manifest.json                      # verify a file

A node joins with ``hivenet node start --manifest manifest.json`` or ``--run-id demo --manifest-from-dht``.
Every manifest read (file or DHT) is verified: it must hash to its content id and be signed by its creator.
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

from node.cli.common import user_errors
from node.cli.keys_cmd import KeystoreOpt, PasswordFileOpt, unlock
from protocol.errors import ConfigError

if TYPE_CHECKING:
    from protocol.run_manifest import SignedRunManifest

app = typer.Typer(no_args_is_help=True, help="Create, publish and show a run's signed manifest.")

InitialPeersOpt = Annotated[list[str], typer.Option("--initial-peers", help="Multiaddr of any peer of the run. Repeatable.")]
TimeoutOpt = Annotated[float, typer.Option(help="Seconds to wait for the DHT.", min=0)]
TtlOpt = Annotated[float, typer.Option(help="Seconds the DHT keeps the record; publish again before it runs out.", min=1)]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]
DEFAULT_TTL_S = 7 * 86400.0  # a week: a run's manifest is read by every peer that joins, for the whole run
SETTINGS = "run settings (default: a node's defaults)"


def _opt(help: str, *decls: str) -> Any:
    return typer.Option(*decls, help=help, rich_help_panel=SETTINGS, show_default=False)


@app.command()
def create(
    run_id: Annotated[str, typer.Option("--run-id", help="The run this manifest defines.")],
    out: Annotated[Path, typer.Option("--out", help="Where to write the signed manifest (JSON).")],
    keystore: KeystoreOpt = Path("node.key"),
    password_file: PasswordFileOpt = None,
    force: Annotated[bool, typer.Option(help="Overwrite --out if it exists.")] = False,
    n_layer: Annotated[Optional[int], _opt("Transformer blocks.")] = None,
    n_head: Annotated[Optional[int], _opt("Attention heads (must divide --n-embd).")] = None,
    n_embd: Annotated[Optional[int], _opt("Model width.")] = None,
    block_size: Annotated[Optional[int], _opt("Context length in bytes.")] = None,
    batch_size: Annotated[Optional[int], _opt("Samples per local step.")] = None,
    target_batch_size: Annotated[Optional[int], _opt("Samples the swarm accumulates per epoch.")] = None,
    max_epochs: Annotated[Optional[int], _opt("Collaborative epochs of the run.")] = None,
    lr: Annotated[Optional[float], _opt("Peak learning rate.")] = None,
    warmup_epochs: Annotated[Optional[int], _opt("Epochs of linear warm-up.")] = None,
    mode: Annotated[Optional[str], _opt("sync or diloco.")] = None,
    inner_steps: Annotated[Optional[int], _opt("diloco: local steps per round.")] = None,
    inner_warmup_steps: Annotated[Optional[int], _opt("diloco: warm-up steps of the inner lr.")] = None,
    outer_lr: Annotated[Optional[float], _opt("diloco: outer learning rate.")] = None,
    outer_momentum: Annotated[Optional[float], _opt("diloco: outer Nesterov momentum.")] = None,
    overlap: Annotated[Optional[bool], _opt("diloco: average a round while the next computes.", "--overlap/--no-overlap")] = None,
    compression: Annotated[Optional[str], _opt("diloco: none, float16 or uint8.")] = None,
    error_feedback: Annotated[Optional[bool], _opt("diloco: carry what compression dropped.",
                                                   "--error-feedback/--no-error-feedback")] = None,
    corpus: Annotated[Optional[str], _opt("demo, vetted (the shards vetted for the run) or shards (--shard).")] = None,
    shard: Annotated[Optional[list[str]], _opt("A shard id the run trains on (corpus 'shards'). Repeatable.")] = None,
    receipt_probability: Annotated[Optional[float], _opt("Share of receipts validators recompute.")] = None,
    compute_bps: Annotated[Optional[int], _opt("Share of each epoch's rewards for compute, in basis points.")] = None,
    chain_id: Annotated[Optional[int], _opt("Chain id of the run's ledger (with --ledger).")] = None,
    ledger: Annotated[Optional[str], _opt("ContributionLedger address (with --chain-id).")] = None,
    publish: Annotated[bool, typer.Option(help="Also publish it in the DHT (needs --initial-peers).")] = False,
    initial_peers: InitialPeersOpt = [],  # noqa: B006  (typer reads the default, never mutates it)
    ttl: TtlOpt = DEFAULT_TTL_S,
    timeout: TimeoutOpt = 15.0,
    as_json: JsonOpt = False,
) -> None:
    """Write a run's manifest, signed by the keystore's account; with --publish also store it in the DHT.

    Settings not given take the values a node uses by default. Nothing is written unless every step
    (checks, signing, publishing) succeeded.
    """
    with user_errors():
        from node.run.apply import held_out_sha256
        from node.run.create import new_manifest
        from protocol.run_manifest import sign_manifest

        if out.exists() and not force:
            raise ConfigError(f"{out} exists; pass --force to overwrite it or choose another --out")
        if publish and not initial_peers:
            raise ConfigError("--publish needs --initial-peers (the address of a running peer of the run)")
        chain = {"chain_id": chain_id, "ledger": ledger} if chain_id is not None or ledger is not None else {}
        overrides = {
            "model.n_layer": n_layer, "model.n_head": n_head, "model.n_embd": n_embd, "model.block_size": block_size,
            "batch_size": batch_size, "target_batch_size": target_batch_size, "schedule.max_epochs": max_epochs,
            "schedule.lr": lr, "schedule.warmup_epochs": warmup_epochs, "mode": mode,
            "diloco.inner_steps": inner_steps, "diloco.inner_warmup_steps": inner_warmup_steps,
            "diloco.outer_lr": outer_lr, "diloco.outer_momentum": outer_momentum, "diloco.overlap": overlap,
            "diloco.compression": compression, "diloco.error_feedback": error_feedback,
            "corpus.source": corpus, "corpus.shard_ids": shard or None, "receipt_probability": receipt_probability,
            "reward.compute_bps": compute_bps, **{f"chain.{k}": v for k, v in chain.items()},
        }
        manifest = new_manifest(run_id, overrides, held_out_sha256())
        signed = sign_manifest(manifest, unlock(keystore, password_file).eth_private_key)
        if publish:
            _publish(signed, tuple(initial_peers), ttl, timeout)
        _write_atomically(out, signed.to_json())
        _print(signed, as_json, f"wrote {out}" + (" and published it" if publish else ""))


@app.command(name="publish")
def publish_cmd(
    manifest: Annotated[Path, typer.Option("--manifest", help="Signed manifest file (`hivenet run create`).")],
    initial_peers: InitialPeersOpt = [],  # noqa: B006
    ttl: TtlOpt = DEFAULT_TTL_S,
    timeout: TimeoutOpt = 15.0,
) -> None:
    """Store a verified manifest in the DHT under its run id, where `node start --manifest-from-dht` finds it."""
    with user_errors():
        from node.run.resolve import load_manifest_file

        if not initial_peers:
            raise ConfigError("run publish needs --initial-peers (the address of a running peer of the run)")
        signed = load_manifest_file(manifest)
        _publish(signed, tuple(initial_peers), ttl, timeout)
        typer.echo(f"published manifest {signed.content_id} of run {signed.manifest.run_id!r}")


@app.command()
def show(
    run_id: Annotated[Optional[str], typer.Option("--run-id", help="Fetch this run's manifest from the DHT.")] = None,
    manifest: Annotated[Optional[Path], typer.Option("--manifest", help="Show (and verify) this file instead.")] = None,
    initial_peers: InitialPeersOpt = [],  # noqa: B006
    creator: Annotated[str, typer.Option("--creator", help="Accept only this creator's manifest.")] = "",
    timeout: TimeoutOpt = 30.0,
    as_json: JsonOpt = False,
) -> None:
    """Fetch a run's manifest from the DHT (or read a file), verify its hash and signature, print it."""
    with user_errors():
        from node.run.config import address_or_empty
        from node.run.resolve import fetch_manifest, load_manifest_file

        if (run_id is None) == (manifest is None):
            raise ConfigError("give --run-id (with --initial-peers) to fetch from the DHT, or --manifest FILE")
        expected = address_or_empty(creator)
        if manifest is not None:
            signed = load_manifest_file(manifest, expected)
        else:
            signed = fetch_manifest(str(run_id), tuple(initial_peers), timeout, expected)
        _print(signed, as_json, "verified: hash and signature match")


def _publish(signed: SignedRunManifest, initial_peers: tuple[str, ...], ttl: float, timeout: float) -> None:
    from node.swarm.manifests import client_dht, publish_manifest
    from protocol.errors import SwarmError

    dht = client_dht(initial_peers)
    try:
        if not publish_manifest(dht, signed.manifest.run_id, signed.creator, signed.to_json(), ttl, timeout):
            raise SwarmError(f"the DHT did not accept the manifest within {timeout:g} s; "
                             "check that the initial peers are running and publish again")
    finally:
        dht.shutdown()


def _write_atomically(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}")
    try:
        tmp.write_bytes(data + b"\n")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _print(signed: SignedRunManifest, as_json: bool, note: str) -> None:
    if as_json:
        typer.echo(json.dumps(signed.to_dict(), indent=1, sort_keys=True))
        return
    m = signed.manifest
    rows = {
        "run": m.run_id, "content id": signed.content_id, "creator": signed.creator,
        "model": f"{m.model.n_layer} layers, {m.model.n_head} heads, width {m.model.n_embd}, "
                 f"context {m.model.block_size}",
        "corpus": m.corpus.source + (f" ({len(m.corpus.shard_ids)} shards)" if m.corpus.shard_ids else ""),
        "held-out sha256": m.corpus.held_out_sha256,
        "batch": f"{m.batch_size} per step, {m.target_batch_size} per epoch",
        "schedule": f"{m.schedule.max_epochs} epochs, lr {m.schedule.lr:g}, warm-up {m.schedule.warmup_epochs}",
        "mode": m.mode + (f" (inner steps {m.diloco.inner_steps}, outer lr {m.diloco.outer_lr:g})" if m.diloco else ""),
        "receipts checked": f"{m.receipt_probability:g}",
        "reward policy": f"{m.reward.policy}, {m.reward.compute_bps / 100:g} % to compute",
        "chain": f"{m.chain.chain_id}, ledger {m.chain.ledger}" if m.chain else "none named",
    }
    for key, value in rows.items():
        typer.echo(f"{key:<17}{value}")
    typer.echo(note)
