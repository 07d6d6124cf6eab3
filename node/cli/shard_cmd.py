"""``hivenet shard``: pack files into shards, list, inspect, verify, remove, vet and serve them.

    hivenet shard add docs/ --license CC-BY-4.0          # prints the new shard id
    hivenet shard ls --json
    hivenet shard verify 5d854da8                          # exit 1 naming bad chunks
    hivenet shard vet 5d854da8 --run demo --eval eval.txt  # table; --json for scripts
    hivenet shard serve --run-id demo --initial-peers /ip4/.../p2p/Qm...   # until SIGTERM; trainers fetch
    hivenet shard register --rpc URL --keystore node.key --password-file pw  # owner on chain: earns the data share
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Optional

import typer

from node.cli.common import user_errors
from node.cli.keys_cmd import KeystoreOpt, PasswordFileOpt
from node.cli.ledger_cmd import DeploymentOpt, OutboxOpt, RpcOpt

app = typer.Typer(no_args_is_help=True, help="Data shards: pack, inspect, verify, vet, serve.")

StoreOpt = Annotated[
    Path,
    typer.Option("--store", envvar="HIVENET_SHARD_STORE", help="Shard store directory."),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
DEFAULT_STORE = Path.home() / ".hivenet" / "shards"


def _store(root: Path, chunk_size: int | None = None, max_record_bytes: int | None = None):
    from node.data.store import ShardStore, StoreConfig

    cfg = StoreConfig(root)
    if chunk_size is not None or max_record_bytes is not None:
        cfg = StoreConfig(root, chunk_size or cfg.chunk_size, max_record_bytes or cfg.max_record_bytes)
    return ShardStore(cfg)


def _summary(m) -> dict:
    return {
        "shard_id": m.shard_id,
        "records": m.record_count,
        "bytes": m.total_bytes,
        "chunks": m.n_chunks,
        "chunk_size": m.chunk_size,
        "schema": m.record_schema.model_dump(exclude_none=True),
        "license": m.license,
        "owner": m.owner,
        "created_at": m.created_at,
    }


@app.command()
def add(
    paths: Annotated[list[Path], typer.Argument(help="Files or directories (.txt, .jsonl, .npy).")],
    license: Annotated[str, typer.Option(help="License of the data (SPDX id).")] = "CC-BY-4.0",
    owner: Annotated[Optional[str], typer.Option(help="Ethereum address credited for the data.")] = None,
    chunk_size: Annotated[Optional[int], typer.Option(help="Chunk size in bytes (power of two).")] = None,
    max_record_bytes: Annotated[Optional[int], typer.Option(help="Largest record accepted.")] = None,
    store: StoreOpt = DEFAULT_STORE,
    as_json: JsonOpt = False,
) -> None:
    """Pack files into one shard (atomically: a failure leaves nothing behind)."""
    from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn, TransferSpeedColumn

    with user_errors():
        s = _store(store, chunk_size, max_record_bytes)
        columns = ("[progress.description]{task.description}", BarColumn(), DownloadColumn(), TransferSpeedColumn(), TimeRemainingColumn())
        with Progress(*columns, transient=True, disable=as_json) as bar:
            task = bar.add_task("packing", total=None)
            m = s.add_paths(
                paths,
                license=license,
                owner=owner,
                progress=lambda n: bar.advance(task, n),
                on_total=lambda total: bar.update(task, total=total),
            )
    if as_json:
        typer.echo(json.dumps(_summary(m)))
    else:
        typer.echo(f"{m.shard_id}  {m.record_count} records, {m.total_bytes} bytes in {m.n_chunks} chunks")


@app.command("ls")
def list_(store: StoreOpt = DEFAULT_STORE, as_json: JsonOpt = False) -> None:
    """List stored shards."""
    from rich.console import Console
    from rich.table import Table

    from node.data.ingest import show

    with user_errors():
        entries = _store(store).scan()
    # A shard whose manifest cannot be read is listed as broken with the reason, so one bad
    # directory never hides the rest of the store.
    if as_json:
        typer.echo(json.dumps([_summary(m) if m is not None else {"shard_id": sid, "broken": why} for sid, m, why in entries]))
        return
    table = Table("shard", "records", "bytes", "chunks", "schema", "license")
    for sid, m, why in entries:
        if m is None:
            table.add_row(sid[:16], "-", "-", "-", "broken", show(why or ""))
        else:
            table.add_row(m.shard_id[:16], str(m.record_count), str(m.total_bytes), str(m.n_chunks), m.record_schema.kind, m.license)
    Console().print(table)


@app.command()
def inspect(shard: Annotated[str, typer.Argument(help="Shard id or unique prefix.")], store: StoreOpt = DEFAULT_STORE, as_json: JsonOpt = False) -> None:
    """Show a shard's manifest and its vetting verdicts per run."""
    from node.data.runs import RunIndex

    with user_errors():
        s = _store(store)
        sid = s.resolve(shard)
        info = _summary(s.manifest(sid))
        verdicts = {}
        for run_dir in sorted((s.root / "runs").glob("*")):
            report = RunIndex(s, run_dir.name).report(sid)
            if report is not None:
                verdicts[run_dir.name] = {"verdict": report.verdict.value, "score": round(report.score, 4), "usable": report.n_usable}
        info["vetting"] = verdicts
    if as_json:
        typer.echo(json.dumps(info))
    else:
        for k, v in info.items():
            typer.echo(f"{k:>11}: {v}")


