"""The encrypted keystore and the p2p identity export that hivemind's p2pd reads."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from node.identity import (
    KeystoreConfig,
    NodeIdentity,
    export_p2p_identity,
    load_keystore,
    read_public,
    save_keystore,
)
from protocol.errors import KeystoreCorrupt, WrongPassword

CHEAP = KeystoreConfig(scrypt_n=2**12)


def test_roundtrip_keeps_both_keys(tmp_path: Path) -> None:
    identity = NodeIdentity.generate()
    save_keystore(identity, tmp_path / "k", "correct horse", CHEAP)
    assert load_keystore(tmp_path / "k", "correct horse") == identity
    assert read_public(tmp_path / "k") == (identity.address, identity.peer_id)
    assert identity.peer_id.startswith("12D3KooW")
    assert (tmp_path / "k").stat().st_mode & 0o777 == 0o600
    text = (tmp_path / "k").read_text()
    assert identity.eth_private_key.hex() not in text and identity.p2p_private_key.hex() not in text


def test_wrong_password_is_named_error(tmp_path: Path) -> None:
    save_keystore(NodeIdentity.generate(), tmp_path / "k", "right", CHEAP)
    with pytest.raises(WrongPassword, match="wrong password"):
        load_keystore(tmp_path / "k", "wrong")


def test_edited_clear_fields_are_detected(tmp_path: Path) -> None:
    save_keystore(NodeIdentity.generate(), tmp_path / "k", "pw", CHEAP)
    document = json.loads((tmp_path / "k").read_text())
    document["address"] = "0x" + "00" * 20
    (tmp_path / "k").write_text(json.dumps(document))
    with pytest.raises(WrongPassword):
        load_keystore(tmp_path / "k", "pw")


def test_missing_and_foreign_files_are_named_errors(tmp_path: Path) -> None:
    with pytest.raises(KeystoreCorrupt, match="keys new"):
        load_keystore(tmp_path / "absent", "pw")
    (tmp_path / "other").write_text('{"crypto": {}}')
    with pytest.raises(KeystoreCorrupt, match="not a hivenet keystore"):
        read_public(tmp_path / "other")


@pytest.mark.swarm
def test_exported_identity_gives_the_same_peer_id_in_p2pd(tmp_path: Path) -> None:
    from hivemind.p2p import P2P

    identity = NodeIdentity.generate()
    export_p2p_identity(identity, tmp_path / "p2p.id")

    async def peer_id_from_daemon() -> str:
        p2p = await asyncio.wait_for(
            P2P.create(identity_path=str(tmp_path / "p2p.id"), host_maddrs=["/ip4/127.0.0.1/tcp/0"]), timeout=30
        )
        try:
            return str(p2p.peer_id.to_base58())
        finally:
            await p2p.shutdown()

    assert asyncio.run(peer_id_from_daemon()) == identity.peer_id
