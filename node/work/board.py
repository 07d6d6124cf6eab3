"""The DHT receipt board (``node.swarm.receipt_board``) bound to this package's wire format.

    install_receipt_validator(dht, run_id)       # once, by whoever owns the DHT
    board = receipt_board(dht, run_id)
    board.publish(signed); board.fetch(epoch)
"""

from __future__ import annotations

from typing import Any

from node.swarm.receipt_board import BoardConfig, ReceiptBoard
from node.swarm.receipt_board import install_receipt_validator as _install
from node.work.wire import parse_value, to_wire


def install_receipt_validator(dht: Any, run_id: str, cfg: BoardConfig = BoardConfig()) -> None:
    """Makes ``dht`` refuse and drop receipt records of ``run_id`` that are not well-formed signed receipts."""
    _install(dht, run_id, parse_value, cfg)


def receipt_board(dht: Any, run_id: str, cfg: BoardConfig = BoardConfig()) -> ReceiptBoard:
    """A board that publishes and reads ``run_id``'s receipts in hivenet's wire format; installs nothing."""
    return ReceiptBoard(dht, run_id, to_wire, parse_value, cfg)