@app.command()
def verify(shard: Annotated[str, typer.Argument(help="Shard id or unique prefix.")], store: StoreOpt = DEFAULT_STORE, as_json: JsonOpt = False) -> None:
    """Hash every chunk against the manifest; exit status 1 names the chunks that differ."""
    with user_errors():
        s = _store(store)
        result = s.verify(s.resolve(shard))
    if as_json:
        typer.echo(json.dumps({"shard_id": result.shard_id, "ok": result.ok, "chunks": result.n_chunks,
                               "bad_chunks": list(result.bad_chunks), "root_ok": result.root_ok}))
    elif result.ok:
        typer.echo(f"ok: {result.n_chunks} chunks match shard {result.shard_id}")
    else:
        shown = ", ".join(map(str, result.bad_chunks[:20]))
        typer.echo(f"FAILED: chunk(s) {shown} of shard {result.shard_id} do not match the manifest", err=True)
    if not result.ok:
        raise typer.Exit(1)


@app.command()
def rm(shard: Annotated[str, typer.Argument(help="Shard id or unique prefix.")], store: StoreOpt = DEFAULT_STORE) -> None:
    """Remove a shard from the local store."""
    with user_errors():
        s = _store(store)
        sid = s.resolve(shard)
        s.remove(sid)
    typer.echo(f"removed {sid}")


def _validator_key(path: Path):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    if path.exists():
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise typer.BadParameter(f"{path} is not an Ed25519 private key")
        return key
    key = Ed25519PrivateKey.generate()
    path.parent.mkdir(parents=True, exist_ok=True)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    return key


@app.command()
def vet(
    shard: Annotated[str, typer.Argument(help="Shard id or unique prefix.")],
    run: Annotated[str, typer.Option(help="Run the shard is vetted for (dedup is per run).")] = "default",
    eval_file: Annotated[Optional[Path], typer.Option("--eval", help="Held-out evaluation text of the run (decontamination).")] = None,
    reference: Annotated[Optional[Path], typer.Option(help="Vetted reference text for the poisoning probe (default: --eval).")] = None,
    key: Annotated[Optional[Path], typer.Option(help="Ed25519 PEM key that signs reports (created if missing).")] = None,
    store: StoreOpt = DEFAULT_STORE,
    as_json: JsonOpt = False,
) -> None:
    """Vet a shard: integrity, format, duplicates, quality, decontamination, poisoning probe. Exit 1 unless it passes."""
    from node.data.ingest import text_records
    from node.data.probe import ByteUnigramLoss
    from node.data.runs import VetInputs, vet_shard

    with user_errors():
        s = _store(store)
        sid = s.resolve(shard)
        eval_paras = [p.decode() for p in text_records(eval_file.read_bytes())] if eval_file else []
        ref = text_records(reference.read_bytes()) if reference else [p.encode() for p in eval_paras]
        inputs = VetInputs(eval_split=eval_paras, loss_fn=ByteUnigramLoss(ref) if ref else None, reference=ref)
        report = vet_shard(s, sid, run_id=run, key=_validator_key(key or s.root / "validator_ed25519.pem"), inputs=inputs)
    if as_json:
        typer.echo(json.dumps(report.to_json()))
    else:
        _print_report(report)
    if not report.passed:
        raise typer.Exit(1)


def _print_report(report) -> None:
    from rich.console import Console
    from rich.table import Table

    colors = {"pass": "green", "fail": "red", "review": "yellow", "skipped": "dim"}
    table = Table("check", "status", "figures", "reasons", title=f"shard {report.shard_id[:16]} for run {report.run_id}")
    for c in report.checks:
        figures = ", ".join(f"{k}={v:.3g}" for k, v in sorted(c.figures.items()))
        table.add_row(c.name, f"[{colors[c.status.value]}]{c.status.value}[/]", figures, "\n".join(c.reasons))
    console = Console()
    console.print(table)
    console.print(
        f"verdict: [{colors[report.verdict.value]}]{report.verdict.value}[/]  score {report.score:.3f}  "
        f"usable {report.n_usable}/{report.n_records}  report {report.digest().hex()[:16]}  signed by {report.validator[:16]}"
    )


