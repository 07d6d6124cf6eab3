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
