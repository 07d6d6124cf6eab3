"""The node's keystore: one Ethereum account and one Ed25519 p2p identity, encrypted.

The file is JSON. The address and the libp2p peer id are stored in clear so that
``hivenet keys show`` needs no password; the two private keys are encrypted with AES-256-GCM
under a key derived from the password with scrypt, and the clear fields are bound to the
ciphertext as associated data, so editing them makes decryption fail too.

    identity = NodeIdentity.generate()
    save_keystore(identity, Path("node.key"), "password")
    identity = load_keystore(Path("node.key"), "password")
    export_p2p_identity(identity, Path("p2p.id"))   # for hivemind's DHT(identity_path=...)
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt
from eth_account import Account
from eth_account.signers.local import LocalAccount

from protocol.errors import IdentityError, KeystoreCorrupt, WrongPassword

KEYSTORE_FORMAT = "hivenet-keystore"
KEYSTORE_VERSION = 1
_BASE58_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


@dataclass(frozen=True)
class KeystoreConfig:
    """scrypt cost of a new keystore (opening uses the parameters stored in the file)."""

    # 2**15 * 8 * 128 B = 32 MiB of memory per derivation: costly to brute-force, cheap to open once.
    scrypt_n: int = 2**15
    # Block size and parallelism as recommended for interactive logins.
    scrypt_r: int = 8
    scrypt_p: int = 1


def _base58(data: bytes) -> str:
    number = int.from_bytes(data, "big")
    text = ""
    while number:
        number, rest = divmod(number, 58)
        text = _BASE58_ALPHABET[rest] + text
    return "1" * (len(data) - len(data.lstrip(b"\0"))) + text


def libp2p_public_key(public_key: Ed25519PublicKey) -> bytes:
    """The libp2p protobuf ``PublicKey{Type: Ed25519, Data: key}`` bytes."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return b"\x08\x01\x12\x20" + raw


def peer_id_of(public_key: Ed25519PublicKey) -> str:
    """The libp2p peer id (base58, ``12D3KooW...``): an identity multihash of the public key."""
    encoded = libp2p_public_key(public_key)
    return _base58(bytes([0x00, len(encoded)]) + encoded)


@dataclass(frozen=True)
class NodeIdentity:
    """A node's two keys: the Ethereum account (secp256k1) and the p2p key (Ed25519)."""

    eth_private_key: bytes
    p2p_private_key: bytes

    @classmethod
    def generate(cls) -> NodeIdentity:
        return cls(eth_private_key=secrets.token_bytes(32), p2p_private_key=secrets.token_bytes(32))

    @property
    def account(self) -> LocalAccount:
        return Account.from_key(self.eth_private_key)

    @property
    def address(self) -> str:
        return str(self.account.address)

    @property
    def p2p_key(self) -> Ed25519PrivateKey:
        return Ed25519PrivateKey.from_private_bytes(self.p2p_private_key)

    @property
    def peer_public_key(self) -> bytes:
        """The raw 32-byte Ed25519 public key (``peerKey`` in NodeRegistry)."""
        return self.p2p_key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)

    @property
    def peer_id(self) -> str:
        return peer_id_of(self.p2p_key.public_key())

    def sign_p2p(self, message: bytes) -> bytes:
        """An Ed25519 signature of ``message`` by the p2p key (64 bytes)."""
        return self.p2p_key.sign(message)

    def libp2p_private_key(self) -> bytes:
        """The key as libp2p's protobuf ``PrivateKey{Type: Ed25519, Data: seed || public}``,
        the format go-libp2p (and so hivemind's p2pd ``-id`` file) reads."""
        data = self.p2p_private_key + self.peer_public_key
        return b"\x08\x01\x12" + bytes([len(data)]) + data


