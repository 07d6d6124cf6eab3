"""The stop's receipt flush (acceptance 3, "flushes receipts"): a signed receipt the DHT did not
accept is tried again, spooled next to the checkpoint when it still fails, and published by the
next start; the flush is bounded in time; the spool file is parsed like any untrusted record."""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path

import hivemind
import pytest
import torch
from eth_account import Account

from node.work.board import receipt_board
from node.work.recorder import WorkConfig, WorkRecorder
from node.work.spool import ReceiptSpool, encode, spool_path
from node.work.wire import sign_receipt
from protocol.receipts import CorpusLayout, SignedReceipt
from protocol.types import RunId

RUN = "flush"
PEER = "QmStopPeer" + "7" * 36  # base58: no 0, O, I or l
KEY = Account.from_key(b"\x09" * 32)


class FakeDht:
    """publish(receipt, timeout) as the trainer's board answers it: accepted or not, as the test says."""

    def __init__(self, accept: bool = True, hang: bool = False) -> None:
        self.accept, self.hang = accept, hang
        self.stored: list[SignedReceipt] = []
        self.calls: list[float] = []

    def publish(self, signed: SignedReceipt, timeout: float) -> bool:
        self.calls.append(timeout)
        if self.hang:  # a hung DHT: the store never answers, the board gives up after ``timeout``
            time.sleep(timeout)
            return False
        if self.accept:
            self.stored.append(signed)
        return self.accept


def recorder(publish, spool: ReceiptSpool | None, timeout_s: float = 5.0) -> WorkRecorder:  # type: ignore[no-untyped-def]
    cfg = WorkConfig(run_id=RUN, peer_id=PEER, batch_size=4, n_samples=1000, layout=CorpusLayout(), snapshot_dir=None,
                     publish_timeout_s=timeout_s)
    return WorkRecorder(cfg, lambda r: sign_receipt(KEY, r), KEY.address, publish, spool)


def work_one_epoch(rec: WorkRecorder, epoch: int, steps: int = 3) -> SignedReceipt:
    model = torch.nn.Linear(4, 2)
    gen = torch.Generator().manual_seed(epoch)
    for step in range(steps):
        for p in model.parameters():
            p.grad = torch.randn(p.shape, generator=gen)
        rec.on_step(epoch, step, model)
    signed = rec.on_epoch_end(epoch)
    assert signed is not None
    return signed


def ident(signed: SignedReceipt) -> bytes:
    return signed.receipt.digest() + signed.signature


def test_a_refused_receipt_is_spooled_and_the_stop_flush_publishes_it(tmp_path: Path) -> None:
    # Prepare: the DHT refuses the receipt of epoch 0 at the epoch's end.
    dht = FakeDht(accept=False)
    spool = ReceiptSpool(spool_path(tmp_path / "checkpoint.pt"), RUN)
    rec = recorder(dht.publish, spool)
    signed = work_one_epoch(rec, 0)
    assert [ident(s) for s in rec.pending] == [ident(signed)] and rec.published == []
    assert spool.path == tmp_path / "checkpoint.pt.receipts" and spool.path.exists()  # a crash now loses nothing

    # Execute: the DHT is back when the trainer stops.
    dht.accept = True
    left = rec.flush(2.0)

    # Assert: published once, nothing pending, the spool file gone.
    assert left == 0 and rec.pending == []
    assert [ident(s) for s in dht.stored] == [ident(signed)]
    assert not spool.path.exists()


def test_what_the_stop_cannot_publish_is_published_by_the_next_start(tmp_path: Path) -> None:
    path = spool_path(tmp_path / "checkpoint.pt")
    down = FakeDht(accept=False)
    first = recorder(down.publish, ReceiptSpool(path, RUN))
    receipts = [work_one_epoch(first, e) for e in range(3)]
    assert first.flush(0.5) == 3  # the stop: still refused

    # A restarted node loads the spool and publishes it (open_recorder does this flush at start).
    up = FakeDht()
    again = recorder(up.publish, ReceiptSpool(path, RUN))
    assert [ident(s) for s in again.pending] == [ident(s) for s in receipts]  # oldest first, bit-identical
    assert again.flush(5.0) == 0
    assert [ident(s) for s in up.stored] == [ident(s) for s in receipts]
    assert not path.exists()


def test_the_stop_flush_is_bounded_when_the_dht_hangs(tmp_path: Path) -> None:
    hung = FakeDht(accept=False)
    rec = recorder(hung.publish, ReceiptSpool(tmp_path / "spool", RUN), timeout_s=0.05)
    for e in range(4):
        work_one_epoch(rec, e)
    hung.hang = True

    started = time.monotonic()
    left = rec.flush(0.3)
    took = time.monotonic() - started

    assert left == 4 and took < 0.3 + 0.2, f"flush took {took:.2f} s"
    assert all(t <= 0.05 for t in hung.calls)  # no single store may wait longer than publish_timeout_s
    assert len(ReceiptSpool(tmp_path / "spool", RUN).load()) == 4  # kept for the next start


