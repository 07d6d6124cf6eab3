"""NodeRegistry and ShardRegistry calls of :class:`~node.ledger.client.LedgerClient`."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from eth_account.messages import encode_typed_data

from protocol import eip712

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount

    from node.identity import NodeIdentity
    from node.ledger.chain import Chain
    from node.ledger.sender import Sent


class RegistryCalls:
    """Mixin: needs ``_send``, ``_read``, ``chain``, ``account`` and ``contract`` from the client."""

    chain: Chain
    account: LocalAccount

    def _send(self, contract: str, fn: str, args: Any, key: str) -> Sent:
        raise NotImplementedError

    def _read(self, contract: str, fn: str, *args: Any) -> Any:
        raise NotImplementedError

    def contract(self, name: str) -> Any:
        raise NotImplementedError

    # -- NodeRegistry -----------------------------------------------------------------

    def stake(self, amount: int, key: str | None = None) -> Sent:
        key = key or f"stake:{uuid.uuid4().hex}"
        registry = str(self.contract("NodeRegistry").address)
        self._send("RewardToken", "approve", [registry, amount], f"{key}:approve")
        return self._send("NodeRegistry", "stake", [amount], key)

    def binding_digest(self, account: str, peer_key: bytes) -> bytes:
        return bytes(self._read("NodeRegistry", "bindingDigest", account, peer_key))

    def request_binding(self, identity: NodeIdentity) -> Sent:
        """Binds this account to ``identity``'s p2p key: the key signs the EIP-712 digest."""
        peer_key = identity.peer_public_key
        domain = eip712.Domain(eip712.NODE_REGISTRY_NAME, self.chain.chain_id(), str(self.contract("NodeRegistry").address))
        digest = eip712.digest(
            domain, "PeerBinding", eip712.PEER_BINDING_FIELDS, eip712.peer_binding_values(self.account.address, peer_key)
        )
        signature = identity.sign_p2p(digest)
        return self._send("NodeRegistry", "requestBinding", [peer_key, signature], f"bind:{self.account.address}:{peer_key.hex()}")

    def verify_binding_request(self, event: dict[str, Any]) -> bool:
        """Whether a ``BindingRequested`` event carries a valid Ed25519 proof of possession."""
        digest = self.binding_digest(event["account"], bytes(event["peerKey"]))
        if digest != bytes(event["digest"]):
            return False
        try:
            Ed25519PublicKey.from_public_bytes(bytes(event["peerKey"])).verify(bytes(event["signature"]), digest)
        except (InvalidSignature, ValueError):
            return False
        return True

    def confirm_binding(self, account: str) -> Sent:
        return self._send("NodeRegistry", "confirmBinding", [account], f"confirm-binding:{account}")

    def request_unbond(self, amount: int, key: str | None = None) -> Sent:
        return self._send("NodeRegistry", "requestUnbond", [amount], key or f"unbond:{uuid.uuid4().hex}")

    def withdraw(self, key: str | None = None) -> Sent:
        return self._send("NodeRegistry", "withdraw", [], key or f"withdraw:{uuid.uuid4().hex}")

    def slash(self, account: str, bps: int, reason: bytes, key: str | None = None) -> Sent:
        return self._send("NodeRegistry", "slash", [account, bps, reason], key or f"slash:{account}:{reason.hex()}")

    def node_info(self, account: str) -> dict[str, Any]:
        stake, unbonding, release_at, bound, peer_key = self._read("NodeRegistry", "nodeOf", account)
        return {
            "stake": int(stake),
            "unbonding": int(unbonding),
            "unbonding_release_at": int(release_at),
            "bound": bool(bound),
            "peer_key": bytes(peer_key),
        }

    # -- ShardRegistry ----------------------------------------------------------------

    def register_shard(self, root: bytes, license: str) -> Sent:
        return self._send("ShardRegistry", "registerShard", [root, license], f"register-shard:{root.hex()}")

    def sign_shard_registration(self, root: bytes, license: str, deadline: int) -> bytes:
        """This account's EIP-712 signature of a registration, for a relayer to submit."""
        registry = self.contract("ShardRegistry")
        nonce = int(self._read("ShardRegistry", "nonces", self.account.address))
        domain = eip712.Domain(eip712.SHARD_REGISTRY_NAME, self.chain.chain_id(), str(registry.address))
        values = eip712.register_shard_values(root, self.account.address, license, nonce, deadline)
        message = encode_typed_data(full_message=eip712.typed_data(domain, "RegisterShard", eip712.REGISTER_SHARD_FIELDS, values))
        return bytes(self.account.sign_message(message).signature)

    def register_shard_by_sig(self, root: bytes, owner: str, license: str, deadline: int, signature: bytes) -> Sent:
        return self._send(
            "ShardRegistry", "registerShardBySig", [root, owner, license, deadline, signature], f"register-shard:{root.hex()}"
        )

    def attest_shard(self, root: bytes, passed: bool, score: int, report_hash: bytes) -> Sent:
        return self._send(
            "ShardRegistry", "attest", [root, passed, score, report_hash], f"attest:{root.hex()}:{self.account.address}"
        )

    def revoke_shard(self, root: bytes) -> Sent:
        return self._send("ShardRegistry", "revoke", [root], f"revoke:{root.hex()}")

    def vote_revoke_shard(self, root: bytes, reason: bytes) -> Sent:
        return self._send("ShardRegistry", "voteRevoke", [root, reason], f"vote-revoke:{root.hex()}:{self.account.address}")

    def shard(self, root: bytes) -> dict[str, Any]:
        owner, registered_at, revoked, passes, fails, votes, license = self._read("ShardRegistry", "shardOf", root)
        return {
            "owner": owner,
            "registered_at": int(registered_at),
            "revoked": bool(revoked),
            "passes": int(passes),
            "fails": int(fails),
            "revoke_votes": int(votes),
            "license": license,
        }
