"""The validator daemon's restart safety, in process (simulated receipts, the ledger suite's chains): a daemon
stopped mid-run and started again on the same home resumes its book, posts every ledger epoch exactly once
with the roots an uninterrupted validator computes, and one that crashed between writing an epoch down and
sending its root posts that root on restart. Its /status endpoint and `hivenet validator status` report it."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import pytest
from typer.testing import CliRunner

from node.cli.app import app, _register_groups
from node.ledger.client import LedgerClient
from node.swarm.config import SwarmConfig
from node.telemetry.config import HttpConfig, TelemetryConfig
from node.validator.access import ChainAccess
from node.validator.config import ValidatorDaemonConfig
from node.validator.daemon import DaemonSettings, ValidatorDaemon
from node.validator.journal import Journal, JournalError
from tests.ledger.conftest import WINDOW
from tests.receipts.sim import RUN, TINY, make_peers, simulate, small_corpus
from tests.receipts.test_validator import EMISSION, OWNERS, validator
from tests.waiting import wait_until

EPOCHS = 5


@pytest.fixture(scope="module")
def receipts(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    snap = tmp_path_factory.mktemp("snap")
    corpus, layout = small_corpus()
    peers = make_peers(["honest", "honest", "fake-sketch"])
    return snap, simulate(peers, epochs=EPOCHS, steps=2, snapshot_dir=snap, corpus=corpus, layout=layout)


@pytest.fixture
def ledger(admin: LedgerClient, new_client: Callable[..., LedgerClient]) -> LedgerClient:
    """A funded ledger and a validator account on it (the client returned)."""
    admin.mint(admin.address, EPOCHS * EMISSION)
    admin.fund(EPOCHS * EMISSION)
    me = new_client(admin.deployment)
    admin.grant_validator(me.address)
    return me


def daemon(home: Path, me: LedgerClient, snap: Path, visible: dict, http: HttpConfig = HttpConfig(listen=None)
           ) -> ValidatorDaemon:
    """A daemon on ``home`` whose DHT shows the receipts in ``visible`` (no swarm: the fetch is replaced)."""
    assert me.deployment is not None
    settings = DaemonSettings(
        ValidatorDaemonConfig(home=home, snapshot_dir=snap, poll_interval_s=0.05),
        SwarmConfig(run_id=RUN, target_batch_size=64), TelemetryConfig(RUN, broker=None), http,
        train=lambda: SimpleNamespace(model=TINY, shard_store=None))
    d = ValidatorDaemon(settings, ChainAccess(me.chain, me.account, me.deployment, WINDOW))
    d.open_home()
    v = d.build_validator(settings.train())
    corpus, layout = small_corpus()  # the simulation's corpus and shard layout instead of the demo corpus
    v.corpus = v.checker.corpus = corpus
    v.layout, v.book.owners = layout, dict(OWNERS)
    v.fetch = lambda epoch: visible.get(epoch, [])
    return d


def posted(client: LedgerClient) -> list[int]:
    return [e["epoch"] for e in client.events("ContributionLedger", "EpochPosted")]


def reference_roots(tmp_path: Path, snap: Path, receipts: dict, epochs: int) -> list[bytes | None]:
    """What an uninterrupted validator settles for the first ``epochs`` epochs."""
    v = validator(tmp_path / "reference", receipts, snap=snap)
    v.poll(ahead=EPOCHS)
    return [v.process(e).root for e in range(epochs)]


def test_a_restarted_validator_resumes_and_posts_every_epoch_once(tmp_path: Path, ledger: LedgerClient,
                                                                  receipts: tuple[Path, dict]) -> None:
    snap, all_receipts = receipts
    home = tmp_path / "home"
    first = daemon(home, ledger, snap, {e: all_receipts[e] for e in range(3)})  # epochs 0..2 published so far
    first.step()
    assert first.validator.next_epoch == 2 and posted(ledger) == [1, 2]
    first._release()  # stopped mid-run: epoch 2's receipts are in, its epoch is not complete

    second = daemon(home, ledger, snap, all_receipts)
    assert second.validator.next_epoch == 2 and second.validator.pending.keys() == {1, 2}
    second.step()  # finds ledger epochs 1 and 2 on chain (not posted again), settles epochs 2 and 3
    assert posted(ledger) == [1, 2, 3, 4]
    roots = reference_roots(tmp_path, snap, all_receipts, 4)
    assert [ledger.epoch_record(e + 1)["root"] for e in range(4)] == roots
    journal = second.journal
    assert journal is not None and [s.epoch for s in journal.settled] == [0, 1, 2, 3]
    assert journal.posted == [1, 2, 3, 4] and journal.next_epoch == 4
    assert all(s.rejected == 1 and s.checked == 3 for s in journal.settled)  # the fake sketch, every epoch

    ledger.chain.advance_time(WINDOW + 1)
    second.step()
    assert ledger.finalized()[0] == 4 and second.journal.posted == []
    second._release()


def test_a_root_written_down_but_never_sent_is_posted_after_a_crash(tmp_path: Path, ledger: LedgerClient,
                                                                   receipts: tuple[Path, dict]) -> None:
    snap, all_receipts = receipts
    home = tmp_path / "home"
    first = daemon(home, ledger, snap, {e: all_receipts[e] for e in range(2)})

    def crash(*args: object) -> None:
        raise KeyboardInterrupt  # the process dies right before the transaction leaves

    first.client.post_epoch = crash  # type: ignore[assignment,union-attr]
    with pytest.raises(KeyboardInterrupt):
        first.step()
    assert posted(ledger) == []
    assert Journal.open(home / "journal.json", first.journal.key).posted == [1]  # written down before the send
    first._release()

    second = daemon(home, ledger, snap, {e: all_receipts[e] for e in range(3)})
    second.step()
    assert posted(ledger) == [1, 2]
    assert [ledger.epoch_record(e + 1)["root"] for e in range(2)] == reference_roots(tmp_path, snap, all_receipts, 2)
    second._release()


def test_a_home_of_another_run_is_refused_before_anything_is_sent(tmp_path: Path, ledger: LedgerClient,
                                                                  receipts: tuple[Path, dict]) -> None:
    snap, all_receipts = receipts
    home = tmp_path / "home"
    first = daemon(home, ledger, snap, {e: all_receipts[e] for e in range(2)})
    first.step()
    first._release()
    doc = json.loads((home / "journal.json").read_text())
    doc["key"]["run_id"] = "another-run"
    (home / "journal.json").write_text(json.dumps(doc))
    with pytest.raises(JournalError, match="run_id 'another-run'.*own --validator-home"):
        daemon(home, ledger, snap, all_receipts)
    assert posted(ledger) == [1]


def test_status_reports_the_validators_figures(tmp_path: Path, ledger: LedgerClient,
                                               receipts: tuple[Path, dict]) -> None:
    snap, all_receipts = receipts
    url_file = tmp_path / "status.url"
    d = daemon(tmp_path / "home", ledger, snap, {e: all_receipts[e] for e in range(3)},
               http=HttpConfig(listen=("127.0.0.1", 0), url_file=url_file))
    d.side.start()
    try:
        d.step()
        assert wait_until(lambda: d.state.status()["epochs_settled"] == 2, timeout=10), d.state.status()
        _register_groups()
        result = CliRunner().invoke(app, ["validator", "status", "--file", str(url_file), "--json"])
        assert result.exit_code == 0, result.output
        doc = json.loads(result.stdout)
        assert doc["role"] == "validator" and doc["run_id"] == RUN and doc["stage"] == "collecting"
        assert (doc["epochs_settled"], doc["next_epoch"], doc["receipts"], doc["receipts_rejected"]) == (2, 2, 6, 2)
        assert doc["last_root"] == "0x" + ledger.epoch_record(2)["root"].hex()
        assert doc["chain_reachable"] is True and doc["chain_latest_epoch"] == 2
        text = CliRunner().invoke(app, ["validator", "status", "--file", str(url_file)])
        assert text.exit_code == 0 and "epochs_settled       2" in text.output
    finally:
        d.side.stop(timeout=10)
        d._release()
