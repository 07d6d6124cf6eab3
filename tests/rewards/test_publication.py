"""Property tests of the published rewards tree: canonical bytes, content id, and every forgery refused by name.

    .venv/bin/python -m pytest tests/rewards/test_publication.py -q
"""

from __future__ import annotations

import hashlib
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol.rewards_publication import (
    MAX_TREE_BYTES,
    RewardsMismatch,
    RewardsPublication,
    claim_proof,
    content_id,
    parse,
)
from protocol.rewards_tree import RewardsTree, RewardsTreeError, verify

addresses = st.binary(min_size=20, max_size=20).map(lambda b: "0x" + b.hex())
amounts = st.integers(min_value=0, max_value=2**256 - 1)
rewards = st.dictionaries(addresses, amounts, min_size=1, max_size=30)
run_ids = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_", min_size=1, max_size=40)
epochs = st.integers(min_value=1, max_value=10**6)


def _document(pub: RewardsPublication) -> dict:
    return json.loads(pub.encode())


def _bytes(document: dict) -> bytes:
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()


@settings(max_examples=100, deadline=None)
@given(run_ids, epochs, rewards)
def test_parse_inverts_encode_and_the_id_is_the_sha256_of_the_bytes(run_id: str, epoch: int, entries: dict) -> None:
    pub = RewardsPublication(run_id, epoch, RewardsTree.build(entries))
    data = pub.encode()
    back = parse(data, expected_id=pub.content_id)
    assert (back.run_id, back.ledger_epoch, back.root, dict(back.tree.amounts)) == (
        run_id, epoch, pub.root, {a.lower(): v for a, v in entries.items()})
    assert back.encode() == data
    assert pub.content_id == hashlib.sha256(data).hexdigest()


@settings(max_examples=60, deadline=None)
@given(rewards, st.randoms())
def test_the_encoding_does_not_depend_on_input_order_or_address_case(entries: dict, rnd) -> None:
    items = list(entries.items())
    rnd.shuffle(items)
    shuffled = {a.upper().replace("0X", "0x") if rnd.random() < 0.5 else a: v for a, v in items}
    assert RewardsPublication("r", 1, RewardsTree.build(shuffled)).encode() == RewardsPublication(
        "r", 1, RewardsTree.build(entries)).encode()


@settings(max_examples=60, deadline=None)
@given(rewards, st.data())
def test_the_genuine_tree_proves_every_account_against_the_chain_root(entries: dict, data: st.DataObject) -> None:
    pub = parse(RewardsPublication("r", 4, RewardsTree.build(entries)).encode())
    account = data.draw(st.sampled_from(sorted(entries)))
    claim = claim_proof(pub, account, chain_epoch=4, chain_root=pub.root, run_id="r")
    assert claim.amount == entries[account] and verify(pub.root, account, claim.amount, claim.proof)


@settings(max_examples=60, deadline=None)
@given(rewards, st.data())
def test_wrong_leaves_under_the_original_root_are_refused(entries: dict, data: st.DataObject) -> None:
    pub = RewardsPublication("r", 2, RewardsTree.build(entries))
    doc = _document(pub)
    i = data.draw(st.integers(0, len(doc["accounts"]) - 1))
    doc["accounts"][i]["amount"] = str((int(doc["accounts"][i]["amount"]) + 1) % 2**256)
    with pytest.raises(RewardsMismatch, match="wrong leaves"):
        parse(_bytes(doc))


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(addresses, amounts, min_size=2, max_size=30), st.data())
def test_a_tampered_proof_is_refused(entries: dict, data: st.DataObject) -> None:
    doc = _document(RewardsPublication("r", 2, RewardsTree.build(entries)))
    entry = doc["accounts"][data.draw(st.integers(0, len(doc["accounts"]) - 1))]
    j = data.draw(st.integers(0, len(entry["proof"]) - 1))
    flipped = bytearray(bytes.fromhex(entry["proof"][j]))
    flipped[data.draw(st.integers(0, 31))] ^= 1 << data.draw(st.integers(0, 7))
    entry["proof"][j] = flipped.hex()
    with pytest.raises(RewardsMismatch, match="tampered proof"):
        parse(_bytes(doc))


