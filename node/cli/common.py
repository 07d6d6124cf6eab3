"""Helpers shared by command groups: one-line errors, logging, signal handling."""

from __future__ import annotations

import logging
import os
import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import typer

from protocol.errors import HivenetError


def setup_logging(level: str = "INFO", log_file: str | None = None) -> None:
    handlers: list[logging.Handler] = [logging.FileHandler(log_file)] if log_file else [logging.StreamHandler()]
    logging.basicConfig(level=level, handlers=handlers, force=True,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn a HivenetError into one line on stderr and exit status 2."""
    try:
        yield
    except HivenetError as e:
        # One line whatever the message holds: a hostile file name must not forge output lines.
        text = "".join(c if c.isprintable() else ascii(c)[1:-1] for c in str(e))
        typer.echo(f"error: {text}", err=True)
        raise typer.Exit(2) from None


@contextmanager
def graceful_signals(on_first: Callable[[], None], what: str = "stopping") -> Iterator[None]:
    """First SIGINT/SIGTERM calls ``on_first`` (a graceful stop); a second one forces an exit."""
    hits = 0
    owner = os.getpid()

    def handler(signum: int, frame: object) -> None:
        nonlocal hits
        if os.getpid() != owner:  # a forked child (hivemind's DHT, averagers) inherited this handler:
            signal.signal(signum, signal.SIG_DFL)  # behave as if it never had one
            os.kill(os.getpid(), signum)
            return
        hits += 1
        if hits == 1:
            print(f"\n{what} gracefully (press Ctrl-C again to force)", file=sys.stderr)
            on_first()
        else:
            raise KeyboardInterrupt

    old = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)
