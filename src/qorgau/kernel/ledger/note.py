"""C2SP signed notes (Ed25519) and tlog-checkpoint bodies.

Byte-compatible with Go's ``golang.org/x/mod/sumdb/note``:

* signed note = text ending in ``\\n``, a blank line, then one or more lines
  ``— <key name> <base64(4-byte big-endian key hash || 64-byte signature)>\\n``
  (U+2014 EM DASH, space).  The signature covers the text including its final
  newline, not the separating blank line.
* key hash = SHA-256(key name || 0x0A || 0x01 || 32-byte Ed25519 public key)[:4]
* verifier key = ``<name>+<hex8 key hash>+<base64(0x01 || public key)>``
* signer key   = ``PRIVATE+KEY+<name>+<hex8 key hash>+<base64(0x01 || 32-byte seed)>``

Checkpoint body (c2sp.org/tlog-checkpoint)::

    <origin>\\n<tree size, decimal>\\n<base64 root hash>\\n[extension lines\\n]

Every parsing failure raises :class:`NoteError` with a reason.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

__all__ = [
    "ALG_ED25519",
    "Checkpoint",
    "NoteError",
    "Signer",
    "Verifier",
    "format_checkpoint",
    "generate_seed",
    "key_hash",
    "open_checkpoint",
    "open_note",
    "parse_checkpoint",
    "sign_checkpoint",
    "sign_note",
]

ALG_ED25519 = 1
MAX_SIGNATURES = 100  # as Go's note.Open
_SIG_PREFIX = "\u2014 "  # em dash, space
_MAX_TREE_SIZE = (1 << 64) - 1
_DECIMAL = re.compile(r"0|[1-9][0-9]*")
_HEX8 = re.compile(r"[0-9a-fA-F]{8}")


class NoteError(ValueError):
    """Malformed, unverifiable or badly signed note or checkpoint, or a bad key string."""


def _b64decode(text: str) -> bytes:
    """Strict standard, padded base64 (RFC 4648 §4)."""
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError) as exc:
        raise NoteError("invalid base64") from exc


def _b64encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _has_control(text: str) -> bool:
    return any(ord(ch) < 0x20 and ch != "\n" for ch in text)


def _is_valid_name(name: str) -> bool:
    """Non-empty UTF-8 with no Unicode spaces, no plus and no control characters."""
    if not name or "+" in name or _has_control(name) or any(ch.isspace() for ch in name):
        return False
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def key_hash(name: str, public_key: bytes, alg: int = ALG_ED25519) -> int:
    """C2SP key ID as a big-endian uint32: SHA-256(name || 0x0A || alg || key)[:4]."""
    digest = hashlib.sha256(name.encode("utf-8") + b"\n" + bytes([alg]) + public_key).digest()
    return int.from_bytes(digest[:4], "big")


def generate_seed() -> bytes:
    """A fresh random 32-byte Ed25519 seed."""
    return secrets.token_bytes(32)


# --------------------------------------------------------------------------
# Keys


class Verifier:
    """An Ed25519 note verifier for one (name, key hash)."""

    __slots__ = ("_key", "key_hash", "name", "public_key")

    def __init__(self, name: str, public_key: bytes) -> None:
        if not _is_valid_name(name):
            raise NoteError(f"invalid key name {name!r}")
        public_key = bytes(public_key)
        if len(public_key) != 32:
            raise NoteError("Ed25519 public key must be 32 bytes")
        self.name = name
        self.public_key = public_key
        self.key_hash = key_hash(name, public_key)
        self._key = Ed25519PublicKey.from_public_bytes(public_key)

    @classmethod
    def from_string(cls, vkey: str) -> Verifier:
        """Parse ``<name>+<hex8>+<base64(0x01 || key)>``; the key hash must match."""
        parts = vkey.split("+", 2)
        if len(parts) != 3:
            raise NoteError("malformed verifier key")
        name, hash16, key64 = parts
        if not _HEX8.fullmatch(hash16) or not _is_valid_name(name) or not key64:
            raise NoteError("malformed verifier key")
        raw = _b64decode(key64)
        if len(raw) != 33 or raw[0] != ALG_ED25519:
            raise NoteError("unsupported or malformed verifier key")
        verifier = cls(name, raw[1:])
        if verifier.key_hash != int(hash16, 16):
            raise NoteError("verifier key hash does not match the key")
        return verifier

    @property
    def key_id(self) -> bytes:
        return self.key_hash.to_bytes(4, "big")

    @property
    def verifier_key(self) -> str:
        return f"{self.name}+{self.key_hash:08x}+{_b64encode(bytes([ALG_ED25519]) + self.public_key)}"

    def verify(self, message: bytes, signature: bytes) -> bool:
        try:
            self._key.verify(bytes(signature), bytes(message))
        except (InvalidSignature, ValueError):
            return False
        return True

    def __repr__(self) -> str:
        return f"Verifier({self.verifier_key!r})"


class Signer:
    """An Ed25519 note signer built from a 32-byte seed and a key name."""

    __slots__ = ("_key", "_seed", "key_hash", "name", "public_key")

    def __init__(self, seed: bytes, name: str) -> None:
        if not _is_valid_name(name):
            raise NoteError(f"invalid key name {name!r}")
        seed = bytes(seed)
        if len(seed) != 32:
            raise NoteError("Ed25519 seed must be 32 bytes")
        self._seed = seed
        self._key = Ed25519PrivateKey.from_private_bytes(seed)
        self.name = name
        self.public_key = self._key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        self.key_hash = key_hash(name, self.public_key)

    @classmethod
    def from_string(cls, skey: str) -> Signer:
        """Parse Go's ``PRIVATE+KEY+<name>+<hex8>+<base64(0x01 || seed)>``."""
        parts = skey.split("+", 4)
        if len(parts) != 5 or parts[0] != "PRIVATE" or parts[1] != "KEY":
            raise NoteError("malformed signer key")
        _, _, name, hash16, key64 = parts
        if not _HEX8.fullmatch(hash16) or not _is_valid_name(name) or not key64:
            raise NoteError("malformed signer key")
        raw = _b64decode(key64)
        if len(raw) != 33 or raw[0] != ALG_ED25519:
            raise NoteError("unsupported or malformed signer key")
        signer = cls(raw[1:], name)
        if signer.key_hash != int(hash16, 16):
            raise NoteError("signer key hash does not match the key")
        return signer

    @property
    def key_id(self) -> bytes:
        return self.key_hash.to_bytes(4, "big")

    @property
    def verifier_key(self) -> str:
        return f"{self.name}+{self.key_hash:08x}+{_b64encode(bytes([ALG_ED25519]) + self.public_key)}"

    @property
    def signer_key(self) -> str:
        """Secret: Go-compatible private key string."""
        return f"PRIVATE+KEY+{self.name}+{self.key_hash:08x}+{_b64encode(bytes([ALG_ED25519]) + self._seed)}"

    def verifier(self) -> Verifier:
        return Verifier(self.name, self.public_key)

    def sign(self, message: bytes) -> bytes:
        return self._key.sign(bytes(message))

    def __repr__(self) -> str:
        return f"Signer(name={self.name!r}, key_hash={self.key_hash:08x})"