def _derive(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return Scrypt(salt=salt, length=32, n=n, r=r, p=p).derive(password.encode())


def _header(address: str, peer_id: str) -> dict[str, object]:
    return {"format": KEYSTORE_FORMAT, "version": KEYSTORE_VERSION, "address": address, "peer_id": peer_id}


def _aad(header: dict[str, object]) -> bytes:
    return json.dumps(header, sort_keys=True).encode()


def save_keystore(
    identity: NodeIdentity, path: Path, password: str, config: KeystoreConfig = KeystoreConfig()
) -> None:
    """Writes ``identity`` encrypted under ``password`` to ``path`` (mode 0600, never overwrites)."""
    if not password:
        raise WrongPassword("refusing an empty keystore password; choose one")
    salt, nonce = secrets.token_bytes(16), secrets.token_bytes(12)
    key = _derive(password, salt, config.scrypt_n, config.scrypt_r, config.scrypt_p)
    header = _header(identity.address, identity.peer_id)
    secret = json.dumps({"eth": identity.eth_private_key.hex(), "p2p": identity.p2p_private_key.hex()}).encode()
    document = {
        **header,
        "kdf": {"name": "scrypt", "salt": salt.hex(), "n": config.scrypt_n, "r": config.scrypt_r, "p": config.scrypt_p},
        "cipher": {"name": "aes-256-gcm", "nonce": nonce.hex()},
        "ciphertext": AESGCM(key).encrypt(nonce, secret, _aad(header)).hex(),
    }
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise IdentityError(f"{path} exists; refusing to overwrite a keystore") from None
    with os.fdopen(fd, "w") as file:
        json.dump(document, file, indent=2)


def read_public(path: Path) -> tuple[str, str]:
    """The clear ``(address, peer_id)`` of a keystore, without the password."""
    document = _read(path)
    return str(document["address"]), str(document["peer_id"])


def load_keystore(path: Path, password: str) -> NodeIdentity:
    """Decrypts the keystore at ``path``; raises :class:`WrongPassword` if ``password`` is wrong."""
    document = _read(path)
    try:
        kdf, cipher = document["kdf"], document["cipher"]
        header = _header(str(document["address"]), str(document["peer_id"]))
        key = _derive(password, bytes.fromhex(kdf["salt"]), int(kdf["n"]), int(kdf["r"]), int(kdf["p"]))
        nonce, ciphertext = bytes.fromhex(cipher["nonce"]), bytes.fromhex(document["ciphertext"])
    except (KeyError, TypeError, ValueError) as exc:
        raise KeystoreCorrupt(f"{path} is missing or has malformed keystore fields: {exc}") from exc
    try:
        secret = json.loads(AESGCM(key).decrypt(nonce, ciphertext, _aad(header)))
    except InvalidTag:
        raise WrongPassword(f"wrong password for keystore {path} (or the file was modified)") from None
    identity = NodeIdentity(bytes.fromhex(secret["eth"]), bytes.fromhex(secret["p2p"]))
    if identity.address != header["address"] or identity.peer_id != header["peer_id"]:
        raise KeystoreCorrupt(f"{path}: decrypted keys do not match the stored address and peer id")
    return identity


def export_p2p_identity(identity: NodeIdentity, path: Path) -> None:
    """Writes the p2p key where hivemind's ``DHT(identity_path=path)`` reads it (mode 0400).

    hivemind's ``check_if_identity_free`` check only parses RSA keys: pass
    ``check_if_identity_free=False`` with this Ed25519 identity.
    """
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o400)
    except FileExistsError:
        raise IdentityError(f"{path} exists; refusing to overwrite an identity file") from None
    with os.fdopen(fd, "wb") as file:
        file.write(identity.libp2p_private_key())


def _read(path: Path) -> dict[str, Any]:
    try:
        document = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise KeystoreCorrupt(f"no keystore at {path}; create one with `hivenet keys new`") from None
    except (OSError, ValueError) as exc:
        raise KeystoreCorrupt(f"{path} is not a readable JSON keystore: {exc}") from exc
    if not isinstance(document, dict) or document.get("format") != KEYSTORE_FORMAT:
        raise KeystoreCorrupt(f"{path} is not a hivenet keystore")
    if document.get("version") != KEYSTORE_VERSION:
        raise KeystoreCorrupt(f"{path} has keystore version {document.get('version')}, expected {KEYSTORE_VERSION}")
    return document
