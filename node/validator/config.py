"""Frozen configuration of a validator daemon (``hivenet validator start``), the ``[validator]`` section.

What a validator shares with a node is read from the node's sections (``[swarm] run_id`` and
``initial_peers``, ``[ledger] rpc_url`` and ``deployment``, ``[train]`` model shape, ``[status]``,
``[telemetry]``, ``[log]``), so one file serves both roles; this dataclass holds only what a
validator alone needs. It imports nothing heavy: the config layer reads its defaults.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

MODES = ("settle", "watch")
# A node's endpoint takes 8470; a validator on the same machine answers next to it, so that
# `hivenet status` and `hivenet validator status` each find theirs without flags.
DEFAULT_STATUS_PORT = 8471


@dataclass(frozen=True)
class ValidatorDaemonConfig:
    # The validator's own directory: its outbox, settled epochs and verdict/rewards files live here, so a
    # restart resumes where it stopped. One home per validator account and deployment.
    home: Path = Path("validator")
    # The Ethereum account that posts roots and disputes (needs the ledger's VALIDATOR_ROLE and gas).
    keystore: Path | None = None
    password_file: Path | None = None  # first line: the keystore password (None: the empty password)
    # A folder the trainers write epoch-start snapshots to (content-addressed), on one machine; None: fetch
    # each snapshot over P2P from the trainers that hold it (kept in <home>/snapshots). A receipt whose
    # snapshot nobody serves before the deadline is rejected for that epoch.
    snapshot_dir: Path | None = None
    # settle: post each epoch's root | watch: recompute and dispute a posted root that differs from ours.
    mode: str = "settle"
    # Share of receipts recomputed; the pick is seeded by the previous root, so cheaters cannot predict it.
    receipt_probability: float = 1.0
    # Seconds between reads of the DHT's receipts and of the chain; receipts wait an hour there, so a
    # slower validator only settles later, never less.
    poll_interval_s: float = 1.0
    # An epoch is settled once receipts of a later one appear, or once no new receipt of it has come for this
    # many seconds: the run's last epoch has no later one. Long enough for every trainer of an epoch to publish
    # its receipt (they do at the epoch's end); a receipt later still is logged and ignored. 0: never by quiet.
    settle_quiet_s: float = 60.0
