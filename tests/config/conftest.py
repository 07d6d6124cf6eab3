from __future__ import annotations

import os

import pytest


@pytest.fixture(autouse=True)
def no_hivenet_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The runner's own HIVENET_* variables must not leak into what a test builds."""
    for name in list(os.environ):
        if name.startswith("HIVENET_"):
            monkeypatch.delenv(name)
