"""EIP-712 typed messages of the hivenet contracts, and their digests in pure Python.

Two messages exist:

* ``RegisterShard`` (ShardRegistry): a data contributor's Ethereum key signs it, and a
  relayer submits it, so the contributor needs no gas. It carries a nonce and a deadline.
* ``PeerBinding`` (NodeRegistry): a node's Ed25519 p2p key signs its digest to prove it
  belongs to the node's Ethereum account (the proof of possession).

Both are bound to the chain id and the verifying contract through the EIP-712 domain.
``typed_data`` gives the dict that wallets and ``eth_account.messages.encode_typed_data``
accept; ``digest`` computes the same 32 bytes here without any Ethereum library.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from eth_hash.auto import keccak

from protocol.errors import HivenetError

DOMAIN_FIELDS: tuple[tuple[str, str], ...] = (
    ("name", "string"),
    ("version", "string"),
    ("chainId", "uint256"),
    ("verifyingContract", "address"),
)

REGISTER_SHARD_FIELDS: tuple[tuple[str, str], ...] = (
    ("root", "bytes32"),
    ("owner", "address"),
    ("license", "string"),
    ("nonce", "uint256"),
    ("deadline", "uint256"),
)

PEER_BINDING_FIELDS: tuple[tuple[str, str], ...] = (
    ("account", "address"),
    ("peerKey", "bytes32"),
)

SHARD_REGISTRY_NAME = "HivenetShardRegistry"
NODE_REGISTRY_NAME = "HivenetNodeRegistry"
VERSION = "1"


class TypedDataError(HivenetError, ValueError):
    """A typed-message field is missing or has a value its type cannot hold."""


@dataclass(frozen=True)
class Domain:
    """The EIP-712 domain: which contract, on which chain, a signature is for."""

    name: str
    chain_id: int
    verifying_contract: str
    version: str = VERSION

    def as_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "version": self.version,
            "chainId": self.chain_id,
            "verifyingContract": self.verifying_contract,
        }


def type_string(primary: str, fields: Sequence[tuple[str, str]]) -> str:
    return f"{primary}(" + ",".join(f"{kind} {name}" for name, kind in fields) + ")"


def type_hash(primary: str, fields: Sequence[tuple[str, str]]) -> bytes:
    return keccak(type_string(primary, fields).encode())


def _encode_value(kind: str, value: object) -> bytes:
    if kind == "string":
        if not isinstance(value, str):
            raise TypedDataError(f"expected a string, got {value!r}")
        return keccak(value.encode())
    if kind == "uint256":
        if not isinstance(value, int) or not 0 <= value < 2**256:
            raise TypedDataError(f"expected a uint256, got {value!r}")
        return value.to_bytes(32, "big")
    if kind == "address":
        text = str(value).lower()
        if not text.startswith("0x") or len(text) != 42:
            raise TypedDataError(f"expected a 20-byte address, got {value!r}")
        return bytes(12) + bytes.fromhex(text[2:])
    if kind == "bytes32":
        raw = bytes.fromhex(value[2:]) if isinstance(value, str) else value
        if not isinstance(raw, bytes) or len(raw) != 32:
            raise TypedDataError(f"expected 32 bytes, got {value!r}")
        return raw
    raise TypedDataError(f"unsupported EIP-712 type {kind}")


def hash_struct(primary: str, fields: Sequence[tuple[str, str]], values: Mapping[str, object]) -> bytes:
    try:
        encoded = b"".join(_encode_value(kind, values[name]) for name, kind in fields)
    except KeyError as exc:
        raise TypedDataError(f"{primary} lacks field {exc.args[0]}") from exc
    return keccak(type_hash(primary, fields) + encoded)


def digest(domain: Domain, primary: str, fields: Sequence[tuple[str, str]], values: Mapping[str, object]) -> bytes:
    """The 32 bytes that get signed: ``keccak256(0x1901 || domainSeparator || structHash)``."""
    separator = hash_struct("EIP712Domain", DOMAIN_FIELDS, domain.as_dict())
    return keccak(b"\x19\x01" + separator + hash_struct(primary, fields, values))


def typed_data(
    domain: Domain, primary: str, fields: Sequence[tuple[str, str]], values: Mapping[str, object]
) -> dict[str, object]:
    """The full EIP-712 JSON structure (for wallets and ``encode_typed_data(full_message=...)``)."""
    return {
        "types": {
            "EIP712Domain": [{"name": n, "type": t} for n, t in DOMAIN_FIELDS],
            primary: [{"name": n, "type": t} for n, t in fields],
        },
        "primaryType": primary,
        "domain": domain.as_dict(),
        "message": dict(values),
    }


def register_shard_values(root: bytes, owner: str, license: str, nonce: int, deadline: int) -> dict[str, object]:
    return {"root": root, "owner": owner, "license": license, "nonce": nonce, "deadline": deadline}


def peer_binding_values(account: str, peer_key: bytes) -> dict[str, object]:
    return {"account": account, "peerKey": peer_key}
