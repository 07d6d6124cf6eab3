"""The rewards file a validator publishes per epoch: everyone's cumulative amount.

JSON ``{"version": 1, "epoch": N, "root": "0x...", "cumulative": {"0xaddr": "amount"}}``;
amounts are decimal strings (uint256 does not fit a JSON number). Loading rebuilds the
tree and refuses a file whose root does not match its amounts.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from protocol.errors import LedgerError
from protocol.rewards_tree import RewardsTree, RewardsTreeError

VERSION = 1


class RewardsFileError(LedgerError, ValueError):
    """A rewards file is missing, malformed, or its root does not match its amounts."""


@dataclass(frozen=True)
class EpochRewards:
    epoch: int
    tree: RewardsTree

    def save(self, path: Path) -> None:
        amounts = {account: str(amount) for account, amount in sorted(self.tree.amounts.items())}
        document = {"version": VERSION, "epoch": self.epoch, "root": "0x" + self.tree.root.hex(), "cumulative": amounts}
        path.write_text(json.dumps(document, indent=2) + "\n")

    @classmethod
    def load(cls, path: Path) -> EpochRewards:
        try:
            document = json.loads(Path(path).read_text())
            if document.get("version") != VERSION:
                raise RewardsFileError(f"{path}: unsupported rewards file version {document.get('version')}")
            tree = RewardsTree.build({a: int(v) for a, v in document["cumulative"].items()})
            epoch, root = int(document["epoch"]), str(document["root"])
        except FileNotFoundError:
            raise RewardsFileError(f"no rewards file at {path}") from None
        except (OSError, ValueError, KeyError, TypeError, AttributeError, RewardsTreeError) as exc:
            raise RewardsFileError(f"{path} is not a valid rewards file: {exc}") from exc
        if "0x" + tree.root.hex() != root.lower():
            raise RewardsFileError(f"{path}: root {root} does not match the amounts in the file")
        return cls(epoch, tree)
