"""Frozen configuration of the ledger client and of a fresh deployment."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class LedgerConfig:
    """How the client reaches a chain and how patiently it sends."""

    # None runs the embedded chain (eth-tester + py-evm) inside this process; a URL
    # (anvil, a testnet, a real node) is reached over JSON-RPC by any process.
    rpc_url: str | None = None
    # SQLite file of the transaction outbox; None keeps it in memory (tests, embedded demos).
    outbox_path: Path | None = None
    # Seconds one JSON-RPC request may take before it counts as a failed attempt.
    request_timeout_s: float = 10.0
    # Attempts per RPC call while the node is unreachable, with exponential backoff
    # between them; after the last one the call raises ChainUnavailable.
    retry_attempts: int = 5
    retry_initial_backoff_s: float = 0.2
    retry_max_backoff_s: float = 5.0
    # How long to wait for a receipt before leaving the transaction to reconcile.
    receipt_timeout_s: float = 30.0
    # Receipt polling period; anvil mines in milliseconds, so keep it short.
    poll_interval_s: float = 0.05
    # Gas limit = estimate * margin: estimates are exact at the estimated state only.
    gas_margin: float = 1.25


@dataclass(frozen=True)
class DeployConfig:
    """Parameters of the four contracts, fixed at deployment."""

    token_name: str = "Hivenet Reward"
    token_symbol: str = "HIVE"
    # Seconds a posted epoch root can be disputed before anyone may finalize it.
    challenge_window_s: int = 3600
    # Distinct validators that must post the same (epoch, root, total) before it can become final.
    # 1 suits only a deployment with one validator (the local testnet and demo); with several
    # validators set it to a majority, or one key can settle any root. Governance may change it
    # later, after the ledger's QUORUM_CHANGE_DELAY.
    root_quorum: int = 1
    # Most one epoch may raise the cumulative reward total by (token base units). The default
    # bounds nothing beyond the funded pool, which finalization also enforces; a production
    # deployment sets it to its per-epoch emission.
    max_epoch_increase: int = 2**128 - 1
    # Stake (token base units) before a node may request its peer binding.
    min_stake: int = 100 * 10**18
    # Seconds between requesting an unbond and withdrawing it, so slashing can still reach it.
    unbonding_delay_s: int = 7 * 24 * 3600
    # Upper bound of one slash, in basis points of the node's stake.
    max_slash_bps: int = 1000
    # Validator votes needed to revoke a shard without its owner.
    revoke_quorum: int = 2
