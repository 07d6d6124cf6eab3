"""What a validator daemon keeps on disk so that a restart resumes: ``<home>/journal.json``.

    journal = Journal.open(home / "journal.json", JournalKey(run_id, chain_id, ledger, address, mode))
    journal.record(settlement, posting=True)     # before the root is sent: a crash after it re-posts
    journal.posted_final(ledger_epoch)           # finalized (or disputed): nothing left to do for it

It holds the reward book (next epoch, cumulative rewards, carry, the seed of the next spot check), the
root and total of every settled epoch, the ledger epochs posted but not final, and (watch mode) the
roots still to compare. The file is written whole and atomically (temporary file, fsync, rename), and
always *before* a transaction leaves, so that after a crash at any point the validator either
recomputes an epoch it never sent or finishes sending the root it wrote down; it never settles an
epoch twice. The outbox (``node.ledger.outbox``) makes the send itself idempotent.

A journal belongs to one run, chain, ledger, account and mode: a home reused for another is refused.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from protocol.errors import HivenetError

JOURNAL_VERSION = 1


class JournalError(HivenetError, ValueError):
    """The journal is unreadable or belongs to another run, chain, ledger, account or mode."""


@dataclass(frozen=True)
class JournalKey:
    """What a journal is the journal of; a mismatch means a home reused by mistake."""

    run_id: str
    chain_id: int
    ledger: str  # ContributionLedger address
    address: str  # the validator's account
    mode: str


@dataclass(frozen=True)
class SettledEpoch:
    epoch: int  # training epoch
    ledger_epoch: int
    root: str | None  # 0x-hex, None while nobody has earned anything
    total: int  # cumulative total of the tree
    receipts: int
    checked: int
    rejected: int


@dataclass
class Journal:
    path: Path
    key: JournalKey
    next_epoch: int = 0
    cumulative: dict[str, int] = field(default_factory=dict)
    carry: int = 0
    seed: bytes = b""  # empty: the run's genesis seed
    settled: list[SettledEpoch] = field(default_factory=list)
    posted: list[int] = field(default_factory=list)  # ledger epochs sent (or to send), not final yet
    watching: dict[int, bytes] = field(default_factory=dict)  # watch mode: ledger epoch -> our root, not compared yet

    @classmethod
    def open(cls, path: Path, key: JournalKey) -> Journal:
        """The journal at ``path`` (a fresh one if there is none); JournalError if it is not ``key``'s."""
        if not path.exists():
            return cls(path, key)
        fix = f"move {path} away to start over, or give this validator its own --validator-home"
        try:
            doc = json.loads(path.read_text())
            if doc.get("version") != JOURNAL_VERSION:
                raise JournalError(f"{path} is not a version-{JOURNAL_VERSION} validator journal; {fix}")
            stored = JournalKey(**doc["key"])
            journal = cls(
                path, stored, int(doc["next_epoch"]), {str(a): int(v) for a, v in doc["cumulative"].items()},
                int(doc["carry"]), bytes.fromhex(doc["seed"]), [SettledEpoch(**s) for s in doc["settled"]],
                [int(e) for e in doc["posted"]], {int(e): bytes.fromhex(r) for e, r in doc["watching"].items()})
        except JournalError:
            raise
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
            raise JournalError(f"{path} is not a readable validator journal ({type(e).__name__}: {e}); {fix}") from None
        if stored != key:
            diff = ", ".join(f"{n} {getattr(stored, n)!r} (now {getattr(key, n)!r})"
                             for n in asdict(key) if getattr(stored, n) != getattr(key, n))
            raise JournalError(f"{path} belongs to another validator: {diff}; {fix}")
        return journal

    def save(self) -> None:
        doc: dict[str, Any] = {
            "version": JOURNAL_VERSION, "key": asdict(self.key), "next_epoch": self.next_epoch,
            "cumulative": {a: str(v) for a, v in sorted(self.cumulative.items())}, "carry": str(self.carry),
            "seed": self.seed.hex(), "settled": [asdict(s) for s in self.settled], "posted": self.posted,
            "watching": {str(e): r.hex() for e, r in sorted(self.watching.items())},
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        with open(tmp, "w") as f:
            f.write(json.dumps(doc, indent=1) + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)

    def record(self, epoch: int, next_epoch: int, cumulative: dict[str, int], carry: int, seed: bytes,
               settled: SettledEpoch, posting: bool, watching: bool) -> None:
        """Epoch ``epoch`` is settled (the book moved on); its root is about to be posted or compared."""
        if self.settled and self.settled[-1].epoch >= epoch:
            raise JournalError(f"epoch {epoch} is already in {self.path}; refusing to settle it twice")
        self.next_epoch, self.cumulative, self.carry, self.seed = next_epoch, dict(cumulative), carry, seed
        self.settled.append(settled)
        if posting:
            self.posted.append(settled.ledger_epoch)
        if watching and settled.root is not None:
            self.watching[settled.ledger_epoch] = bytes.fromhex(settled.root[2:])
        self.save()

    def posted_final(self, ledger_epoch: int) -> None:
        if ledger_epoch in self.posted:
            self.posted.remove(ledger_epoch)
            self.save()

    def compared(self, ledger_epoch: int) -> None:
        if self.watching.pop(ledger_epoch, None) is not None:
            self.save()

    def settled_entry(self, ledger_epoch: int) -> SettledEpoch | None:
        return next((s for s in self.settled if s.ledger_epoch == ledger_epoch), None)
