"""The pure-Python EIP-712 digests equal eth-account's, for every field value."""

from __future__ import annotations

import pytest
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_utils import keccak
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol import eip712
from protocol.errors import HivenetError

addresses = st.binary(min_size=20, max_size=20).map(lambda b: "0x" + b.hex())
words = st.binary(min_size=32, max_size=32)
uints = st.integers(min_value=0, max_value=2**256 - 1)


def _reference(full: dict) -> bytes:
    signable = encode_typed_data(full_message=full)
    return keccak(b"\x19" + signable.version + signable.header + signable.body)


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 2**64), addresses, words, addresses, st.text(max_size=40), uints, uints)
def test_register_shard_digest_matches_eth_account(chain_id, contract, root, owner, license, nonce, deadline) -> None:
    domain = eip712.Domain(eip712.SHARD_REGISTRY_NAME, chain_id, contract)
    values = eip712.register_shard_values(root, owner, license, nonce, deadline)
    full = eip712.typed_data(domain, "RegisterShard", eip712.REGISTER_SHARD_FIELDS, values)
    assert eip712.digest(domain, "RegisterShard", eip712.REGISTER_SHARD_FIELDS, values) == _reference(full)


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 2**64), addresses, addresses, words)
def test_peer_binding_digest_matches_eth_account(chain_id, contract, account, peer_key) -> None:
    domain = eip712.Domain(eip712.NODE_REGISTRY_NAME, chain_id, contract)
    values = eip712.peer_binding_values(account, peer_key)
    full = eip712.typed_data(domain, "PeerBinding", eip712.PEER_BINDING_FIELDS, values)
    assert eip712.digest(domain, "PeerBinding", eip712.PEER_BINDING_FIELDS, values) == _reference(full)


@settings(max_examples=50, deadline=None)
@given(st.integers(1, 2**32), st.integers(1, 2**32), words)
def test_signature_recovers_only_on_its_own_chain(chain_a, chain_b, root) -> None:
    signer = Account.from_key(b"\x11" * 32)
    contract = "0x" + "cc" * 20
    values = eip712.register_shard_values(root, signer.address, "MIT", 0, 10**10)
    digest_a = eip712.digest(eip712.Domain(eip712.SHARD_REGISTRY_NAME, chain_a, contract), "RegisterShard",
                             eip712.REGISTER_SHARD_FIELDS, values)
    digest_b = eip712.digest(eip712.Domain(eip712.SHARD_REGISTRY_NAME, chain_b, contract), "RegisterShard",
                             eip712.REGISTER_SHARD_FIELDS, values)
    signature = signer.unsafe_sign_hash(digest_a).signature
    assert Account._recover_hash(digest_a, signature=signature) == signer.address
    assert (Account._recover_hash(digest_b, signature=signature) == signer.address) == (chain_a == chain_b)


def test_type_strings_match_the_contracts() -> None:
    assert eip712.type_string("RegisterShard", eip712.REGISTER_SHARD_FIELDS) == (
        "RegisterShard(bytes32 root,address owner,string license,uint256 nonce,uint256 deadline)"
    )
    assert eip712.type_string("PeerBinding", eip712.PEER_BINDING_FIELDS) == "PeerBinding(address account,bytes32 peerKey)"


def test_bad_values_are_named_errors() -> None:
    domain = eip712.Domain(eip712.NODE_REGISTRY_NAME, 1, "0x" + "cc" * 20)
    with pytest.raises(HivenetError):
        eip712.digest(domain, "PeerBinding", eip712.PEER_BINDING_FIELDS, {"account": "0x12", "peerKey": b"\x00" * 32})
    with pytest.raises(HivenetError):
        eip712.digest(domain, "PeerBinding", eip712.PEER_BINDING_FIELDS, {"account": "0x" + "cc" * 20})
