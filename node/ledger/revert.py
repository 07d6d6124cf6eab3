"""Turns a revert from either backend into the exception class of its Solidity error.

anvil returns the revert data in the JSON-RPC error (web3 raises ``ContractCustomError``
with ``.data``); eth-tester raises ``TransactionFailed("execution reverted: b'...'")``
with the raw bytes in the message. Both end here, in one place.
"""

from __future__ import annotations

import ast
import re
from functools import cache
from typing import Any

from eth_abi import decode
from eth_utils import keccak, to_checksum_address

from node.ledger.artifacts import CONTRACT_NAMES, load_artifact
from node.ledger.contract_errors import BY_NAME
from protocol.errors import ContractRevert, TransactionFailed

_ERROR_STRING = bytes.fromhex("08c379a0")  # Error(string)
_PANIC = bytes.fromhex("4e487b71")  # Panic(uint256)
_BYTES_LITERAL_START = re.compile("b['\"]")


@cache
def _selectors() -> dict[bytes, tuple[str, tuple[str, ...], tuple[str, ...]]]:
    table: dict[bytes, tuple[str, tuple[str, ...], tuple[str, ...]]] = {}
    for contract in CONTRACT_NAMES:
        for entry in load_artifact(contract).abi:
            if entry["type"] != "error":
                continue
            types = tuple(_abi_type(i) for i in entry["inputs"])
            names = tuple(i["name"] for i in entry["inputs"])
            selector = keccak(text=f"{entry['name']}({','.join(types)})")[:4]
            table[selector] = (entry["name"], types, names)
    return table


def _abi_type(item: dict[str, Any]) -> str:
    if item["type"].startswith("tuple"):
        inner = ",".join(_abi_type(c) for c in item["components"])
        return f"({inner}){item['type'][5:]}"
    return str(item["type"])


def known_error_names() -> set[str]:
    return {name for name, _, _ in _selectors().values()}


def revert_data(exc: BaseException) -> bytes | None:
    """The raw revert bytes carried by a web3 or eth-tester exception, if any."""
    data = getattr(exc, "data", None)
    if isinstance(data, str) and data.startswith("0x"):
        return bytes.fromhex(data[2:])
    if isinstance(data, bytes):
        return data
    if isinstance(data, dict) and isinstance(data.get("data"), str):
        return bytes.fromhex(data["data"].removeprefix("0x"))
    for arg in getattr(exc, "args", ()):
        if isinstance(arg, bytes):
            return arg
        if not isinstance(arg, str):
            continue
        if arg.startswith("0x"):
            try:
                return bytes.fromhex(arg[2:])
            except ValueError:
                continue
        # eth-tester: "execution reverted: b'\\xe2Q}?...'" (a Python bytes literal).
        value = _trailing_bytes_literal(arg)
        if value is not None:
            return value
    return None


def _trailing_bytes_literal(text: str) -> bytes | None:
    """The bytes literal that ends ``text``, if one does.

    Tried at every ``b'``/``b"`` from the left: the literal's own body can hold such a pair
    (``\\x0b`` right before a quote byte: about one random address in 160), so the last
    one found is not necessarily where the literal starts.
    """
    for match in _BYTES_LITERAL_START.finditer(text):
        try:
            value = ast.literal_eval(text[match.start() :])
        except (ValueError, SyntaxError):
            continue
        if isinstance(value, bytes):
            return value
    return None


def decode_revert(data: bytes | None, context: str = "") -> ContractRevert:
    """The exception for revert ``data``: a named subclass for known custom errors."""
    prefix = f"{context}: " if context else ""
    if not data:
        return TransactionFailed(f"{prefix}reverted without data (out of gas, or a require without message)")
    selector, body = data[:4], data[4:]
    if selector == _ERROR_STRING:
        (message,) = decode(["string"], body)
        return TransactionFailed(f"{prefix}reverted: {message}", {"message": message})
    if selector == _PANIC:
        (code,) = decode(["uint256"], body)
        return TransactionFailed(f"{prefix}panicked with code {code:#x}", {"code": code})
    known = _selectors().get(selector)
    if known is None:
        return TransactionFailed(f"{prefix}reverted with unknown error data 0x{data.hex()}", {"data": data})
    name, types, names = known
    values = decode(list(types), body)
    fields = {n: _plain(t, v) for n, t, v in zip(names, types, values)}
    shown = ", ".join(f"{n}={_show(v)}" for n, v in fields.items())
    cls = BY_NAME[name]
    hint = (cls.__doc__ or "").split(": ", 1)[1] if ": " in (cls.__doc__ or "") else ""
    return cls(f"{prefix}{name}({shown})" + (f" - {hint}" if hint else ""), fields)


def _plain(kind: str, value: object) -> object:
    if kind == "address" and isinstance(value, str):
        return to_checksum_address(value)
    return value


def _show(value: object) -> str:
    return "0x" + value.hex() if isinstance(value, bytes) else str(value)
