"""What a run operator does on the chain besides deploying: fund the reward pool, grant validators, hand out gas.

    wei = parse_amount("1000.5", "--amount")           # whole tokens (18 decimals) -> base units
    funded = fund_pool(client, wei)                     # the admin mints (what it lacks) and funds the ledger
    grant_validators(client, ["0x..."])                 # VALIDATOR_ROLE on the three contracts
    dev_faucet(chain, ["0x..."], parse_amount("10", "--eth"))   # anvil's unlocked account pays

``hivenet ledger fund|grant-validator|faucet`` (``node.cli.ledger_cmd``) are the commands around these.
Every check that can fail runs before the first transaction, so a refused command leaves the chain as it was.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal, InvalidOperation

from eth_utils import is_hex_address
from web3 import Web3
from web3.exceptions import Web3Exception

from node.ledger.chain import Chain
from node.ledger.client import VALIDATOR_ROLE, LedgerClient
from protocol.errors import ConfigError, LedgerError

DECIMALS = 18  # RewardToken's and ether's
MINTER_ROLE = Web3.keccak(text="MINTER_ROLE")
ROLE_CONTRACTS = ("NodeRegistry", "ShardRegistry", "ContributionLedger")


def parse_amount(text: str, flag: str) -> int:
    """``text`` whole units (a decimal string, at most 18 decimals) in base units; ConfigError names ``flag``."""
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        raise ConfigError(f"{flag} {text!r} is not a number; give whole units, e.g. {flag} 1000 or {flag} 0.5") from None
    if not value.is_finite() or value <= 0:
        raise ConfigError(f"{flag} must be a positive number of whole units, got {text!r}")
    base = value.scaleb(DECIMALS)
    if base != base.to_integral_value():
        raise ConfigError(f"{flag} {text!r} has more than {DECIMALS} decimals")
    return int(base)


def checked_address(text: str, flag: str) -> str:
    if not is_hex_address(text):
        raise ConfigError(f"{flag} {text!r} is not an address (0x and 40 hex digits)")
    return Web3.to_checksum_address(text)


def require_gas(client: LedgerClient) -> None:
    """Refuses early, with the fix, when the account cannot pay for a transaction at all."""
    balance = client.chain.call("balance", lambda: client.chain.w3.eth.get_balance(client.account.address))
    if balance == 0:
        raise LedgerError(f"account {client.address} has no ETH to pay gas on {client.chain.where}; send it some "
                          f"(on a dev chain: hivenet ledger faucet --to {client.address} --eth 10 --rpc URL)")


def fund_pool(client: LedgerClient, amount: int) -> int:
    """Moves ``amount`` into the reward pool from the client's account (it must hold the token's minter role:
    the deployer), minting what its balance lacks; returns the pool's funded total afterwards.

    Minting only the shortfall makes a retry after a half-done call (minted, then the chain went away before
    the transfer) fund with the tokens already minted instead of minting them twice."""
    if not client.has_role("RewardToken", MINTER_ROLE, client.address):
        raise LedgerError(f"account {client.address} may not mint reward tokens (MINTER_ROLE, held by the "
                          "deployer); run `ledger fund` with the keystore that deployed the contracts")
    require_gas(client)
    held = client.token_balance(client.address)
    if held < amount:
        client.mint(client.address, amount - held)
    client.fund(amount)
    return client.totals()[0]


def grant_validators(client: LedgerClient, accounts: Sequence[str]) -> None:
    """VALIDATOR_ROLE on NodeRegistry, ShardRegistry and ContributionLedger for each account (the admin's call;
    granting a role already held changes nothing)."""
    require_gas(client)
    for account in accounts:
        client.grant_validator(account)


def is_validator(client: LedgerClient, account: str) -> dict[str, bool]:
    """Whether ``account`` holds VALIDATOR_ROLE, per contract."""
    return {name: client.has_role(name, VALIDATOR_ROLE, account) for name in ROLE_CONTRACTS}


def dev_faucet(chain: Chain, accounts: Sequence[str], wei: int) -> dict[str, int]:
    """Sends ``wei`` to each account from the node's first unlocked account; returns their balances after.

    Only development chains (anvil, eth-tester) have such an account: elsewhere this raises a LedgerError
    that says so, before anything is sent."""
    unlocked = chain.call("accounts", lambda: chain.w3.eth.accounts)
    if not unlocked:
        raise LedgerError(f"{chain.where} has no unlocked dev account (eth_accounts is empty): `ledger faucet` "
                          "works on development chains (anvil) only; send ETH from a funded wallet instead")
    for account in accounts:
        try:
            chain.faucet(account, wei)
        except (ValueError, Web3Exception) as exc:  # the node refused the dev account's transfer
            raise LedgerError(f"faucet transfer to {account} refused by {chain.where}: {exc}") from exc
    return {a: int(chain.call("balance", lambda a=a: chain.w3.eth.get_balance(a))) for a in accounts}