def test_flush_with_no_time_spools_without_touching_the_dht(tmp_path: Path) -> None:
    dht = FakeDht(accept=False)
    rec = recorder(dht.publish, ReceiptSpool(tmp_path / "spool", RUN))
    work_one_epoch(rec, 0)
    calls = len(dht.calls)
    assert rec.flush(0.0) == 1 and len(dht.calls) == calls
    assert (tmp_path / "spool").exists()


def test_a_new_receipt_supersedes_a_pending_one_of_the_same_epoch(tmp_path: Path) -> None:
    # A crash after a refused publish, an older checkpoint, the epoch done again: only the new receipt may go
    # out (validators reject two receipts of one account in one epoch).
    dht = FakeDht(accept=False)
    old = work_one_epoch(recorder(dht.publish, ReceiptSpool(tmp_path / "spool", RUN)), 5, steps=2)
    dht.accept = True
    rec = recorder(dht.publish, ReceiptSpool(tmp_path / "spool", RUN))
    assert [ident(s) for s in rec.pending] == [ident(old)]
    dht.accept = False
    new = work_one_epoch(rec, 5, steps=3)
    assert [ident(s) for s in rec.pending] == [ident(new)]
    dht.accept = True
    assert rec.flush(1.0) == 0 and [s.receipt.steps for s in dht.stored] == [3]


def test_the_spool_file_is_parsed_like_an_untrusted_record(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    dht = FakeDht(accept=False)
    path = tmp_path / "spool"
    rec = recorder(dht.publish, ReceiptSpool(path, RUN))
    good = work_one_epoch(rec, 0)
    forged = json.loads(encode(work_one_epoch(rec, 1)))
    forged["steps"] = 30  # edited after signing: the signature no longer recovers to the account
    other_run = encode(sign_receipt(KEY, replace(good.receipt, run_id=RunId("other"))))
    path.write_text("\n".join([encode(good), json.dumps(forged), "not json", '{"v": 1}', other_run]) + "\n")

    spool = ReceiptSpool(path, RUN)
    loaded = spool.load()

    assert [ident(s) for s in loaded] == [ident(good)]
    assert sum("not a valid signed receipt" in r.message for r in caplog.records) == 3
    spool.save([])  # this run's receipts all published: the other run's line stays
    assert path.read_text().splitlines() == [other_run]


@pytest.mark.timeout(120)
@pytest.mark.swarm
def test_a_receipt_refused_at_the_epoch_end_reaches_the_dht_through_the_stop_flush(tmp_path: Path) -> None:
    # The real board on two in-process DHT nodes: the trainer's node and a validator's that outlives it.
    validator = hivemind.DHT(start=True)
    trainer = hivemind.DHT(initial_peers=[str(m) for m in validator.get_visible_maddrs()], start=True)
    try:
        seen_by_validator = receipt_board(validator, RUN)
        board = receipt_board(trainer, RUN)
        tries: list[float] = []

        def publish(signed: SignedReceipt, timeout: float) -> bool:  # the first store fails, as a timed-out one would
            tries.append(timeout)
            return len(tries) > 1 and board.publish(signed, timeout=timeout)

        rec = recorder(publish, ReceiptSpool(tmp_path / "spool", RUN))
        signed = work_one_epoch(rec, 2)
        assert seen_by_validator.fetch(2) == [] and (tmp_path / "spool").exists()

        assert rec.flush(5.0) == 0  # the stop, before the trainer leaves the DHT
        trainer.shutdown()

        fetched = seen_by_validator.fetch(2)
        assert [ident(s) for s in fetched] == [ident(signed)] and not (tmp_path / "spool").exists()
    finally:
        trainer.shutdown()
        validator.shutdown()


def test_an_epoch_whose_round_missed_this_peer_gets_no_receipt() -> None:
    dht = FakeDht()
    rec = recorder(dht.publish, None)
    model = torch.nn.Linear(4, 2)
    for step in range(3):
        for p in model.parameters():
            p.grad = torch.ones(p.shape)
        rec.on_step(0, step, model)
    assert rec.on_epoch_end(0, counted=False) is None  # its gradients reached no update: nothing to claim
    assert dht.stored == [] and rec.pending == []
    signed = work_one_epoch(rec, 1)  # the next epoch's round took it: a receipt as usual
    assert [s.receipt.epoch for s in dht.stored] == [1] and ident(dht.stored[0]) == ident(signed)
