"""Shard benchmarks, each against a baseline run in the same process.

    .venv/bin/python bench/shards.py                      # 200 MB verify, 100 MB exchange
    .venv/bin/python bench/shards.py --verify-mb 20 --exchange-mb 10

Prints one JSON object per line:
    {"bench": "shard_verify", "mb": ..., "hivenet_mbps": ..., "baseline_mbps": ..., "ratio": ...}
      hivenet: ``ShardStore.verify`` (hash every chunk, compare with the manifest, recompute the root)
      baseline: coreutils ``sha256sum`` over the same chunk files (page cache warm for both)
    {"bench": "shard_exchange", ...}
      hivenet: ``ShardFetcher.fetch`` between two local peers over hivemind's P2P (verified, written to disk)
      baseline: the same bytes over a raw loopback TCP socket into memory
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from node.data.store import ShardStore, StoreConfig  # noqa: E402
from protocol.shards import RecordSchema  # noqa: E402

MB = 1 << 20


def _pack(root: Path, mb: int, chunk_size: int) -> tuple[ShardStore, str]:
    store = ShardStore(StoreConfig(root, chunk_size=chunk_size))
    block = os.urandom(MB - 4)  # one record per MiB (with its 4-byte frame header)
    m = store.add_records((block[i % 7 :] + block[: i % 7] for i in range(mb)), schema=RecordSchema(kind="text"), license="MIT")
    return store, m.shard_id


def _best(fn, repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def bench_verify(tmp: Path, mb: int) -> dict:
    store, sid = _pack(tmp / "verify", mb, chunk_size=1 << 20)
    files = sorted(str(p) for p in (store.shard_dir(sid) / "chunks").iterdir())
    size = sum(os.path.getsize(f) for f in files) / MB

    def ours() -> None:
        assert store.verify(sid).ok

    def baseline() -> None:
        subprocess.run(["sha256sum", *files], check=True, stdout=subprocess.DEVNULL)

    baseline()  # warm the page cache for both
    t_ours, t_base = _best(ours), _best(baseline)
    return _line("shard_verify", size, t_ours, t_base)


def _socket_copy(nbytes: int) -> float:
    payload = os.urandom(MB)
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]

    def send() -> None:
        conn, _ = server.accept()
        with conn:
            for _ in range(nbytes // MB):
                conn.sendall(payload)

    sender = threading.Thread(target=send)
    sender.start()
    buf = bytearray(nbytes)
    view = memoryview(buf)
    start = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port)) as client:
        got = 0
        while got < nbytes:
            n = client.recv_into(view[got:])
            if n == 0:
                break
            got += n
    elapsed = time.perf_counter() - start
    sender.join(timeout=60)
    server.close()
    assert got == nbytes
    return elapsed


def bench_exchange(tmp: Path, mb: int) -> dict:
    from hivemind import DHT

    from node.data.exchange import ShardFetcher, ShardServer

    holder, sid = _pack(tmp / "holder", mb, chunk_size=1 << 20)
    nbytes = holder.manifest(sid).total_bytes
    dhts = [DHT(start=True, host_maddrs=["/ip4/127.0.0.1/tcp/0"])]
    dhts.append(DHT(start=True, host_maddrs=["/ip4/127.0.0.1/tcp/0"], initial_peers=dhts[0].get_visible_maddrs()))
    try:

        async def run() -> float:
            p_holder, p_fetch = [await d.replicate_p2p() for d in dhts]
            server = ShardServer(holder)
            await server.start(p_holder)
            times = []
            try:
                for k in range(3):
                    trainer = ShardStore(StoreConfig(tmp / f"trainer{k}"))
                    start = time.perf_counter()
                    await asyncio.wait_for(ShardFetcher(p_fetch, trainer).fetch(sid, [dhts[0].peer_id]), 300)
                    times.append(time.perf_counter() - start)
                    assert trainer.verify(sid).ok
                    shutil.rmtree(tmp / f"trainer{k}")
            finally:
                await server.stop()
                for p in (p_holder, p_fetch):
                    await p.shutdown()
            return min(times)

        t_ours = asyncio.run(run())
    finally:
        for d in dhts:
            d.shutdown()
    t_base = min(_socket_copy(nbytes - nbytes % MB) for _ in range(3)) * nbytes / (nbytes - nbytes % MB)
    return _line("shard_exchange", nbytes / MB, t_ours, t_base)


def _line(name: str, mb: float, t_ours: float, t_base: float) -> dict:
    ours, base = mb / t_ours, mb / t_base
    return {"bench": name, "mb": round(mb, 1), "hivenet_mbps": round(ours, 1), "baseline_mbps": round(base, 1), "ratio": round(ours / base, 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--verify-mb", type=int, default=200)
    parser.add_argument("--exchange-mb", type=int, default=100)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="hivenet-bench-") as tmp:
        print(json.dumps(bench_verify(Path(tmp), args.verify_mb)), flush=True)
        print(json.dumps(bench_exchange(Path(tmp), args.exchange_mb)), flush=True)


if __name__ == "__main__":
    main()
