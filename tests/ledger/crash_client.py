"""Subprocess of test_outbox_recovery.py: posts one epoch root and SIGKILLs itself right
after broadcasting the signed transaction, before it can see the receipt.

    python crash_client.py RPC_URL OUTBOX DEPLOYMENT KEY_FILE EPOCH ROOT_HEX TOTAL
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

from eth_account import Account

from node.ledger.client import LedgerClient
from node.ledger.config import LedgerConfig
from node.ledger.deployment import Deployment
from node.ledger.sender import TransactionSender


def main() -> None:
    url, outbox, deployment, key_file, epoch, root, total = sys.argv[1:8]
    account = Account.from_key(Path(key_file).read_text().strip())
    config = LedgerConfig(rpc_url=url, outbox_path=Path(outbox), receipt_timeout_s=5)
    client = LedgerClient.open(config, account, Deployment.load(Path(deployment)))
    broadcast = TransactionSender._broadcast

    def broadcast_then_die(self: TransactionSender, intent: object) -> None:
        broadcast(self, intent)  # type: ignore[arg-type]
        os.kill(os.getpid(), signal.SIGKILL)

    TransactionSender._broadcast = broadcast_then_die  # type: ignore[method-assign]
    client.post_epoch(int(epoch), bytes.fromhex(root), int(total))
    raise SystemExit("unreachable: the process should have been killed")


if __name__ == "__main__":
    main()
