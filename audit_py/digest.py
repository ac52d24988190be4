"""Digests of the chains' heads, to keep outside the database, optionally signed with Ed25519.

A digest file is JSON: {"digest": <audit.digest()>, "signature": {"algorithm": "ed25519",
"public_key": <base64>, "value": <base64>}}; the signature covers the digest written with sorted
keys and no spaces. The private key never enters the database.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey


class DigestError(Exception):
    """A digest file that cannot be trusted: unreadable, or its signature does not verify."""


def _message(digest: dict[str, Any]) -> bytes:
    return json.dumps(digest, sort_keys=True, separators=(",", ":")).encode("utf-8")


def _raw(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def document(digest: dict[str, Any], private_key: Ed25519PrivateKey | None = None) -> dict[str, Any]:
    """The digest file's content, signed when a key is given."""
    if private_key is None:
        return {"digest": digest}
    return {"digest": digest, "signature": {
        "algorithm": "ed25519",
        "public_key": base64.b64encode(_raw(private_key.public_key())).decode(),
        "value": base64.b64encode(private_key.sign(_message(digest))).decode(),
    }}


def read(path: Path, trusted_key: Ed25519PublicKey | None = None) -> tuple[dict[str, Any], str]:
    """The digest of a file, and how far it is to be trusted; DigestError when it must not be."""
    try:
        content = json.loads(path.read_text())
        digest: dict[str, Any] = content["digest"]
        digest["chains"].items()
        signature = content.get("signature")
        embedded = None if signature is None else Ed25519PublicKey.from_public_bytes(
            base64.b64decode(signature["public_key"], validate=True))
        value = None if signature is None else base64.b64decode(signature["value"], validate=True)
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
        raise DigestError(f"{path}: not a digest file ({error})") from error
    if embedded is None or value is None:
        if trusted_key is not None:
            raise DigestError(f"{path}: not signed, but a public key was given")
        return digest, "unsigned: it proves only as much as the place it was kept"
    try:
        embedded.verify(value, _message(digest))
    except InvalidSignature:
        raise DigestError(f"{path}: the signature does not match the digest: the file was altered") from None
    if trusted_key is None:
        return digest, ("signed, but no --public-key was given: a signature checked against the key the file"
                        " carries proves nothing")
    if _raw(embedded) != _raw(trusted_key):
        raise DigestError(f"{path}: signed by another key than the one given: not a digest you took")
    return digest, "signed by the trusted key"


def load_private_key(path: Path) -> Ed25519PrivateKey:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise DigestError(f"{path}: not an Ed25519 private key")
    return key


def load_public_key(path: Path) -> Ed25519PublicKey:
    key = serialization.load_pem_public_key(path.read_bytes())
    if not isinstance(key, Ed25519PublicKey):
        raise DigestError(f"{path}: not an Ed25519 public key")
    return key


def generate_key(path: Path) -> Path:
    """Write a new private key to path (mode 0600) and its public key beside it; return the latter."""
    key = Ed25519PrivateKey.generate()
    path.touch(mode=0o600, exist_ok=False)
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    public = path.with_name(path.name + ".pub")
    public.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                     serialization.PublicFormat.SubjectPublicKeyInfo))
    return public
