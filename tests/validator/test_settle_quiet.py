"""The validator daemon settles every epoch, the run's last one included: an epoch with no later epoch is
settled once no new receipt of it has come for the quiet period (``--validator-settle-quiet``), not before;
a receipt of it that comes after is ignored, also by a daemon restarted on the same home. In process, with a
fake clock, simulated receipts and the ledger suite's chain.

    .venv/bin/python -m pytest tests/validator/test_settle_quiet.py -q
"""

from __future__ import annotations

from pathlib import Path

from node.ledger.client import LedgerClient
from node.validator.config import ValidatorDaemonConfig
from tests.receipts.test_validator import validator
from tests.validator.test_daemon_restart import EPOCHS, daemon, ledger, posted, receipts  # noqa: F401  (fixtures)

QUIET = ValidatorDaemonConfig().settle_quiet_s  # the daemon's default, which the daemon() helper keeps
LAST = EPOCHS - 1  # the run's last training epoch: no receipt of a later one ever comes


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_last_epoch_is_settled_after_the_quiet_period_and_a_late_receipt_ignored(
        tmp_path: Path, ledger: LedgerClient, receipts: tuple[Path, dict]) -> None:
    snap, all_receipts = receipts
    straggler = all_receipts[LAST][-1]
    visible = {e: list(all_receipts[e]) for e in range(EPOCHS)}
    visible[LAST].remove(straggler)  # this trainer publishes its last receipt too late
    home = tmp_path / "home"
    d = daemon(home, ledger, snap, visible)
    clock = FakeClock()
    d.validator.clock = clock

    d.step()  # reads epochs 0..2: settles 0 and 1
    d.step()  # reads 2..4: settles 2 and 3, which have a later epoch with receipts; the last one waits
    assert posted(ledger) == [1, 2, 3, 4] and d.validator.next_epoch == LAST
    clock.now += QUIET - 0.5
    d.step()
    assert posted(ledger) == [1, 2, 3, 4], "settled before the quiet period was over"
    clock.now += 0.5
    d.step()
    assert posted(ledger) == [1, 2, 3, 4, 5] and d.validator.next_epoch == EPOCHS

    reference = validator(tmp_path / "reference", visible, snap=snap)
    reference.poll(ahead=EPOCHS)
    roots = [reference.process(e).root for e in range(EPOCHS)]
    assert [ledger.epoch_record(e + 1)["root"] for e in range(EPOCHS)] == roots
    last_root = ledger.epoch_record(EPOCHS)["root"]

    visible[LAST].append(straggler)  # the straggler arrives after its epoch was settled
    clock.now += 3 * QUIET
    d.step()
    d.step()
    assert d.validator.late == {LAST: 1}  # logged once, not per poll
    assert posted(ledger) == [1, 2, 3, 4, 5] and ledger.epoch_record(EPOCHS)["root"] == last_root
    assert d.journal is not None and [s.epoch for s in d.journal.settled] == list(range(EPOCHS))
    d._release()

    again = daemon(home, ledger, snap, visible)  # a restart sees the straggler among the epoch's receipts
    again.validator.clock = clock
    again.step()
    clock.now += 3 * QUIET
    again.step()
    assert again.validator.next_epoch == EPOCHS and posted(ledger) == [1, 2, 3, 4, 5]
    assert again.journal is not None and [s.epoch for s in again.journal.settled] == list(range(EPOCHS))
    assert ledger.epoch_record(EPOCHS)["root"] == last_root
    again._release()


def test_without_a_quiet_period_the_last_epoch_waits_for_a_later_one(tmp_path: Path,
                                                                     receipts: tuple[Path, dict]) -> None:
    snap, all_receipts = receipts
    v = validator(tmp_path, all_receipts, snap=snap)  # the in-process testnet's validator: settle_quiet_s 0
    clock = FakeClock()
    v.clock = clock
    v.poll(ahead=EPOCHS)
    settled = v.settle_ready()
    clock.now += 10**6
    v.poll()
    settled += v.settle_ready()
    assert [s.epoch for s in settled] == list(range(LAST)) and v.next_epoch == LAST
    assert [s.epoch for s in v.settle_ready(final=True)] == [LAST]  # the trainers are done: it settles
