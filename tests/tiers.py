"""Test tiers: the fast tier starts nothing; every other test is marked by what it starts.

The markers (declared in pyproject.toml, explained in docs/testing.md) are ``STARTS`` below plus ``slow``. At
collection a test with none of them gets ``fast``, so ``pytest -m fast`` runs the fast tier. During a fast
test (its fixtures' setup included) starting a subprocess or a multiprocessing process is refused and fails
the test with the marker to add; p2pd, anvil, mosquitto and chromium are recognised by name.

``pytest --tier-audit`` refuses nothing: it runs the tests and lists, per test, what it started against the
markers it has, to choose markers for new tests.

tests/conftest.py imports these hooks; tests/test_tiers.py tests them.
"""

from __future__ import annotations

import multiprocessing.process
import subprocess
from collections.abc import Callable, Generator, Sequence
from typing import Any

import pytest

# marker -> what a test with it starts; a test with none of these (nor ``slow``) is in the fast tier.
STARTS = {
    "swarm": "hivemind DHT / p2pd daemons or peer processes",
    "chain": "anvil, forge, or the embedded chain where it is slow",
    "broker": "mosquitto or the embedded MQTT broker",
    "browser": "chromium",
    "process": "other subprocesses, such as hivenet CLI runs",
}
SLOW = "slow"
FAST = "fast"

# Words in a command line that say which service it starts (checked in this order); anything else is "process".
_COMMAND_MARKERS = (("p2pd", "swarm"), ("anvil", "chain"), ("forge", "chain"), ("solc", "chain"),
                    ("mosquitto", "broker"), ("amqtt", "broker"), ("chromium", "browser"), ("chrome", "browser"))


class TierViolation(RuntimeError):
    """A fast test started a process."""


def marker_for_command(args: str | bytes | Sequence[Any]) -> tuple[str, str]:
    """(marker, command line) of what ``subprocess.Popen(args)`` starts."""
    words = [args] if isinstance(args, (str, bytes)) else list(args)
    line = " ".join(w.decode() if isinstance(w, bytes) else str(w) for w in words)
    lowered = line.lower()
    marker = next((m for word, m in _COMMAND_MARKERS if word in lowered), "process")
    return marker, line


def marker_for_process(process: multiprocessing.process.BaseProcess) -> tuple[str, str]:
    """(marker, description) of a multiprocessing process: hivemind's (DHT, averagers) belong to ``swarm``."""
    cls = type(process)
    marker = "swarm" if cls.__module__.startswith("hivemind") else "process"
    return marker, f"{cls.__module__}.{cls.__qualname__} process"


class StartGuard:
    """While active, records every subprocess and multiprocessing process started, and refuses it if ``refuse``.

    It wraps ``subprocess.Popen._execute_child`` (every ``subprocess`` and asyncio subprocess goes through it)
    and ``multiprocessing.process.BaseProcess.start``; guards nest, the innermost one answers first.
    """

    def __init__(self, test: str, refuse: bool = True) -> None:
        self.test, self.refuse = test, refuse
        self.started: list[tuple[str, str]] = []  # (marker, what) in order
        self._saved: list[tuple[Any, str, Callable[..., Any]]] = []

    def _seen(self, marker: str, what: str) -> None:
        self.started.append((marker, what))
        if self.refuse:
            raise TierViolation(self.message())

    def message(self) -> str:
        markers = sorted({m for m, _ in self.started})
        started = "; ".join(f"{what!r} ({m})" for m, what in self.started)
        marks = ", ".join(f"pytest.mark.{m}" for m in markers)
        return (f"{self.test} is in the fast tier (no marker of what it starts) but started {started}: "
                f"add {marks} to its pytestmark (docs/testing.md lists the markers)")

    def __enter__(self) -> StartGuard:
        guard = self
        execute_child = subprocess.Popen._execute_child  # type: ignore[attr-defined]
        start = multiprocessing.process.BaseProcess.start

        def guarded_execute_child(popen: subprocess.Popen[Any], args: Any, *rest: Any, **kwargs: Any) -> Any:
            guard._seen(*marker_for_command(args))
            return execute_child(popen, args, *rest, **kwargs)

        def guarded_start(process: multiprocessing.process.BaseProcess) -> None:
            guard._seen(*marker_for_process(process))
            start(process)

        self._saved = [(subprocess.Popen, "_execute_child", execute_child),
                       (multiprocessing.process.BaseProcess, "start", start)]
        subprocess.Popen._execute_child = guarded_execute_child  # type: ignore[attr-defined]
        multiprocessing.process.BaseProcess.start = guarded_start  # type: ignore[method-assign]
        return self

    def __exit__(self, *exc: object) -> None:
        for owner, name, original in reversed(self._saved):
            setattr(owner, name, original)
        self._saved = []


def declared_markers(item: pytest.Item) -> set[str]:
    return {m.name for m in item.iter_markers() if m.name in STARTS or m.name == SLOW}


# nodeid -> (markers declared, what it started): the rows of ``--tier-audit``
_AUDIT = pytest.StashKey[dict[str, tuple[set[str], list[tuple[str, str]]]]]()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--tier-audit", action="store_true",
                     help="refuse no process in fast tests; list what each test started against its markers")


@pytest.hookimpl(tryfirst=True)  # before ``-m`` selects: ``-m fast`` must see the marker
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if not declared_markers(item):
            item.add_marker(FAST)


def _guarded(item: pytest.Item) -> Generator[None, Any, Any]:
    audit = item.config.getoption("--tier-audit")
    if not audit and item.get_closest_marker(FAST) is None:
        return (yield)
    guard = StartGuard(item.nodeid, refuse=not audit)
    with guard:
        try:
            result = yield
        except BaseException:
            if guard.started and not audit:  # the test failed, maybe not for this reason: say what it started
                pytest.fail(guard.message(), pytrace=False)
            raise
        finally:
            if audit:
                rows = item.config.stash.setdefault(_AUDIT, {})
                rows.setdefault(item.nodeid, (declared_markers(item), []))[1].extend(guard.started)
    if guard.started and not audit:  # refused, but the test swallowed the error
        pytest.fail(guard.message(), pytrace=False)
    return result


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Generator[None, Any, Any]:
    return (yield from _guarded(item))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, Any, Any]:
    return (yield from _guarded(item))


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    if not config.getoption("--tier-audit"):
        return
    terminalreporter.section("tier audit: tests missing a marker of what they started, or marked but starting nothing")
    for nodeid, (declared, started) in sorted(config.stash.get(_AUDIT, {}).items()):
        needed = {m for m, _ in started}
        # A marked test that started nothing may use an in-process service or a shared fixture's process.
        if needed - declared or (declared - {SLOW} and not started):
            what = "; ".join(sorted({f"{m}: {w[:100]}" for m, w in started})) or "nothing"
            terminalreporter.write_line(f"{nodeid}  declared {sorted(declared) or ['fast']}  started {what}")