@app.command()
def serve(
    run_id: Annotated[str, typer.Option("--run-id", envvar="HIVENET_SWARM_RUN_ID", help="Run the shards are offered for.")],
    initial_peers: Annotated[Optional[list[str]], typer.Option(
        "--initial-peers", help="Multiaddr of a running peer of the run (repeat for more); none: start a new DHT.")] = None,
    listen: Annotated[Optional[list[str]], typer.Option(
        "--listen", help="Multiaddr to listen on (repeat); /ip4/0.0.0.0/tcp/PORT accepts other machines.")] = None,
    shard: Annotated[Optional[list[str]], typer.Option(
        "--shard", help="Shard id or unique prefix to offer (repeat); default: every shard in the store.")] = None,
    status_every: Annotated[float, typer.Option(help="Seconds between status lines.", min=0.1)] = 30.0,
    store: StoreOpt = DEFAULT_STORE,
    as_json: JsonOpt = False,
) -> None:
    """Offer shards for a run: announce them in the DHT and serve their chunks until SIGTERM (exit 0)."""
    import threading

    from node.cli.common import graceful_signals, setup_logging
    from node.data.runs import check_run_id
    from node.data.serving import ServiceConfig, ShardService

    setup_logging()
    stop = threading.Event()
    with user_errors(), graceful_signals(stop.set, "stopping the shard server"):
        check_run_id(run_id)
        if not store.is_dir():
            from protocol.errors import ShardNotFound

            raise ShardNotFound(f"no shard store at {store}; pack files with `hivenet shard add PATH --store {store}` first")
        s = _store(store)
        ids = sorted({s.resolve(p) for p in shard}) if shard else s.ids()
        if not ids:
            from protocol.errors import ShardNotFound

            raise ShardNotFound(f"no shard in {s.root} to serve for run {run_id!r}; pack files with "
                                f"`hivenet shard add PATH --store {s.root}` first")
        for sid in ids:  # never offer rotten bytes: peers would refuse them and count this peer as faulty
            result = s.verify(sid)
            if not result.ok:
                from protocol.errors import ShardError

                raise ShardError(f"shard {sid[:16]} has {len(result.bad_chunks)} chunk(s) that do not match its "
                                 f"manifest; see `hivenet shard verify {sid[:16]}`, then remove it or pack it again")
        cfg = ServiceConfig(run_id=run_id, initial_peers=tuple(initial_peers or ()),
                            **({"listen": tuple(listen)} if listen else {}))
        service = ShardService(s, cfg)
        service.start()
        try:
            offered = service.offer([(sid, s.manifest(sid).n_chunks) for sid in ids])
            _print_serving(service, ids, offered, as_json)
            while not stop.wait(status_every):
                typer.echo(_status_line(service), err=True)
        finally:
            service.stop()
    typer.echo(json.dumps({"event": "stopped", **service.status()}) if as_json else f"stopped; {_status_line(service)}")


@app.command()
def register(
    rpc: RpcOpt,
    shard: Annotated[Optional[list[str]], typer.Argument(help="Shard ids or unique prefixes; default: every shard in the store.")] = None,
    deployment: DeploymentOpt = Path("deployment.json"),
    keystore: KeystoreOpt = Path("node.key"),
    password_file: PasswordFileOpt = None,
    outbox: OutboxOpt = None,
    store: StoreOpt = DEFAULT_STORE,
    as_json: JsonOpt = False,
) -> None:
    """Register shards in the ShardRegistry with the keystore's account as owner (it pays the gas)."""
    from node.cli.shard_register import register as register_in_registry

    with user_errors():
        register_in_registry(shard or [], store, rpc, deployment, keystore, password_file, outbox, as_json)


def _status_line(service) -> str:
    st = service.status()
    return (f"serving {len(st['shards'])} shard(s) for run {st['run_id']}: "
            f"{st['served_chunks']} chunk(s) sent to {st['served_peers']} peer(s)")


def _print_serving(service, ids: list[str], offered: list[str], as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps({"event": "serving", "run_id": service.cfg.run_id, "peer_id": service.peer_id,
                               "maddrs": service.maddrs, "shards": ids, "announced": sorted(offered)}))
        return
    typer.echo(f"serving {len(ids)} shard(s) for run {service.cfg.run_id} as {service.peer_id}")
    for addr in service.maddrs:
        typer.echo(f"  peers join with --initial-peers {addr}")
    if len(offered) < len(ids):
        typer.echo(f"warning: the DHT took {len(offered)} of {len(ids)} announcements (no other peer yet?); "
                   "they are repeated until stopped", err=True)
