"""`hivenet shard serve` and `hivenet node start --fetch-shards` as processes, as a contributor and trainers run them.

A contributor serves two shards; trainer A fetches them by run id alone; the contributor stops (SIGTERM,
exit 0); trainer B joins later, fetches the shards from A, and both train on the same corpus to the end.

    .venv/bin/python -m pytest tests/data/test_shard_serve_process.py -q
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from node.data.ingest import text_records
from node.data.store import ShardStore, StoreConfig
from node.data.vetted import split_text
from protocol.shards import RecordSchema
from tests.daemon.helpers import node, wait_until
from tests.data.conftest import docs_text

pytestmark = [pytest.mark.swarm, pytest.mark.process, pytest.mark.slow]

RUN = "fetched"
WAIT = 240.0  # seconds: ceiling of each wait below (DHT start, fetch and vetting, a few tiny epochs)


def _contributor_store(root: Path) -> list[str]:
    train, _ = docs_text()  # the node's held-out split is the demo corpus's tail; this text is its head
    store = ShardStore(StoreConfig(root, chunk_size=8192))
    return sorted(store.add_records(text_records(t), schema=RecordSchema(kind="text"), license="PSF-2.0").shard_id
                  for t in split_text(train[:200_000], 2))


def _serve(tmp_path: Path, store: Path) -> tuple[subprocess.Popen[bytes], Path]:
    out = tmp_path / "serve.out"
    with open(out, "wb") as f:
        proc = subprocess.Popen([sys.executable, "-m", "node.cli", "shard", "serve", "--run-id", RUN, "--store", str(store),
                                 "--json", "--status-every", "1"], stdout=f, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    return proc, out


def _events(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.startswith("{")]


def test_trainers_fetch_by_run_id_and_train_on_after_the_contributor_leaves(tmp_path):
    ids = _contributor_store(tmp_path / "contributor")
    serve, out = _serve(tmp_path, tmp_path / "contributor")
    try:
        assert wait_until(lambda: any(e["event"] == "serving" for e in _events(out)) or serve.poll() is not None, WAIT)
        serving = next(e for e in _events(out) if e["event"] == "serving")
        assert serving["shards"] == ids and serving["run_id"] == RUN

        common = ["--run-id", RUN, "--fetch-shards", "--expected-peers", "2", "--max-epochs", "3",
                  "--peer-wait-timeout", str(WAIT * 2)]
        with node(tmp_path / "a", *common, "--shard-store", str(tmp_path / "a" / "shards"),
                  "--initial-peers", serving["maddrs"][0]) as a:
            assert wait_until(lambda: a.records("start") or not a.alive(), WAIT), "trainer A never started"
            assert a.records("start"), (tmp_path / "a" / "node.log").read_text()[-3000:]
            assert a.records("start")[0]["shards"] == ids

            serve.send_signal(signal.SIGTERM)  # the contributor leaves once A holds the shards
            assert serve.wait(timeout=30) == 0
            assert _events(out)[-1]["event"] == "stopped"

            peers = a.records("start")[0]["maddrs"]
            with node(tmp_path / "b", *common, "--shard-store", str(tmp_path / "b" / "shards"),
                      "--initial-peers", peers[0]) as b:
                assert wait_until(lambda: (len(a.records("final")) and len(b.records("final"))) or not b.alive(), WAIT * 2)
                assert b.records("start"), (tmp_path / "b" / "node.log").read_text()[-3000:]
                assert b.records("start")[0]["shards"] == ids
                assert b.records("start")[0]["train_bytes"] == a.records("start")[0]["train_bytes"]
                assert a.records("final") and b.records("final"), (tmp_path / "b" / "node.log").read_text()[-3000:]
                assert a.records("final")[0]["epoch"] == b.records("final")[0]["epoch"] == 3

        served_by_a = re.search(r"serving them as (\w+)", (tmp_path / "a" / "node.log").read_text())
        assert served_by_a, "trainer A never served the shards on"
        fetched = re.findall(r"fetched shard \w+ \(\d+ chunks\) from (\S+): \d+", (tmp_path / "b" / "node.log").read_text())
        assert len(fetched) == len(ids) and {h for h in fetched} == {served_by_a.group(1)[:12]}
    finally:
        if serve.poll() is None:
            os.killpg(serve.pid, signal.SIGKILL)
            serve.wait(timeout=10)
