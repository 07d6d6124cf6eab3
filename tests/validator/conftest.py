"""The ledger suite's chain fixtures (embedded eth-tester and anvil), reused here."""

from tests.ledger.conftest import admin, anvil_url, chain, new_client  # noqa: F401
