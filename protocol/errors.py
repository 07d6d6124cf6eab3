"""The error hierarchy: one root, one subclass per domain.

A user-facing error says what was wrong and what to do about it. Domain errors
mix in the stdlib type where it fits (``ConfigError`` is also a ``ValueError``).
"""


class HivenetError(Exception):
    """Root of every error hivenet raises on purpose."""


class ConfigError(HivenetError, ValueError):
    """A configuration value, flag or file is invalid."""


class SwarmError(HivenetError):
    """The peer-to-peer layer could not do what was asked (bootstrap, barrier, averaging)."""


class BootstrapError(SwarmError, ConnectionError):
    """No initial peer answered, or the listen address could not be bound."""


class PeersNotFound(SwarmError, TimeoutError):
    """The expected peers of the run did not appear within the wait timeout."""


class CheckpointError(HivenetError):
    """A checkpoint file is missing pieces, corrupt, or belongs to another model."""


class ShardError(HivenetError):
    """A data shard could not be packed, read, vetted or exchanged."""


class ShardInputError(ShardError, ValueError):
    """Files given to ``shard add`` cannot become a shard (none found, bad encoding, record too large, symlink loop)."""


class ManifestError(ShardError, ValueError):
    """A shard manifest is malformed, of an unknown version, or does not match its content id."""


class ChunkCorrupt(ShardError):
    """One or more chunks do not hash to what the manifest says; ``chunks`` names them."""

    def __init__(self, shard_id: str, chunks: list[int], detail: str = "") -> None:
        self.shard_id = shard_id
        self.chunks = chunks
        shown = ", ".join(map(str, chunks[:20])) + (" ..." if len(chunks) > 20 else "")
        super().__init__(
            f"shard {shard_id[:16]}: chunk(s) {shown} do not match the manifest{': ' + detail if detail else ''}; "
            "remove the shard (`hivenet shard rm`) and fetch or pack it again"
        )


class ShardNotFound(ShardError, KeyError):
    """No shard with this id (or id prefix) is in the local store."""

    def __str__(self) -> str:  # KeyError would print the repr of the message
        return str(self.args[0]) if self.args else "shard not found"


class ShardRejected(ShardError):
    """Vetting did not pass this shard; it must not be trained on."""


class ShardUnavailable(ShardError, ConnectionError):
    """No honest holder could serve a shard (or some of its chunks) within the timeout."""


class IdentityError(HivenetError):
    """The node's keystore (Ethereum account + p2p identity) could not be created or opened."""


class WrongPassword(IdentityError, ValueError):
    """The keystore password is wrong (or the file was tampered with): nothing was decrypted."""


class KeystoreCorrupt(IdentityError, ValueError):
    """The keystore file is not a hivenet keystore or misses fields; restore it from a backup."""


class LedgerError(HivenetError):
    """The ledger (chain connection, contracts, transaction outbox) could not do what was asked."""


class ChainUnavailable(LedgerError, ConnectionError):
    """The chain's JSON-RPC endpoint did not answer after the configured retries.

    Intents already recorded in the outbox stay there and are sent on the next reconcile.
    """


class DeploymentError(LedgerError, ValueError):
    """A deployment file is missing, malformed, or names contracts that are not on this chain."""


class OutboxConflict(LedgerError, ValueError):
    """An idempotency key was reused for a different transaction than the one it first named."""


class ContractRevert(LedgerError):
    """A contract call reverted. Each Solidity custom error has one subclass of this
    (see ``node.ledger.contract_errors``); ``fields`` holds the error's decoded arguments."""

    def __init__(self, message: str, fields: dict[str, object] | None = None) -> None:
        super().__init__(message)
        self.fields: dict[str, object] = dict(fields or {})


class TransactionFailed(ContractRevert):
    """A transaction reverted without a custom error that hivenet knows (e.g. out of gas)."""


class ReceiptTimeout(LedgerError, TimeoutError):
    """A sent transaction got no receipt in time; it stays in the outbox and reconcile finishes it."""
