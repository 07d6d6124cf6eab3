"""SQLite record of every transaction hivenet intends to send.

An intent is written (with its idempotency key) before anything is signed; the signed
raw transaction, its nonce and hash are written and committed before it is broadcast.
So after a crash at any point, :class:`~node.ledger.sender.TransactionSender.reconcile`
knows each intent's state and finishes it without sending it twice.

States: ``new`` (recorded, not signed) -> ``signed`` (raw tx stored, maybe broadcast) ->
``mined`` (receipt status 1) | ``reverted`` (receipt status 0) | ``rejected`` (the
simulation reverted, so it was never sent).
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from protocol.errors import OutboxConflict

PENDING = ("new", "signed")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS intents (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    key TEXT NOT NULL UNIQUE,
    sender TEXT NOT NULL,
    chain_id INTEGER NOT NULL,
    to_addr TEXT,
    data TEXT NOT NULL,
    value TEXT NOT NULL,
    status TEXT NOT NULL,
    nonce INTEGER,
    tx_hash TEXT,
    raw_tx TEXT,
    block INTEGER,
    contract_address TEXT,
    error TEXT,
    error_fields TEXT,
    created REAL NOT NULL,
    updated REAL NOT NULL
)
"""


@dataclass(frozen=True)
class Intent:
    """One row of the outbox."""

    id: int
    key: str
    sender: str
    chain_id: int
    to: str | None
    data: str
    value: int
    status: str
    nonce: int | None
    tx_hash: str | None
    raw_tx: str | None
    block: int | None
    contract_address: str | None
    error: str | None
    error_fields: str | None


class Outbox:
    """The intents table of one SQLite file (or of memory when ``path`` is None)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._db = sqlite3.connect(str(path) if path else ":memory:", isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL" if path else "PRAGMA journal_mode=MEMORY")
        # FULL: a row committed before a broadcast survives a power cut, not only a crash.
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute(_SCHEMA)

    def close(self) -> None:
        self._db.close()

    def record(self, key: str, sender: str, chain_id: int, to: str | None, data: str, value: int) -> Intent:
        """Adds intent ``key``, or returns the existing one if the same transaction was recorded."""
        existing = self.get(key)
        if existing is not None:
            same = (existing.sender, existing.chain_id, existing.to, existing.data, existing.value) == (
                sender,
                chain_id,
                to,
                data,
                value,
            )
            if not same:
                raise OutboxConflict(f"idempotency key {key!r} already names a different transaction")
            return existing
        now = time.time()
        self._db.execute(
            "INSERT INTO intents (key, sender, chain_id, to_addr, data, value, status, created, updated)"
            " VALUES (?, ?, ?, ?, ?, ?, 'new', ?, ?)",
            (key, sender, chain_id, to, data, str(value), now, now),
        )
        return self._require(key)

    def mark_signed(self, key: str, nonce: int, tx_hash: str, raw_tx: str) -> Intent:
        return self._update(key, status="signed", nonce=nonce, tx_hash=tx_hash, raw_tx=raw_tx)

    def mark_done(self, key: str, status: str, block: int, contract_address: str | None) -> Intent:
        return self._update(key, status=status, block=block, contract_address=contract_address)

    def mark_rejected(self, key: str, error: str, fields: dict[str, object]) -> Intent:
        return self._update(key, status="rejected", error=error, error_fields=json.dumps(fields, default=_jsonable))

    def reset(self, key: str) -> Intent:
        """Back to ``new``: its nonce went to another transaction, so it must be signed again."""
        return self._update(key, status="new", nonce=None, tx_hash=None, raw_tx=None)

    def get(self, key: str) -> Intent | None:
        row = self._db.execute(f"SELECT {_COLUMNS} FROM intents WHERE key = ?", (key,)).fetchone()
        return _intent(row) if row else None

    def pending(self, sender: str | None = None) -> list[Intent]:
        query = f"SELECT {_COLUMNS} FROM intents WHERE status IN ('new', 'signed')"
        params: tuple[object, ...] = ()
        if sender is not None:
            query += " AND sender = ?"
            params = (sender,)
        return [_intent(r) for r in self._db.execute(query + " ORDER BY id", params)]

    def all(self) -> list[Intent]:
        return [_intent(r) for r in self._db.execute(f"SELECT {_COLUMNS} FROM intents ORDER BY id")]

    def max_inflight_nonce(self, sender: str, chain_id: int) -> int | None:
        row = self._db.execute(
            "SELECT MAX(nonce) FROM intents WHERE sender = ? AND chain_id = ? AND status = 'signed'",
            (sender, chain_id),
        ).fetchone()
        return None if row[0] is None else int(row[0])

    def _update(self, key: str, **fields: object) -> Intent:
        assignments = ", ".join(f"{name} = ?" for name in fields)
        self._db.execute(
            f"UPDATE intents SET {assignments}, updated = ? WHERE key = ?",
            (*fields.values(), time.time(), key),
        )
        return self._require(key)

    def _require(self, key: str) -> Intent:
        intent = self.get(key)
        if intent is None:
            raise KeyError(key)
        return intent


_COLUMNS = (
    "id, key, sender, chain_id, to_addr, data, value, status, nonce, tx_hash, raw_tx, block,"
    " contract_address, error, error_fields"
)


def _intent(row: tuple[object, ...]) -> Intent:
    values = list(row)
    values[6] = int(str(values[6]))
    return Intent(*values)  # type: ignore[arg-type]


def _jsonable(value: object) -> object:
    return "0x" + value.hex() if isinstance(value, bytes) else str(value)
