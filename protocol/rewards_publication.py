"""An epoch's rewards tree as published on the network: canonical bytes, content id, strict parse, claim check.

A settling validator publishes, per ledger epoch, every account's cumulative amount and its Merkle proof
(``protocol.rewards_tree``) as one canonical JSON document; its content id is the SHA-256 of those bytes,
so the id commits to the run, the epoch, the root and every leaf. Nobody needs to trust whoever serves it:

1. ``parse(data, expected_id)`` refuses bytes that do not hash to the id, are not the canonical encoding,
   exceed the bounds, carry leaves that do not hash to the root they name, or carry a proof that is not the
   one the leaves give;
2. ``claim_proof(publication, account, chain_epoch, chain_root)`` refuses a tree for another epoch or whose
   root is not the root finalized on chain, and checks the account's proof against the chain's root.

Each refusal is a ``RewardsMismatch`` whose message names what differs. Canonical form::

    {"accounts":[{"account":"0x..","amount":"<decimal>","proof":["<64 hex>",...]},...],
     "format":"hivenet-rewards-tree","ledger_epoch":N,"root":"<64 hex>","run_id":"...","version":1}

(keys sorted, no spaces, accounts lower-case and sorted, amounts decimal strings: uint256 does not fit a
JSON number.) ``sha256sum`` of a saved document prints its id.

    pub = RewardsPublication("demo", 3, RewardsTree.build({"0xab..": 10}))
    data, tree_id = pub.encode(), pub.content_id
    same = parse(data, expected_id=tree_id)
    amount, proof = claim_proof(same, "0xab..", chain_epoch=3, chain_root=root_on_chain)
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

from protocol.errors import LedgerError
from protocol.rewards_tree import RewardsTree, RewardsTreeError, normalize_address, verify

VERSION = 1
FORMAT = "hivenet-rewards-tree"
# Bounds on what a peer may make a claimer download and hash: a proof has about 66 bytes per level, so
# 50 000 accounts (16 levels) take about 6 MB; far above a run's contributors, far below a memory risk.
MAX_ACCOUNTS = 50_000
MAX_TREE_BYTES = 16 * 1024 * 1024
MAX_RUN_ID_CHARS = 128
_HEX32 = re.compile(r"^[0-9a-f]{64}$")
_DECIMAL = re.compile(r"^(0|[1-9][0-9]{0,77})$")  # uint256 has at most 78 digits
_KEYS = {"accounts", "format", "ledger_epoch", "root", "run_id", "version"}
_ACCOUNT_KEYS = {"account", "amount", "proof"}


class RewardsMismatch(LedgerError, ValueError):
    """A published rewards tree is malformed or does not match its id, its own leaves, or the chain's root."""


class RewardsUnavailable(LedgerError, ConnectionError):
    """Nobody announces a rewards tree for the epoch, or no announcer served one in time."""


@dataclass(frozen=True)
class RewardsPublication:
    """What a settling validator publishes for one ledger epoch of a run."""

    run_id: str
    ledger_epoch: int  # the contract's epoch number (training epoch + 1)
    tree: RewardsTree

    def encode(self) -> bytes:
        """The canonical bytes (see the module docstring); the same publication always gives the same bytes."""
        accounts = [{"account": a, "amount": str(v), "proof": [h.hex() for h in self.tree.proof(a)]}
                    for a, v in sorted(self.tree.amounts.items())]
        document = {"accounts": accounts, "format": FORMAT, "ledger_epoch": self.ledger_epoch,
                    "root": self.tree.root.hex(), "run_id": self.run_id, "version": VERSION}
        return _canonical(document)

    @property
    def content_id(self) -> str:
        return content_id(self.encode())

    @property
    def root(self) -> bytes:
        return self.tree.root


def content_id(data: bytes) -> str:
    """The id of published bytes: their SHA-256, in hex."""
    return hashlib.sha256(data).hexdigest()


def _canonical(document: dict[str, Any]) -> bytes:
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def parse(data: bytes, expected_id: str | None = None) -> RewardsPublication:
    """The publication in ``data``, after every check that needs no chain (module docstring, step 1)."""
    if len(data) > MAX_TREE_BYTES:
        raise RewardsMismatch(f"rewards tree of {len(data)} bytes exceeds the limit of {MAX_TREE_BYTES}")
    if expected_id is not None and content_id(data) != expected_id:
        raise RewardsMismatch(f"content id mismatch: the bytes hash to {content_id(data)[:16]}…, "
                              f"not the announced tree id {expected_id[:16]}…")
    try:
        document = json.loads(data)
    except (UnicodeDecodeError, ValueError) as exc:
        raise RewardsMismatch(f"rewards tree is not JSON: {exc}") from None
    run_id, ledger_epoch, root, entries = _fields(document)
    if _canonical(document) != data:
        raise RewardsMismatch("rewards tree is not in canonical form (key order, spacing or escapes differ)")
    amounts = {account: int(amount) for account, amount, _ in entries}
    try:
        tree = RewardsTree.build(amounts)
    except RewardsTreeError as exc:
        raise RewardsMismatch(f"rewards tree leaves are invalid: {exc}") from None
    if tree.root != root:
        raise RewardsMismatch(f"wrong leaves: the accounts and amounts hash to root 0x{tree.root.hex()}, "
                              f"not to the root 0x{root.hex()} the tree names")
    for account, _, proof in entries:
        if proof != tree.proof(account):
            raise RewardsMismatch(f"tampered proof: the proof the tree carries for {account} is not the one its "
                                  f"leaves give for root 0x{root.hex()}")
    return RewardsPublication(run_id, ledger_epoch, tree)


