"""The peer id of a p2p identity file, read (or the file created) without importing hivemind.

The daemon names itself in telemetry before torch and hivemind have loaded (seconds on
a busy machine), so that a monitor sees a starting peer at once. The file format is
libp2p's protobuf ``PrivateKey{Type, Data}``, as hivemind's ``P2P.generate_identity``
writes it (RSA, PKCS#1 DER) or as ``node.identity.export_p2p_identity`` does (Ed25519).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_RSA, _ED25519 = 0, 1


def _base58(data: bytes) -> str:
    number, text = int.from_bytes(data, "big"), ""
    while number:
        number, rest = divmod(number, 58)
        text = _ALPHABET[rest] + text
    return "1" * (len(data) - len(data.lstrip(b"\0"))) + text


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _read_varint(data: bytes, i: int) -> tuple[int, int]:
    shift = value = 0
    while True:
        byte = data[i]
        value |= (byte & 0x7F) << shift
        i, shift = i + 1, shift + 7
        if not byte & 0x80:
            return value, i


def _fields(data: bytes) -> tuple[int, bytes]:
    """(key type, key data) of a libp2p PrivateKey protobuf."""
    key_type, key_data, i = -1, b"", 0
    while i < len(data):
        tag, i = _read_varint(data, i)
        if tag == 0x08:
            key_type, i = _read_varint(data, i)
        elif tag == 0x12:
            length, i = _read_varint(data, i)
            key_data, i = data[i:i + length], i + length
        else:
            raise ValueError(f"unexpected protobuf tag {tag}")
    return key_type, key_data


def _peer_id(public_proto: bytes) -> str:
    # libp2p: public keys of at most 42 bytes are inlined (identity multihash), others hashed (sha2-256).
    if len(public_proto) <= 42:
        return _base58(b"\x00" + bytes([len(public_proto)]) + public_proto)
    return _base58(b"\x12\x20" + hashlib.sha256(public_proto).digest())


def peer_id_from_key_file(path: Path) -> str | None:
    """The base58 peer id of the key in ``path``; None when it is missing or not a key this reads."""
    try:
        key_type, key_data = _fields(path.read_bytes())
        if key_type == _ED25519 and len(key_data) == 64:
            return _peer_id(b"\x08\x01\x12\x20" + key_data[32:])
        if key_type == _RSA:
            private = serialization.load_der_private_key(key_data, password=None)
            der = private.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
            return _peer_id(b"\x08\x00\x12" + _varint(len(der)) + der)
    except (OSError, ValueError, IndexError, TypeError):
        return None
    return None


def ensure_key_file(path: Path) -> str | None:
    """Create an RSA identity file like hivemind's (if missing) and return its peer id."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        der = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
            serialization.Encoding.DER, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption())
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process made it first: use theirs
            return peer_id_from_key_file(path)
        with os.fdopen(fd, "wb") as f:
            f.write(b"\x08\x00\x12" + _varint(len(der)) + der)
    return peer_id_from_key_file(path)
