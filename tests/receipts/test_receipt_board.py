"""The receipt board's wiring without a DHT process: what installs the record validator, what the
validator accepts after travelling to the DHT's process by pickle, and the trainer's recorder factory."""

from __future__ import annotations

import pickle
from pathlib import Path

from eth_account import Account
from hivemind.dht.crypto import RSASignatureValidator
from hivemind.dht.routing import DHTID
from hivemind.dht.validation import DHTRecord
from hivemind.utils import MSGPackSerializer

from node.swarm.hivemind_ext.receipt_validator import ReceiptValidator, receipts_key
from node.testnet.validation import make_keystore
from node.work.board import install_receipt_validator, receipt_board
from node.work.recorder import RecorderConfig, open_recorder
from node.work.spool import ReceiptSpool, spool_path
from node.work.wire import parse_value, sign_receipt, to_wire
from protocol.receipts import SignedReceipt
from tests.receipts.test_receipts import receipt

RUN = "r"
KEY = Account.from_key(b"\x07" * 32)


class RecordingDht:
    """Stands in for a DHT: records the validators it is given."""

    def __init__(self) -> None:
        self.validators: list[object] = []

    def add_validators(self, validators: list[object]) -> None:
        self.validators.extend(validators)


def _record(epoch: int, value: object, subkey: bytes = b"owner") -> DHTRecord:
    key = DHTID.generate(source=receipts_key(RUN, epoch)).to_bytes()
    return DHTRecord(key=key, subkey=subkey, value=MSGPackSerializer.dumps(value), expiration_time=0.0)


def test_a_board_installs_nothing_and_the_owner_installs_the_validator_explicitly() -> None:
    dht = RecordingDht()
    board = receipt_board(dht, RUN)
    assert dht.validators == []
    assert board.subkey == RSASignatureValidator().local_public_key  # the process-wide key

    install_receipt_validator(dht, RUN)

    kinds = [type(v) for v in dht.validators]
    assert kinds == [RSASignatureValidator, ReceiptValidator]
    assert dht.validators[1].run_id == RUN  # type: ignore[attr-defined]


def test_the_record_validator_judges_receipt_records_after_pickling() -> None:
    validator = pickle.loads(pickle.dumps(ReceiptValidator(RUN, parse_value, max_epochs=16)))
    honest = to_wire(sign_receipt(KEY, receipt(epoch=3)))

    assert validator.validate(_record(3, honest))
    assert not validator.validate(_record(4, honest))  # filed under another epoch's key
    assert not validator.validate(_record(3, honest, subkey=b""))  # receipts live in per-owner subkeys
    assert not validator.validate(_record(3, {**honest, "samples": honest["samples"] * 2}))  # edited after signing
    assert not validator.validate(_record(3, {**honest, "steps": "four"}))  # breaks the schema
    other_key = DHTID.generate(source="something_else").to_bytes()
    assert validator.validate(DHTRecord(other_key, b"", b"\x00", 0.0))  # not a receipt key: judged by others


def test_open_recorder_signs_with_the_keystore_and_publishes_what_the_spool_held(tmp_path: Path) -> None:
    keystore = tmp_path / "node.key"
    address = make_keystore(keystore)
    key = Account.from_key(b"\x05" * 32)
    left_over = sign_receipt(key, receipt(epoch=1, account=key))
    ReceiptSpool(spool_path(tmp_path / "checkpoint.pt"), str(left_over.receipt.run_id)).save([left_over])
    published: list[SignedReceipt] = []

    rec = open_recorder(RecorderConfig(
        run_id=left_over.receipt.run_id, peer_id=left_over.receipt.peer_id, batch_size=4, n_samples=1000,
        train_bytes=1064, keystore=keystore, password_file=keystore.with_suffix(".pass"),
        checkpoint=tmp_path / "checkpoint.pt"), lambda s, _timeout: published.append(s) or True)

    assert rec.account == address
    assert [s.receipt.digest() for s in published] == [left_over.receipt.digest()]
    assert rec.pending == [] and not spool_path(tmp_path / "checkpoint.pt").exists()