@settings(max_examples=60, deadline=None)
@given(rewards, st.binary(min_size=1, max_size=8), st.data())
def test_bytes_that_do_not_hash_to_the_announced_id_are_refused(entries: dict, junk: bytes, data: st.DataObject) -> None:
    pub = RewardsPublication("r", 2, RewardsTree.build(entries))
    good = pub.encode()
    at = data.draw(st.integers(0, len(good)))
    bad = good[:at] + junk + good[at:]
    with pytest.raises(RewardsMismatch, match="content id mismatch"):
        parse(bad, expected_id=pub.content_id)


def test_a_consistent_tree_with_another_root_than_the_chain_is_refused_before_any_claim() -> None:
    honest = RewardsTree.build({"0x" + "11" * 20: 40, "0x" + "22" * 20: 60})
    forged = parse(RewardsPublication("r", 3, RewardsTree.build({"0x" + "11" * 20: 400, "0x" + "22" * 20: 60})).encode())
    with pytest.raises(RewardsMismatch, match="root mismatch") as caught:
        claim_proof(forged, "0x" + "11" * 20, chain_epoch=3, chain_root=honest.root)
    assert honest.root.hex() in str(caught.value) and forged.root.hex() in str(caught.value)


def test_a_tree_of_another_epoch_or_run_is_refused() -> None:
    tree = RewardsTree.build({"0x" + "11" * 20: 40})
    with pytest.raises(RewardsMismatch, match="epoch mismatch"):
        claim_proof(RewardsPublication("r", 2, tree), "0x" + "11" * 20, chain_epoch=3, chain_root=tree.root)
    with pytest.raises(RewardsMismatch, match="run mismatch"):
        claim_proof(RewardsPublication("other", 3, tree), "0x" + "11" * 20, 3, tree.root, run_id="r")


def test_an_account_outside_the_genuine_tree_has_nothing_to_claim() -> None:
    tree = RewardsTree.build({"0x" + "11" * 20: 40})
    with pytest.raises(RewardsTreeError, match="no rewards"):
        claim_proof(RewardsPublication("r", 1, tree), "0x" + "33" * 20, 1, tree.root)


def test_non_canonical_or_malformed_documents_are_refused() -> None:
    pub = RewardsPublication("r", 1, RewardsTree.build({"0x" + "11" * 20: 40, "0x" + "22" * 20: 1}))
    doc = _document(pub)
    spaced = json.dumps(doc, sort_keys=True).encode()  # default separators add spaces
    with pytest.raises(RewardsMismatch, match="canonical"):
        parse(spaced)
    cases = [
        ({**doc, "extra": 1}, "exactly the keys"),
        ({**doc, "version": 2}, "version-1"),
        ({**doc, "ledger_epoch": 0}, "ledger_epoch"),
        ({**doc, "ledger_epoch": True}, "ledger_epoch"),
        ({**doc, "run_id": ""}, "run_id"),
        ({**doc, "root": "0x" + doc["root"][2:]}, "root must be"),
        ({**doc, "accounts": []}, "accounts must be"),
        ({**doc, "accounts": doc["accounts"][::-1]}, "sorted"),
        ({**doc, "accounts": [doc["accounts"][0]] * 2}, "sorted"),
        ({**doc, "accounts": [{**doc["accounts"][0], "amount": 40}] + doc["accounts"][1:]}, "decimal"),
        ({**doc, "accounts": [{**doc["accounts"][0], "amount": "040"}] + doc["accounts"][1:]}, "decimal"),
        ({**doc, "accounts": [{**doc["accounts"][0], "account": doc["accounts"][0]["account"].upper()}]}, "address"),
        ({**doc, "accounts": [{**doc["accounts"][0], "amount": str(2**256)}] + doc["accounts"][1:]}, "uint256"),
    ]
    for document, message in cases:
        with pytest.raises(RewardsMismatch, match=message):
            parse(_bytes(document))
    with pytest.raises(RewardsMismatch, match="not JSON"):
        parse(b"\xff{")
    with pytest.raises(RewardsMismatch, match="exceeds the limit"):
        parse(b" " * (MAX_TREE_BYTES + 1))


def test_content_id_is_plain_sha256_hex() -> None:
    assert content_id(b"") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
