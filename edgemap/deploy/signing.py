"""Ed25519 signatures of bundles (via `cryptography`).

The manifest holds the sha256 of every file the bundle uses, so signing the manifest's exact bytes signs
the whole bundle: a changed file fails its hash, a re-hashed manifest fails the signature. The signature
lives beside the manifest in `signature.json` (not listed in the manifest, which it signs):

    {"algorithm": "ed25519", "key_id": "<sha256 of the raw public key, 16 hex>", "signature": "<base64>"}
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from pathlib import Path

from edgemap.core.atomic import write_json
from edgemap.errors import EdgemapError

SIGNATURE_FILE = "signature.json"


def _crypto():  # noqa: ANN202 - the module; imported lazily so that unsigned use needs no cryptography
    try:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ed25519
    except ModuleNotFoundError:
        raise EdgemapError("signed bundles need the 'cryptography' package: pip install cryptography") from None
    return serialization, ed25519


def generate_keypair(private_path: str | Path) -> tuple[Path, Path]:
    """Write a new Ed25519 private key (PEM, mode 0600) and its public key beside it (`<name>.pub`)."""
    serialization, ed25519 = _crypto()
    private_path = Path(private_path)
    public_path = private_path.with_name(private_path.name + ".pub")
    for p in (private_path, public_path):
        if p.exists():
            raise EdgemapError(f"{p}: already exists; refusing to overwrite a key")
    key = ed25519.Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    private_path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    public_path.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                          serialization.PublicFormat.SubjectPublicKeyInfo))
    return private_path, public_path


def _load_key(path: str | Path, private: bool):  # noqa: ANN202 - a cryptography key object
    serialization, ed25519 = _crypto()
    path = Path(path)
    kind = "private" if private else "public"
    if not path.is_file():
        raise EdgemapError(f"{path}: {kind} key file not found")
    try:
        data = path.read_bytes()
        key = (serialization.load_pem_private_key(data, password=None) if private
               else serialization.load_pem_public_key(data))
    except (ValueError, TypeError):
        raise EdgemapError(f"{path}: not a PEM {kind} key without a passphrase "
                           "(make one with `edgemap bundle keygen`)") from None
    want = ed25519.Ed25519PrivateKey if private else ed25519.Ed25519PublicKey
    if not isinstance(key, want):
        raise EdgemapError(f"{path}: not an Ed25519 {kind} key (edgemap signs with Ed25519)")
    return key


def key_id(public_key) -> str:  # noqa: ANN001 - cryptography Ed25519PublicKey
    """A short fingerprint of a public key (names which key signed, for the error messages)."""
    serialization, _ = _crypto()
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def sign_manifest(bundle: Path, raw: bytes, private_key: str | Path) -> Path:
    """Sign `raw` (the manifest's exact bytes) with `private_key` and write the bundle's signature.json.

    edgemap.deploy.bundle.sign_bundle checks the bundle's files first; call that one.
    """
    key = _load_key(private_key, private=True)
    sig = {"algorithm": "ed25519", "key_id": key_id(key.public_key()),
           "signature": base64.b64encode(key.sign(raw)).decode("ascii")}
    target = Path(bundle) / SIGNATURE_FILE
    write_json(target, sig)
    return target


def verify_manifest_bytes(bundle: Path, raw: bytes, public_key: str | Path) -> str:
    """Raise EdgemapError unless `raw` (the manifest's bytes) carries a valid signature by `public_key`;
    returns the key id."""
    from cryptography.exceptions import InvalidSignature

    key = _load_key(public_key, private=False)
    sig_path = bundle / SIGNATURE_FILE
    if not sig_path.is_file() or sig_path.is_symlink():
        raise EdgemapError(f"{bundle}: bundle is not signed (no {SIGNATURE_FILE}); refusing it because a public key "
                           "was given (sign it with `edgemap bundle sign`)")
    try:
        sig = json.loads(sig_path.read_bytes())
        signature = base64.b64decode(sig["signature"], validate=True)
        if sig.get("algorithm") != "ed25519":
            raise ValueError(sig.get("algorithm"))
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        raise EdgemapError(f"{sig_path}: not a valid edgemap Ed25519 signature file; refusing the bundle") from None
    try:
        key.verify(signature, raw)
    except InvalidSignature:
        why = ("the manifest was modified after signing" if sig.get("key_id") == key_id(key) else
               f"signed by another key ({sig.get('key_id')!r}) or modified after signing; checking with {key_id(key)!r}")
        raise EdgemapError(f"{bundle}: signature check failed: {why}; refusing the bundle") from None
    return key_id(key)