def _fields(document: object) -> tuple[str, int, bytes, list[tuple[str, str, list[bytes]]]]:
    """The typed fields of a decoded document, or RewardsMismatch naming the first bad one."""
    if not isinstance(document, dict) or set(document) != _KEYS:
        raise RewardsMismatch(f"rewards tree must be an object with exactly the keys {sorted(_KEYS)}")
    if document["format"] != FORMAT or document["version"] != VERSION:
        raise RewardsMismatch(f"not a version-{VERSION} {FORMAT} document "
                              f"(format {document['format']!r}, version {document['version']!r})")
    run_id, ledger_epoch, root = document["run_id"], document["ledger_epoch"], document["root"]
    if not isinstance(run_id, str) or not 0 < len(run_id) <= MAX_RUN_ID_CHARS:
        raise RewardsMismatch(f"run_id must be a string of 1..{MAX_RUN_ID_CHARS} characters")
    if type(ledger_epoch) is not int or ledger_epoch < 1:
        raise RewardsMismatch(f"ledger_epoch must be a positive integer, got {ledger_epoch!r}")
    if not isinstance(root, str) or not _HEX32.match(root):
        raise RewardsMismatch("root must be 64 lower-case hex digits")
    accounts = document["accounts"]
    if not isinstance(accounts, list) or not 1 <= len(accounts) <= MAX_ACCOUNTS:
        raise RewardsMismatch(f"accounts must be a list of 1..{MAX_ACCOUNTS} entries")
    entries = []
    for i, entry in enumerate(accounts):
        if not isinstance(entry, dict) or set(entry) != _ACCOUNT_KEYS:
            raise RewardsMismatch(f"account entry {i} must have exactly the keys {sorted(_ACCOUNT_KEYS)}")
        account, amount, proof = entry["account"], entry["amount"], entry["proof"]
        if not isinstance(account, str) or not isinstance(amount, str) or not _DECIMAL.match(amount):
            raise RewardsMismatch(f"account entry {i}: account must be an address and amount a decimal string")
        try:
            if normalize_address(account) != account:
                raise RewardsMismatch(f"account entry {i}: address {account} must be lower-case")
        except RewardsTreeError as exc:
            raise RewardsMismatch(f"account entry {i}: {exc}") from None
        if not isinstance(proof, list) or len(proof) > 64 or not all(isinstance(h, str) and _HEX32.match(h) for h in proof):
            raise RewardsMismatch(f"account entry {i}: proof must be at most 64 hashes of 64 lower-case hex digits")
        entries.append((account, amount, [bytes.fromhex(h) for h in proof]))
    if [e[0] for e in entries] != sorted({e[0] for e in entries}):
        raise RewardsMismatch("accounts must be sorted and listed once each")
    return run_id, ledger_epoch, bytes.fromhex(root), entries


@dataclass(frozen=True)
class ClaimProof:
    """What ``ContributionLedger.claim`` takes, checked against the chain's root."""

    account: str
    amount: int  # cumulative amount of the account in the finalized tree
    proof: list[bytes]


def check_final(publication: RewardsPublication, chain_epoch: int, chain_root: bytes, run_id: str | None = None) -> None:
    """Refuses (RewardsMismatch) a publication that is not the chain's latest finalized tree of the run.

    ``chain_epoch`` and ``chain_root`` are the ledger's latest finalized epoch and its root; ``run_id``, when
    given, must be the publication's.
    """
    if run_id is not None and publication.run_id != run_id:
        raise RewardsMismatch(f"run mismatch: the tree is for run {publication.run_id!r}, not {run_id!r}")
    if publication.ledger_epoch != chain_epoch:
        raise RewardsMismatch(f"epoch mismatch: the tree is for ledger epoch {publication.ledger_epoch}, "
                              f"the chain's latest finalized epoch is {chain_epoch}")
    if publication.root != chain_root:
        raise RewardsMismatch(f"root mismatch: the tree's root 0x{publication.root.hex()} differs from the root "
                              f"0x{chain_root.hex()} finalized on chain for ledger epoch {chain_epoch}")


def claim_proof(publication: RewardsPublication, account: str, chain_epoch: int, chain_root: bytes,
                run_id: str | None = None) -> ClaimProof:
    """The account's claim from ``publication``, refused unless it matches the chain (module docstring, step 2).

    Raises RewardsMismatch naming the mismatch (``check_final``, then the proof against ``chain_root``), or
    RewardsTreeError when the tree is genuine but holds nothing for ``account``.
    """
    check_final(publication, chain_epoch, chain_root, run_id)
    key = normalize_address(account)
    if key not in publication.tree.amounts:
        raise RewardsTreeError(f"account {account} has no rewards in the finalized tree of ledger epoch {chain_epoch}")
    amount, proof = publication.tree.amounts[key], publication.tree.proof(key)
    if not verify(chain_root, key, amount, proof):  # parse() checked the tree; this is what the contract will check
        raise RewardsMismatch(f"tampered proof: the proof for {account} does not lead to the chain's root")
    return ClaimProof(key, amount, proof)
