"""Property tests of the cumulative-rewards Merkle tree (OpenZeppelin StandardMerkleTree layout)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol.rewards_tree import RewardsTree, RewardsTreeError, hash_pair, leaf_hash, process_proof, verify

addresses = st.binary(min_size=20, max_size=20).map(lambda b: "0x" + b.hex())
amounts = st.integers(min_value=0, max_value=2**256 - 1)
rewards = st.dictionaries(addresses, amounts, min_size=1, max_size=40)


@settings(max_examples=150, deadline=None)
@given(rewards)
def test_every_account_proves_its_amount(entries: dict[str, int]) -> None:
    tree = RewardsTree.build(entries)
    for account, amount in entries.items():
        assert verify(tree.root, account, amount, tree.proof(account))
        assert tree.amount(account.upper().replace("0X", "0x")) == amount


@settings(max_examples=150, deadline=None)
@given(rewards, st.data())
def test_a_different_amount_or_account_does_not_verify(entries: dict[str, int], data: st.DataObject) -> None:
    tree = RewardsTree.build(entries)
    account = data.draw(st.sampled_from(sorted(entries)))
    amount = entries[account]
    wrong = (amount + 1) % 2**256
    assert not verify(tree.root, account, wrong, tree.proof(account))
    stranger = data.draw(addresses.filter(lambda a: a not in entries))
    assert not verify(tree.root, stranger, amount, tree.proof(account))


@settings(max_examples=100, deadline=None)
@given(rewards, st.randoms())
def test_root_does_not_depend_on_input_order(entries: dict[str, int], rnd) -> None:
    items = list(entries.items())
    rnd.shuffle(items)
    assert RewardsTree.build(dict(items)).root == RewardsTree.build(entries).root


@settings(max_examples=100, deadline=None)
@given(rewards)
def test_proof_length_is_logarithmic(entries: dict[str, int]) -> None:
    tree = RewardsTree.build(entries)
    depth = max(len(tree.proof(a)) for a in entries)
    assert depth <= max(1, (len(entries) - 1).bit_length())


def test_leaf_is_double_hashed_abi_encoding() -> None:
    from eth_hash.auto import keccak

    account, amount = "0x" + "ab" * 20, 10**18
    encoded = bytes(12) + bytes.fromhex("ab" * 20) + amount.to_bytes(32, "big")
    assert leaf_hash(account, amount) == keccak(keccak(encoded))
    tree = RewardsTree.build({account: amount})
    assert tree.root == leaf_hash(account, amount) and tree.proof(account) == []


def test_pair_hash_is_commutative_and_proof_folds() -> None:
    a, b = b"\x01" * 32, b"\x02" * 32
    assert hash_pair(a, b) == hash_pair(b, a)
    assert process_proof(a, [b]) == hash_pair(a, b)


def test_bad_inputs_are_named_errors() -> None:
    with pytest.raises(RewardsTreeError):
        RewardsTree.build({})
    with pytest.raises(RewardsTreeError):
        RewardsTree.build({"0x1234": 1})
    with pytest.raises(RewardsTreeError):
        RewardsTree.build({"0x" + "ab" * 20: -1})
    with pytest.raises(RewardsTreeError):
        RewardsTree.build({"0x" + "ab" * 20: 1, "0x" + "AB" * 20: 2})
    with pytest.raises(RewardsTreeError):
        RewardsTree.build({"0x" + "ab" * 20: 1}).proof("0x" + "cd" * 20)
