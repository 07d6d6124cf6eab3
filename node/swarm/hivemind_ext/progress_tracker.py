"""hivemind's progress tracker, extended with the other peers' speeds and a direct read of the swarm's epoch.

Which peer is a straggler and which epoch the swarm is at are decided in ``node.swarm.pace``; this class
feeds those rules from the records hivemind's tracker fetches.
"""

from __future__ import annotations

from typing import Any

from hivemind.optim.progress_tracker import ProgressTracker

from node.swarm.pace import is_straggler, training_epoch, training_progress, trusted_records


class PaceTracker(ProgressTracker):
    """hivemind's progress tracker that also keeps the other peers' last reported speeds."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.other_rates: list[float] = []  # samples/s of every other peer in the last fetch
        super().__init__(*args, **kwargs)  # starts fetching at once

    def _parse_swarm_progress_data(self, metadata: Any) -> Any:
        metadata = trusted_records(metadata)
        if isinstance(metadata, dict):
            me = self.dht.peer_id.to_bytes()
            others = [p for p in map(training_progress, metadata.values()) if p is not None and p.peer_id != me]
            self.other_rates = [float(p.samples_per_second) for p in others]
        return super()._parse_swarm_progress_data(metadata)

    def _read_records(self) -> Any:
        """Every peer's progress record in the DHT now (a dict; None when there is none)."""
        return getattr(self.dht.get(self.training_progress_key, latest=True), "value", None)

    def refresh(self) -> None:
        """Read the swarm's progress from the DHT now, not at the background fetch's next turn (up to 2 s away).
        Not while this peer is in a round: the tracker is paused then (``fetch_swarm_epoch`` reads instead)."""
        records = self._read_records()
        with self.lock_global_progress:
            self.global_progress = self._parse_swarm_progress_data(records)

    def fetch_swarm_epoch(self) -> int | None:
        """The swarm's epoch as the progress records in the DHT say right now (the highest a training peer
        reports, hostile outliers set aside: ``trusted_records``; None: no record), read directly: the tracker
        stops fetching while its peer is in a round (``pause_updates``)."""
        records = trusted_records(self._read_records())
        if not isinstance(records, dict):
            return None
        epochs = [e for e in map(training_epoch, records.values()) if e is not None]
        return max(epochs, default=None)

    def is_straggler(self, own_rate: float) -> bool:
        """This peer, training at ``own_rate`` samples/s, is much slower than the others (see ``is_straggler``).

        Its own rate comes from the caller's median step time, not from this tracker's average: that one counts
        every pause between steps outside a round (start-up, the work at an epoch's end), and a fast peer that
        took it for its pace judged itself a straggler, then stayed one."""
        return is_straggler(own_rate, self.other_rates)
