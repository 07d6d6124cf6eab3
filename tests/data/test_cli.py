"""``hivenet shard``: the commands end to end through typer, as a user or a script runs them."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from node.cli.app import _register_groups, app
from tests.data.conftest import docs_text, snapshot

_register_groups()
runner = CliRunner()


def _cli(store, *args):
    return runner.invoke(app, ["shard", *args, "--store", str(store)])


def test_add_ls_verify_vet_rm(tmp_path):
    store = tmp_path / "store"
    train, evals = docs_text()
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "docs.txt").write_bytes(train[:120_000])
    (tmp_path / "eval.txt").write_bytes(evals)
    added = _cli(store, "add", str(tmp_path / "in"), "--license", "PSF-2.0", "--chunk-size", "8192", "--json")
    assert added.exit_code == 0, added.output
    info = json.loads(added.stdout)
    sid = info["shard_id"]
    assert info["chunks"] > 5 and info["records"] > 100
    assert [s["shard_id"] for s in json.loads(_cli(store, "ls", "--json").stdout)] == [sid]
    ok = _cli(store, "verify", sid[:10], "--json")
    assert ok.exit_code == 0 and json.loads(ok.stdout)["ok"] is True

    vet = _cli(store, "vet", sid[:10], "--run", "demo", "--eval", str(tmp_path / "eval.txt"), "--json")
    assert vet.exit_code == 0, vet.output
    report = json.loads(vet.stdout)
    assert report["verdict"] == "pass" and [c["name"] for c in report["checks"]][0] == "integrity"
    assert json.loads(_cli(store, "inspect", sid[:10], "--json").stdout)["vetting"]["demo"]["verdict"] == "pass"

    chunk = store / "shards" / sid / "chunks" / "000003"
    data = bytearray(chunk.read_bytes())
    data[0] ^= 1
    chunk.write_bytes(bytes(data))
    bad = runner.invoke(app, ["shard", "verify", sid[:10], "--store", str(store)])
    assert bad.exit_code == 1 and "chunk(s) 3 of shard" in bad.output
    assert json.loads(_cli(store, "verify", sid, "--json").stdout)["bad_chunks"] == [3]

    assert _cli(store, "rm", sid[:10]).exit_code == 0
    assert json.loads(_cli(store, "ls", "--json").stdout) == []


def test_bad_input_exits_2_with_the_reason_and_changes_nothing(tmp_path):
    store = tmp_path / "store"
    (tmp_path / "empty").mkdir()
    (tmp_path / "ok.txt").write_text("Some real text, with words in it.\n")
    assert _cli(store, "add", str(tmp_path / "ok.txt")).exit_code == 0
    before = snapshot(store)
    result = _cli(store, "add", str(tmp_path / "empty"))
    assert result.exit_code == 2
    assert "error: no .txt, .jsonl or .npy files found" in result.output
    assert snapshot(store) == before
    assert _cli(store, "verify", "ffff").exit_code == 2
