"""A testnet peer: ``hivenet node start`` with the testnet's faults injected as hooks.

    python -m node.cli.testnet_peer [--attack NAME] [--slowdown F] [--send-delay S] [--dump-rounds DIR] \\
        [node start options ...]

The testnet supervisor (``node.testnet.peers.PeerProcess``) starts every peer this way. The fault
options belong to this entry point, not to ``hivenet node start``: a production node has no flag,
environment variable or attribute that turns an attack on. They become a ``node.testnet.attacks.Faults``
(a ``node.hooks.Hooks``), handed to the node command through click's context object.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from node.hooks import NO_HOOKS, Hooks


def parse_faults(argv: list[str]) -> tuple[Hooks, list[str]]:
    """The hooks that the fault options ask for, and the remaining arguments (for ``hivenet node start``)."""
    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    parser.add_argument("--attack")
    parser.add_argument("--slowdown", type=float)
    parser.add_argument("--send-delay", type=float)
    parser.add_argument("--dump-rounds", type=Path)
    faults, rest = parser.parse_known_args(argv)
    if faults.attack is None and faults.slowdown is None and faults.send_delay is None and faults.dump_rounds is None:
        return NO_HOOKS, rest
    from node.testnet.attacks import Faults, Slowdown, make_attack

    return Faults(attack=make_attack(faults.attack) if faults.attack else None,
                  slowdown=Slowdown(faults.slowdown) if faults.slowdown else None,
                  send_delay=faults.send_delay or 0.0, round_dump_dir=faults.dump_rounds), rest


def main(argv: list[str] | None = None) -> None:
    from node.cli.app import _register_groups, app

    hooks, rest = parse_faults(sys.argv[1:] if argv is None else argv)
    _register_groups()
    app(args=["node", "start", *rest], obj={"hooks": hooks}, prog_name="hivenet")


if __name__ == "__main__":
    main()
