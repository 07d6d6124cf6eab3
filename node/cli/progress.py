"""A one-peer live progress line (rich) for ``hivenet node start``."""

from __future__ import annotations

import math
import time

from rich.live import Live
from rich.table import Table

from node.train.loop import PeerStatus


class PeerProgress:
    def __init__(self) -> None:
        self._live = Live(self._render(PeerStatus()), refresh_per_second=4, transient=False)
        self._last = 0.0

    def __enter__(self) -> "PeerProgress":
        self._live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._live.__exit__(*exc)  # type: ignore[arg-type]

    def update(self, s: PeerStatus) -> None:
        now = time.monotonic()
        if now - self._last > 0.2 or s.stage != "training":
            self._last = now
            self._live.update(self._render(s))

    @staticmethod
    def _render(s: PeerStatus) -> Table:
        t = Table(title=f"hivenet peer {s.peer_id[-8:] or '…'}", show_edge=False)
        for col in ("stage", "epoch", "local loss", "val loss", "peers", "rounds", "samples/s"):
            t.add_column(col)
        fmt = lambda v: "-" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.3f}"  # noqa: E731
        t.add_row(s.stage, str(s.epoch), fmt(s.loss), fmt(s.val_loss), str(s.peers), str(s.rounds), f"{s.samples_per_s:.0f}")
        return t