# --------------------------------------------------------------------------
# Notes


def sign_note(body: str, signers: Signer | Sequence[Signer]) -> str:
    """Sign ``body`` (text ending in a newline) with every signer, in order."""
    if isinstance(signers, Signer):
        signers = [signers]
    if not signers:
        raise NoteError("no signers")
    if not body.endswith("\n") or _has_control(body):
        raise NoteError("malformed note text")
    try:
        msg = body.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise NoteError("note text is not valid UTF-8") from exc
    lines = []
    for s in signers:
        sig = s.key_id + s.sign(msg)
        lines.append(f"{_SIG_PREFIX}{s.name} {_b64encode(sig)}\n")
    return body + "\n" + "".join(lines)


def open_note(note: str | bytes, verifiers: Iterable[Verifier]) -> tuple[str, list[str]]:
    """Parse and verify a signed note; return ``(text, verified key names)``.

    As Go's ``note.Open``: signatures from unknown (name, key hash) pairs are
    ignored; a signature from a known key that fails to verify rejects the
    whole note; a note with no verified signature is rejected; repeated
    signatures by one key are counted once.  Raises :class:`NoteError`.
    """
    if isinstance(note, (bytes, bytearray, memoryview)):
        try:
            note = bytes(note).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise NoteError("malformed note: not UTF-8") from exc
    try:
        note.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise NoteError("malformed note: not UTF-8") from exc
    if _has_control(note):
        raise NoteError("malformed note: control character")

    known: dict[tuple[str, int], list[Verifier]] = {}
    for v in verifiers:
        known.setdefault((v.name, v.key_hash), []).append(v)

    split = note.rfind("\n\n")
    if split < 0:
        raise NoteError("malformed note: no signature block")
    text, sigs = note[: split + 1], note[split + 2 :]
    if not sigs or not sigs.endswith("\n"):
        raise NoteError("malformed note: no signature lines")
    message = text.encode("utf-8")

    verified: list[str] = []
    seen: set[tuple[str, int]] = set()
    lines = sigs[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise NoteError("malformed note: too many signatures")
    for line in lines:
        if not line.startswith(_SIG_PREFIX):
            raise NoteError("malformed note: bad signature line")
        name, _, b64 = line[len(_SIG_PREFIX) :].partition(" ")
        if not _is_valid_name(name) or not b64:
            raise NoteError("malformed note: bad signature line")
        raw = _b64decode(b64)
        if len(raw) < 5:
            raise NoteError("malformed note: short signature")
        khash = int.from_bytes(raw[:4], "big")
        candidates = known.get((name, khash))
        if not candidates:
            continue  # unknown key: ignored
        if len(candidates) > 1:
            raise NoteError(f"ambiguous key {name}+{khash:08x}")
        if (name, khash) in seen:
            continue
        seen.add((name, khash))
        if not candidates[0].verify(message, raw[4:]):
            raise NoteError(f"invalid signature for key {name}+{khash:08x}")
        verified.append(name)
    if not verified:
        raise NoteError("note has no verifiable signatures")
    return text, verified


# --------------------------------------------------------------------------
# Checkpoints


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A tlog-checkpoint body.  ``extensions`` are opaque, non-empty lines; Qorgau writes none."""

    origin: str
    tree_size: int
    root_hash: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.origin, str) or not self.origin or "\n" in self.origin:
            raise NoteError("checkpoint origin must be a non-empty single line")
        if _has_control(self.origin):
            raise NoteError("checkpoint origin contains a control character")
        if (
            not isinstance(self.tree_size, int)
            or isinstance(self.tree_size, bool)
            or not 0 <= self.tree_size <= _MAX_TREE_SIZE
        ):
            raise NoteError("checkpoint tree size must be an unsigned 64-bit integer")
        if not isinstance(self.root_hash, bytes) or len(self.root_hash) != 32:
            raise NoteError("checkpoint root hash must be 32 bytes")
        for ext in self.extensions:
            if not isinstance(ext, str) or not ext or "\n" in ext or _has_control(ext):
                raise NoteError("checkpoint extension lines must be non-empty single lines")


def format_checkpoint(cp: Checkpoint) -> str:
    """The checkpoint note text (ends with a newline)."""
    lines = [cp.origin, str(cp.tree_size), _b64encode(cp.root_hash), *cp.extensions]
    return "".join(line + "\n" for line in lines)


def parse_checkpoint(text: str) -> Checkpoint:
    """Strictly parse a checkpoint note text (not a signed note; see :func:`open_checkpoint`)."""
    if not isinstance(text, str):
        raise NoteError("checkpoint text must be str")
    if not text.endswith("\n"):
        raise NoteError("checkpoint must end with a newline")
    if _has_control(text):
        raise NoteError("checkpoint contains a control character")
    lines = text[:-1].split("\n")
    if len(lines) < 3:
        raise NoteError("checkpoint needs origin, tree size and root hash lines")
    origin, size_text, root_text, *extensions = lines
    if not origin:
        raise NoteError("empty checkpoint origin")
    if not _DECIMAL.fullmatch(size_text):
        raise NoteError(f"malformed tree size {size_text!r}")
    tree_size = int(size_text)
    if tree_size > _MAX_TREE_SIZE:
        raise NoteError("tree size out of range")
    root_hash = _b64decode(root_text)
    if len(root_hash) != 32 or _b64encode(root_hash) != root_text:
        raise NoteError("malformed root hash")
    if any(not ext for ext in extensions):
        raise NoteError("empty checkpoint extension line")
    return Checkpoint(origin, tree_size, root_hash, tuple(extensions))


def sign_checkpoint(cp: Checkpoint, signer: Signer) -> str:
    """Signed checkpoint note; the signer's key name must be the origin."""
    if signer.name != cp.origin:
        raise NoteError("checkpoint signer name must equal the origin")
    return sign_note(format_checkpoint(cp), [signer])


def open_checkpoint(note: str | bytes, verifiers: Iterable[Verifier]) -> Checkpoint:
    """Verify a signed checkpoint: it needs a valid signature by a known key named as its origin."""
    text, names = open_note(note, verifiers)
    cp = parse_checkpoint(text)
    if cp.origin not in names:
        raise NoteError("checkpoint is not signed by its origin's key")
    return cp
