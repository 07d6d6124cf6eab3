"""Revert data recovered from eth-tester's message, whatever bytes it holds.

Run: .venv/bin/python -m pytest tests/ledger/test_revert_data.py -q
"""

from __future__ import annotations

from eth_abi import encode
from eth_tester.exceptions import TransactionFailed
from hypothesis import example, given
from hypothesis import strategies as st

from node.ledger import contract_errors as ce
from node.ledger.revert import decode_revert, revert_data

INSUFFICIENT_STAKE = bytes.fromhex("9113804f")  # NodeRegistryInsufficientStake(address,uint256,uint256)


@given(st.binary(max_size=200))
@example(b"\x0b'")  # "b'" inside a double-quoted literal
@example(b'\xeb"')  # 'b"' inside a single-quoted literal
@example(b"\x0b'\"")  # both quotes: the literal escapes them
def test_eth_tester_message_gives_back_the_exact_bytes(data: bytes) -> None:
    exc = TransactionFailed(f"execution reverted: {data!r}")

    assert revert_data(exc) == data


def test_custom_error_with_an_address_that_looks_like_a_literal_start_decodes() -> None:
    account = "0x2Db577398ea1514bE8A40B27f3528bf8eBb22Db4"  # holds 0x0b 0x27: "\x0b'" in the repr
    data = INSUFFICIENT_STAKE + encode(["address", "uint256", "uint256"], [account, 0, 100])

    error = decode_revert(revert_data(TransactionFailed(f"execution reverted: {data!r}")))

    assert isinstance(error, ce.NodeRegistryInsufficientStake)
    assert error.fields == {"account": account, "stake": 0, "required": 100}
