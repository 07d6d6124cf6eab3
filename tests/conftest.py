"""Root of the test suite: the test tiers (tests/tiers.py; docs/testing.md explains them)."""

from tests.tiers import (  # noqa: F401  (pytest finds hooks by name in this module)
    pytest_addoption,
    pytest_collection_modifyitems,
    pytest_runtest_call,
    pytest_runtest_setup,
    pytest_terminal_summary,
)

pytest_plugins = ["pytester"]  # tests/test_tiers.py runs a pytest session inside a test
