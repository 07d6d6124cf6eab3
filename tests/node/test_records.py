"""Metrics records: typed on both sides of the file, the JSON keys unchanged, bad lines refused."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from node.records import (EpochRecord, FinalRecord, RecordTail, RoundRecord, StartRecord, StopRecord, of_type,
                          parse_record, read_records, record_json)

START = StartRecord(t=1.0, peer="QmA", epoch=0, val_loss=5.5, resumed=False, device="cpu", params=10, shards=[],
                    train_bytes=100, maddrs=["/ip4/127.0.0.1/tcp/1"], model="abc")


def epoch(**kw):  # type: ignore[no-untyped-def]
    base = dict(t=2.0, peer="QmA", epoch=0, new_epoch=1, local_steps=3, samples=6, loss=5.0, val_loss=None,
                elapsed_s=1.5, param_sketch=[0.1, 0.2, 0.3])
    return EpochRecord(**{**base, **kw})


def test_sync_records_carry_no_diloco_keys_and_diloco_records_carry_them():
    sync = record_json(epoch(group_size=3, averaged=True, agreement="agreed"))
    assert sync["event"] == "epoch" and sync["group_size"] == 3 and sync["val_loss"] is None
    assert not {"bytes_sent", "outer_steps", "shared_digest", "utilization"} & set(sync)
    diloco = record_json(epoch(outer_steps=2, shared_digest="ff", bytes_sent=10, utilization=0.9))
    assert diloco["bytes_sent"] == 10 and diloco["outer_steps"] == 2 and diloco["group_size"] is None
    assert "mode" not in record_json(START) and record_json(START)["event"] == "start"


@given(st.floats(allow_nan=False, allow_infinity=False), st.integers(0, 10**6), st.booleans())
def test_every_record_round_trips_through_json(loss, n, flag):
    records = [START, epoch(loss=loss, local_steps=n, averaged=flag),
               RoundRecord(t=3.0, peer="QmA", round=n, applied=flag, reason="agreed", group_size=3, outer_steps=n),
               FinalRecord(t=4.0, peer="QmA", epoch=n, val_loss=loss, bytes_sent=n),
               StopRecord(t=5.0, peer="QmA", epoch=n, param_digest="00", requested=flag)]
    for r in records:
        assert parse_record(json.loads(json.dumps(record_json(r)))) == r


def test_unknown_events_and_malformed_records_are_refused_and_extra_keys_ignored():
    assert parse_record({"event": "party", "t": 1}) is None
    assert parse_record({"event": "epoch", "t": 1}) is None  # required keys missing
    assert parse_record(["epoch"]) is None
    newer = {**record_json(START), "added_later": 1}
    assert parse_record(newer) == START


def test_files_are_read_whole_and_tailed_without_half_lines(tmp_path):
    path = tmp_path / "m.jsonl"
    assert read_records(path) == []
    path.write_text(json.dumps(record_json(START)) + "\n" + "not json\n" + json.dumps({"event": "epoch"}) + "\n")
    tail = RecordTail(path)
    assert tail.read() == [START]
    with open(path, "a") as f:
        f.write(json.dumps(record_json(epoch())) + "\n" + '{"event": "fin')  # the last line is still being written
    assert tail.read() == [START, epoch()] == read_records(path)
    assert of_type(tail.records, EpochRecord) == [epoch()]
