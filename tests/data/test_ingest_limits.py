"""Hostile inputs to ``shard add`` and a hostile store: named errors, nothing outside the input packed."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from node.cli.app import _register_groups, app
from node.data.ingest import IngestLimits, collect_inputs, parse_json_record, show
from node.data.store import ShardStore, StoreConfig
from node.data.vetting import _is_json_object, _text_of
from protocol.errors import ShardInputError
from tests.data.conftest import snapshot

_register_groups()
runner = CliRunner()
PROSE = "The river ran past the old mill and the children watched the water turn the wheel.\n"


def _tree(tmp_path: Path) -> Path:
    d = tmp_path / "in"
    (d / "sub").mkdir(parents=True)
    (d / "a.txt").write_text(PROSE)
    (d / "sub" / "b.txt").write_text(PROSE.replace("river", "stream"))
    return d


def test_symlink_out_of_the_input_tree_is_refused_naming_the_link(store, tmp_path):
    d = _tree(tmp_path)
    secret = tmp_path / "home" / "secret.txt"
    secret.parent.mkdir()
    secret.write_text("password=hunter2\n")
    (d / "sub" / "leak.txt").symlink_to(secret)
    before = snapshot(store.root)
    with pytest.raises(ShardInputError, match=r"leak\.txt: symlink points outside the input directory"):
        store.add_paths([d], license="CC0-1.0")
    assert snapshot(store.root) == before and store.ids() == []


def test_symlinked_directory_out_of_the_tree_is_refused(tmp_path):
    d = _tree(tmp_path)
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "x.txt").write_text("not yours\n")
    (d / "docs").symlink_to(outside, target_is_directory=True)
    with pytest.raises(ShardInputError, match="docs: symlink points outside"):
        collect_inputs([d])


def test_symlink_inside_the_tree_is_allowed(tmp_path):
    d = _tree(tmp_path)
    (d / "alias.txt").symlink_to(d / "sub" / "b.txt")
    inputs = collect_inputs([d])
    assert [p.name for p in inputs.files] == ["a.txt", "alias.txt", "b.txt"]


def test_deep_directories_get_a_depth_error_not_a_symlink_loop(tmp_path):
    d = tmp_path / "deep"
    p = d
    for _ in range(80):
        p = p / "d"
    p.mkdir(parents=True)
    (p / "x.txt").write_text(PROSE)
    with pytest.raises(ShardInputError, match="nest more than 64 levels") as e:
        collect_inputs([d])
    assert "loop" not in str(e.value)
    assert [f.name for f in collect_inputs([d], IngestLimits(max_dir_depth=100)).files] == ["x.txt"]


def test_file_and_record_counts_are_limited(tmp_path):
    d = tmp_path / "many"
    d.mkdir()
    for i in range(6):
        (d / f"{i}.txt").write_text(PROSE)
    with pytest.raises(ShardInputError, match="more than 5 input files"):
        collect_inputs([d], IngestLimits(max_files=5))
    store = ShardStore(StoreConfig(tmp_path / "store", chunk_size=4096, limits=IngestLimits(max_records=4)))
    with pytest.raises(ShardInputError, match="more than 4 records"):
        store.add_paths([d], license="CC0-1.0")
    assert store.ids() == []


def test_deeply_nested_json_is_a_named_error_in_add_and_harmless_in_vet(store, tmp_path):
    f = tmp_path / "deep.jsonl"
    deep = "[" * 100_000 + "]" * 100_000
    f.write_text(json.dumps({"text": "fine"}) + "\n" + '{"text": "x", "meta": ' + deep + "}\n")
    with pytest.raises(ShardInputError, match=r"deep\.jsonl:2: JSON nests"):
        store.add_paths([f], license="CC0-1.0")
    moderate = '{"a": ' + "[" * 100 + "]" * 100 + "}"
    with pytest.raises(ValueError, match="nests 101 levels, more than the 64 allowed"):
        parse_json_record(moderate)
    # A record built elsewhere (a peer's shard) is judged malformed by vetting, not a crash.
    hostile = '{"text": "x", "meta": ' + deep + "}"
    assert _is_json_object(hostile) is False
    assert _text_of(hostile, "json") == ""


def test_file_names_are_sanitized_in_messages(tmp_path):
    name = "evil\nerror: all shards verified\r.txt"
    missing = tmp_path / name
    with pytest.raises(ShardInputError) as e:
        collect_inputs([missing])
    assert "\n" not in str(e.value) and "\r" not in str(e.value)
    assert "evil\\nerror" in str(e.value)
    assert show("a\u200bb") == "a\\u200bb"
    bad = tmp_path / "in\nject.jsonl"
    bad.write_text("[1]\n")
    result = runner.invoke(app, ["shard", "add", str(bad), "--store", str(tmp_path / "s")])
    assert result.exit_code == 2
    assert "in\\nject.jsonl:1: each line must be a JSON object" in result.output
    assert "in\nject" not in result.output


def test_one_malformed_manifest_does_not_hide_the_others(store, tmp_path):
    d = _tree(tmp_path)
    good = store.add_paths([d], license="CC0-1.0")
    broken = store.root / "shards" / ("ab" * 32)
    broken.mkdir()
    (broken / "manifest.json").write_text("{not json")
    assert [m.shard_id for m in store.manifests()] == [good.shard_id]
    result = runner.invoke(app, ["shard", "ls", "--json", "--store", str(store.root)])
    assert result.exit_code == 0, result.output
    listed = json.loads(result.output)
    by_id = {e["shard_id"]: e for e in listed}
    assert by_id[good.shard_id]["records"] == good.record_count
    assert "not valid JSON" in by_id["ab" * 32]["broken"]
    table = runner.invoke(app, ["shard", "ls", "--store", str(store.root)])
    assert table.exit_code == 0 and "broken" in table.output


def test_symlink_loop_still_reported_as_loop(tmp_path):
    d = _tree(tmp_path)
    (d / "self").symlink_to(d / "self")
    with pytest.raises(ShardInputError, match="symlink loop"):
        collect_inputs([d])


def test_named_symlink_file_on_the_command_line_is_taken(tmp_path):
    target = tmp_path / "real.txt"
    target.write_text(PROSE)
    link = tmp_path / "link.txt"
    os.symlink(target, link)
    assert collect_inputs([link]).files == (link,)
