"""Forged receipt records are dropped by every node (acceptance 2).

Node A runs no receipt validator (a malicious or outdated node) and stores, under the
epoch's receipt key, an honest receipt next to forged ones: a bad signature, a value that
breaks the schema, a receipt of another epoch, a receipt edited after signing. Nodes B and C
install the receipt validator: they refuse to store A's forgeries and drop them when A returns
them, so both see exactly the honest receipt.
"""

from __future__ import annotations

from dataclasses import replace

import hivemind
from hivemind.utils import get_dht_time
import pytest
from eth_account import Account
from hivemind.dht.crypto import RSASignatureValidator

from node.swarm.receipt_board import receipts_key
from node.work.board import install_receipt_validator, receipt_board
from node.work.wire import sign_receipt, to_wire
from tests.receipts.test_receipts import receipt

pytestmark = [pytest.mark.swarm]

RUN = "r"


@pytest.mark.timeout(120)
def test_forged_records_are_dropped_by_every_node() -> None:
    rsa = RSASignatureValidator()
    a = hivemind.DHT(start=True, record_validators=[rsa])
    nodes = [a]
    try:
        maddrs = [str(m) for m in a.get_visible_maddrs()]
        b = hivemind.DHT(initial_peers=maddrs, start=True)
        nodes.append(b)
        c = hivemind.DHT(initial_peers=maddrs, start=True)
        nodes.append(c)
        for dht in (b, c):
            install_receipt_validator(dht, RUN)
        boards = [receipt_board(b, RUN), receipt_board(c, RUN)]
        key = Account.from_key(b"\x07" * 32)
        honest = sign_receipt(key, receipt(epoch=3))
        wire = to_wire(honest)
        other_epoch = to_wire(sign_receipt(key, receipt(epoch=4)))
        forged = {
            b"bad-signature": {**wire, "signature": b"\x01" * 65},
            b"bad-schema": {**wire, "steps": "four"},
            b"other-epoch": other_epoch,
            b"edited": {**wire, "samples": wire["samples"] * 2},
            b"not-a-receipt": b"garbage",
        }
        expiration = get_dht_time() + 600
        assert a.store(receipts_key(RUN, 3), wire, expiration, subkey=b"honest" + rsa.local_public_key)
        for name, value in forged.items():
            a.store(receipts_key(RUN, 3), value, expiration, subkey=name + rsa.local_public_key)
        # B itself refuses to accept a forgery even when its own application asks
        assert not b.store(receipts_key(RUN, 3), forged[b"edited"], expiration, subkey=b"mine" + rsa.local_public_key)
        for board, dht in zip(boards, (b, c)):
            found = dht.get(receipts_key(RUN, 3), latest=True)
            assert found is not None and sorted(found.value) == [b"honest" + rsa.local_public_key]
            assert [s.receipt.digest() for s in board.fetch(3)] == [honest.receipt.digest()]
        assert replace(honest.receipt, samples=1).digest() != honest.receipt.digest()
    finally:
        for node in nodes:
            node.shutdown()
