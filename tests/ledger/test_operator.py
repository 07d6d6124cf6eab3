"""The operator's helpers: token amounts, addresses, the faucet on a chain with no dev account (no chain), and
funding and granting on the ledger suite's chains (embedded and anvil)."""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace

import pytest
from web3 import Web3

from node.ledger.chain import Chain
from node.ledger.client import LedgerClient
from node.ledger.config import LedgerConfig
from node.ledger.operator import (ROLE_CONTRACTS, checked_address, dev_faucet, fund_pool, grant_validators, is_validator,
                                  parse_amount)
from protocol.errors import ConfigError, LedgerError


@pytest.mark.parametrize(("text", "wei"), [("1", 10**18), ("1000.5", 1000 * 10**18 + 5 * 10**17),
                                           ("0.000000000000000001", 1), (" 7 ", 7 * 10**18), ("1e3", 10**21)])
def test_amounts_are_whole_units_with_18_decimals(text: str, wei: int) -> None:
    assert parse_amount(text, "--amount") == wei


@pytest.mark.parametrize(("text", "why"), [("abc", "not a number"), ("", "not a number"), ("0", "positive"),
                                           ("-5", "positive"), ("nan", "positive"), ("inf", "positive"),
                                           ("0.0000000000000000001", "more than 18 decimals")])
def test_bad_amounts_are_refused_naming_the_flag(text: str, why: str) -> None:
    with pytest.raises(ConfigError, match=why) as caught:
        parse_amount(text, "--amount")
    assert "--amount" in str(caught.value)


def test_addresses_are_checked_and_checksummed() -> None:
    assert checked_address("0x" + "ab" * 20, "--to") == Web3.to_checksum_address("0x" + "ab" * 20)
    with pytest.raises(ConfigError, match="--to '0x12' is not an address"):
        checked_address("0x12", "--to")


def test_the_faucet_refuses_a_chain_without_an_unlocked_account() -> None:
    sent: list[str] = []
    chain = Chain(SimpleNamespace(eth=SimpleNamespace(accounts=[])), LedgerConfig(rpc_url="http://node.example:8545"))  # type: ignore[arg-type]
    chain.faucet = lambda address, wei: sent.append(address)  # type: ignore[method-assign]
    with pytest.raises(LedgerError, match="no unlocked dev account .* development chains \\(anvil\\) only"):
        dev_faucet(chain, ["0x" + "11" * 20], 10**18)
    assert sent == []


def test_fund_mints_only_what_the_admin_lacks(admin: LedgerClient, new_client: Callable[..., LedgerClient]) -> None:
    admin.mint(admin.address, 3 * 10**18)  # left over by a call that minted, then lost the chain before funding
    assert fund_pool(admin, 5 * 10**18) == 5 * 10**18
    assert admin.token_balance(admin.address) == 0
    assert int(admin._read("RewardToken", "totalSupply")) == 5 * 10**18  # 2 more minted, not 5
    outsider = new_client(admin.deployment)
    with pytest.raises(LedgerError, match="may not mint reward tokens"):
        fund_pool(outsider, 10**18)
    assert admin.totals() == (5 * 10**18, 0)


def test_grant_validators_gives_the_role_on_every_contract(admin: LedgerClient) -> None:
    account = "0x" + "c3" * 20
    assert not any(is_validator(admin, account).values())
    grant_validators(admin, [account])
    assert is_validator(admin, account) == dict.fromkeys(ROLE_CONTRACTS, True)
