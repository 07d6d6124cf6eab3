"""``hivenet keys``: the node's encrypted keystore (Ethereum account + p2p identity).

    hivenet keys new --keystore node.key --password-file pw.txt
    hivenet keys show --keystore node.key --json
    hivenet keys export-address --keystore node.key
    hivenet keys export-p2p --keystore node.key --out p2p.id --password-file pw.txt
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from node.cli.common import user_errors

app = typer.Typer(no_args_is_help=True, help="Create and inspect the node's keystore.")

KeystoreOpt = Annotated[Path, typer.Option("--keystore", help="Keystore file.")]
PasswordFileOpt = Annotated[
    Optional[Path], typer.Option("--password-file", help="Read the password from this file (else prompt).")
]


def read_password(password_file: Path | None, confirm: bool = False) -> str:
    """The keystore password: the first line of ``password_file``, or a hidden prompt."""
    if password_file is not None:
        lines = password_file.read_text().splitlines()
        return lines[0] if lines else ""
    return str(typer.prompt("Keystore password", hide_input=True, confirmation_prompt=confirm))


def unlock(keystore: Path, password_file: Path | None):  # type: ignore[no-untyped-def]
    from node.identity import load_keystore

    return load_keystore(keystore, read_password(password_file))


@app.command()
def new(
    keystore: KeystoreOpt = Path("node.key"),
    password_file: PasswordFileOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Create a keystore with a new Ethereum account and a new Ed25519 p2p identity."""
    with user_errors():
        from node.identity import NodeIdentity, save_keystore
        from protocol.errors import IdentityError

        if keystore.exists():
            raise IdentityError(f"{keystore} exists; refusing to overwrite a keystore (choose another --keystore)")
        identity = NodeIdentity.generate()
        save_keystore(identity, keystore, read_password(password_file, confirm=True))
        _print(identity.address, identity.peer_id, keystore, as_json)


@app.command()
def show(keystore: KeystoreOpt = Path("node.key"), as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Show the address and peer id of a keystore (no password needed)."""
    with user_errors():
        from node.identity import read_public

        address, peer_id = read_public(keystore)
        _print(address, peer_id, keystore, as_json)


@app.command("export-address")
def export_address(keystore: KeystoreOpt = Path("node.key")) -> None:
    """Print only the Ethereum address (for scripts)."""
    with user_errors():
        from node.identity import read_public

        typer.echo(read_public(keystore)[0])


@app.command("export-p2p")
def export_p2p(
    out: Annotated[Path, typer.Option("--out", help="Identity file for `hivenet node start --identity`.")],
    keystore: KeystoreOpt = Path("node.key"),
    password_file: PasswordFileOpt = None,
) -> None:
    """Write the p2p private key as the libp2p protobuf file that hivemind's p2pd reads."""
    with user_errors():
        from node.identity import export_p2p_identity

        identity = unlock(keystore, password_file)
        export_p2p_identity(identity, out)
        typer.echo(f"wrote {out} (peer id {identity.peer_id})")


def _print(address: str, peer_id: str, keystore: Path, as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps({"address": address, "peer_id": peer_id, "keystore": str(keystore)}))
    else:
        typer.echo(f"address  {address}\npeer id  {peer_id}\nkeystore {keystore}")
