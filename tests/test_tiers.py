"""The test tiers (tests/tiers.py): what marks a test fast, and a fast test that starts a process fails.

Run: ``.venv/bin/python -m pytest tests/test_tiers.py``
"""

from __future__ import annotations

import multiprocessing
import subprocess
import sys

import pytest

from tests.tiers import StartGuard, TierViolation, marker_for_command


@pytest.mark.parametrize("args, marker", [
    (["/opt/venv/lib/site-packages/hivemind/hivemind_cli/p2pd", "-listen", "x"], "swarm"),
    (["contracts/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil", "--port", "1"], "chain"),
    (["forge", "test", "--offline"], "chain"),
    (["/usr/sbin/mosquitto", "-c", "m.conf"], "broker"),
    (["chromium", "--headless"], "browser"),
    ([sys.executable, "-m", "node.cli", "init"], "process"),
    ("ps -o stat=", "process"),
])
def test_a_command_is_named_by_what_it_starts(args, marker):
    assert marker_for_command(args)[0] == marker


def test_a_guard_refuses_a_subprocess_before_it_starts_and_names_the_marker():
    with StartGuard("tests/x.py::test_y") as guard, pytest.raises(TierViolation) as refused:
        subprocess.run(["mosquitto", "-c", "m.conf"])
    assert guard.started == [("broker", "mosquitto -c m.conf")]
    message = str(refused.value)
    assert "tests/x.py::test_y" in message and "'mosquitto -c m.conf'" in message and "pytest.mark.broker" in message


def test_a_guard_refuses_a_multiprocessing_process_which_never_runs():
    process = multiprocessing.get_context("spawn").Process(target=print)
    with StartGuard("t") as guard, pytest.raises(TierViolation, match="pytest.mark.process"):
        process.start()
    assert process.pid is None and [m for m, _ in guard.started] == ["process"]


def test_a_guard_that_only_records_lets_the_process_run_and_puts_everything_back():
    before = (subprocess.Popen._execute_child, multiprocessing.process.BaseProcess.start)  # type: ignore[attr-defined]
    # A guard whose test is marked: the inner guard lets the process through to the outer (recording) one.
    with StartGuard("outer", refuse=False) as outer, StartGuard("inner") as inner:
        with pytest.raises(TierViolation):
            subprocess.run(["anvil"])
    assert inner.started == [("chain", "anvil")] and outer.started == []
    assert (subprocess.Popen._execute_child, multiprocessing.process.BaseProcess.start) == before  # type: ignore[attr-defined]


INNER_TESTS = """
import subprocess

import pytest


def test_unmarked_starts_a_process():
    subprocess.run(["true"], check=True)


def test_unmarked_swallows_the_refusal():
    try:
        subprocess.run(["anvil", "--version"])
    except Exception:
        pass


@pytest.mark.process
def test_marked_may_start_one():
    assert subprocess.run(["true"]).returncode == 0


def test_unmarked_starts_nothing():
    assert sum(range(4)) == 6
"""

INNER_CONFTEST = """
from tests.tiers import (pytest_addoption, pytest_collection_modifyitems, pytest_runtest_call, pytest_runtest_setup,
                         pytest_terminal_summary)
"""


@pytest.fixture
def inner(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeconftest(INNER_CONFTEST)
    pytester.makeini("[pytest]\nmarkers =\n    fast: x\n    process: x\n")
    pytester.makepyfile(test_inner=INNER_TESTS)
    return pytester


@pytest.mark.process  # the inner session's marked test really starts `true`
def test_unmarked_tests_are_fast_and_a_fast_test_that_starts_a_process_fails_with_the_marker_to_add(inner):
    fast = inner.runpytest_inprocess("-m", "fast", "-p", "no:cacheprovider")

    fast.assert_outcomes(passed=1, failed=2, deselected=1)
    fast.stdout.fnmatch_lines([
        "*test_unmarked_starts_a_process*fast tier*started 'true' (process): add pytest.mark.process*",
        "*test_unmarked_swallows_the_refusal*started 'anvil --version' (chain): add pytest.mark.chain*",
    ])
    marked = inner.runpytest_inprocess("-m", "process", "-p", "no:cacheprovider")
    marked.assert_outcomes(passed=1, deselected=3)


@pytest.mark.process  # in audit mode nothing is refused: `true` runs
def test_the_audit_lists_what_each_test_started_and_refuses_nothing(inner):
    audit = inner.runpytest_inprocess("--tier-audit", "-p", "no:cacheprovider")

    audit.assert_outcomes(passed=4)
    audit.stdout.fnmatch_lines([
        "*tier audit*",
        "test_inner.py::test_unmarked_starts_a_process  declared ['fast']  started process: true",
        "test_inner.py::test_unmarked_swallows_the_refusal  declared ['fast']  started chain: anvil --version",
    ])
    assert "test_unmarked_starts_nothing" not in audit.stdout.str().split("tier audit")[1]
