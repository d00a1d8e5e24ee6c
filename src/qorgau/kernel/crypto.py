"""Encryption at rest, keyed hashing and per-recipient sealing.

Everything here composes primitives from ``cryptography`` (AES-256-GCM) and
PyNaCl (X25519 sealed boxes); nothing is home-made.

Envelope encryption
-------------------
Each value is encrypted with its own fresh 256-bit data key.  The data key is
wrapped (AES-256-GCM) under the current key-encryption key (KEK) of a
:class:`KeyRing`.  The result is a single self-contained blob::

    version (1) | kid_len (1) | kid (kid_len, ASCII) | wrap_nonce (12)
    | wrapped_key (48) | data_nonce (12) | ciphertext+tag (>= 16)

The caller's associated data (usually :func:`row_aad`) is authenticated by
both layers: the wrap AAD is ``label | kid | aad`` and the data AAD is
``label | aad`` (length-prefixed, see :func:`_frame`).  A blob, or just its
wrapped key, copied into another row therefore fails to open.

Rotating the key ring adds a new current KEK and keeps the old ones, so old
blobs stay readable; :func:`rewrap` moves a blob to the current KEK without
touching its ciphertext, after which the old KEK can be dropped.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import os
import re
import secrets
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from hashlib import sha256
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from nacl.exceptions import CryptoError
from nacl.public import PrivateKey, PublicKey, SealedBox

__all__ = [
    "BLOB_VERSION",
    "DecryptionError",
    "KeyEncryptionKey",
    "KeyRing",
    "KeyRingError",
    "KeyedHasher",
    "RecipientKeyPair",
    "blob_kid",
    "constant_time_equals",
    "keyed_hash",
    "load_keyring",
    "load_or_create_keyring",
    "open_sealed",
    "random_token",
    "rewrap",
    "row_aad",
    "save_keyring",
    "seal",
    "seal_text",
    "seal_to",
    "unseal",
    "unseal_text",
]

BLOB_VERSION = 1
KEY_BYTES = 32
NONCE_BYTES = 12
TAG_BYTES = 16
WRAPPED_KEY_BYTES = KEY_BYTES + TAG_BYTES
KEYRING_FORMAT_VERSION = 1
MIN_HMAC_SECRET_BYTES = 16
MIN_TOKEN_BYTES = 16

_WRAP_LABEL = b"qorgau.crypto.wrap.v1"
_DATA_LABEL = b"qorgau.crypto.data.v1"
_ROW_LABEL = b"qorgau.crypto.row.v1"
_HASH_LABEL = b"qorgau.crypto.keyed-hash.v1"
_KID_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")


class DecryptionError(Exception):
    """A blob or sealed box could not be opened.

    Deliberately carries no detail: tampering, a wrong AAD, an unknown key id
    and truncation all look the same to the caller (and to any log).
    """

    def __init__(self) -> None:
        super().__init__("decryption failed")


class KeyRingError(ValueError):
    """A key ring (or its serialised form) is malformed or used incorrectly."""


def _frame(*parts: bytes) -> bytes:
    # Length-prefix every part so that no two different part lists encode to
    # the same bytes ("ab" + "c" vs "a" + "bc").
    return b"".join(len(p).to_bytes(4, "big") + p for p in parts)


# --------------------------------------------------------------------------- key ring


def _new_kid() -> str:
    return secrets.token_hex(4)


@dataclass(frozen=True, slots=True)
class KeyEncryptionKey:
    """One KEK: a short id, 32 secret bytes and its creation time (UTC)."""

    kid: str
    key: bytes = field(repr=False)
    created_at: datetime

    def __post_init__(self) -> None:
        if not isinstance(self.kid, str) or not _KID_RE.fullmatch(self.kid):
            raise KeyRingError("kid must be 1-64 characters of [A-Za-z0-9_-]")
        if not isinstance(self.key, bytes) or len(self.key) != KEY_BYTES:
            raise KeyRingError(f"a KEK must be exactly {KEY_BYTES} bytes")
        if self.created_at.tzinfo is None:
            raise KeyRingError("created_at must be timezone-aware")

    @classmethod
    def generate(cls, kid: str | None = None) -> KeyEncryptionKey:
        """Return a new KEK with 32 bytes from the OS CSPRNG."""
        return cls(kid or _new_kid(), secrets.token_bytes(KEY_BYTES), datetime.now(UTC))


@dataclass(frozen=True, slots=True)
class KeyRing:
    """An immutable, ordered set of KEKs; the last one is current.

    Order (oldest first) rather than ``created_at`` decides which key is
    current, so clock skew can never make an older key current again.
    """

    keys: tuple[KeyEncryptionKey, ...]

    def __init__(self, keys: Iterable[KeyEncryptionKey]) -> None:
        keys = tuple(keys)
        if not keys:
            raise KeyRingError("a key ring needs at least one key")
        ids = [k.kid for k in keys]
        if len(set(ids)) != len(ids):
            raise KeyRingError("duplicate kid in key ring")
        object.__setattr__(self, "keys", keys)

    @classmethod
    def generate(cls) -> KeyRing:
        """Return a ring holding one freshly generated KEK."""
        return cls([KeyEncryptionKey.generate()])

    @property
    def current(self) -> KeyEncryptionKey:
        """The newest KEK; :func:`seal` and :func:`rewrap` wrap under it."""
        return self.keys[-1]

    @property
    def ids(self) -> tuple[str, ...]:
        """All key ids, oldest first."""
        return tuple(k.kid for k in self.keys)

    def get(self, kid: str) -> KeyEncryptionKey | None:
        """The KEK with this id, or ``None`` if the ring does not hold it."""
        for k in self.keys:
            if k.kid == kid:
                return k
        return None

    def __contains__(self, kid: object) -> bool:
        return any(k.kid == kid for k in self.keys)

    def __iter__(self) -> Iterator[KeyEncryptionKey]:
        return iter(self.keys)

    def __len__(self) -> int:
        return len(self.keys)

    def rotate(self) -> KeyRing:
        """Return a new ring with a fresh current KEK; all old keys are kept."""
        new = KeyEncryptionKey.generate()
        while new.kid in self:
            new = KeyEncryptionKey.generate()
        return KeyRing([*self.keys, new])

    def without(self, kid: str) -> KeyRing:
        """Return a new ring lacking ``kid``.

        Only safe once every blob under ``kid`` has been :func:`rewrap`-ed.
        The current key cannot be dropped (rotate first).
        """
        if kid not in self:
            raise KeyRingError("no such kid in key ring")
        if kid == self.current.kid:
            raise KeyRingError("cannot drop the current key; rotate first")
        return KeyRing(k for k in self.keys if k.kid != kid)

    def to_json(self) -> str:
        """Serialise the ring (secret material included, base64) to JSON."""
        doc = {
            "version": KEYRING_FORMAT_VERSION,
            "keys": [
                {
                    "kid": k.kid,
                    "key": base64.b64encode(k.key).decode("ascii"),
                    "created_at": k.created_at.isoformat(),
                }
                for k in self.keys
            ],
        }
        return json.dumps(doc, indent=2) + "\n"

    @classmethod
    def from_json(cls, data: str | bytes) -> KeyRing:
        """Parse :meth:`to_json` output; raise :class:`KeyRingError` if malformed."""
        try:
            doc = json.loads(data)
            if doc["version"] != KEYRING_FORMAT_VERSION:
                raise KeyRingError("unsupported key ring format version")
            keys = [
                KeyEncryptionKey(
                    kid=entry["kid"],
                    key=base64.b64decode(entry["key"], validate=True),
                    created_at=datetime.fromisoformat(entry["created_at"]),
                )
                for entry in doc["keys"]
            ]
        except KeyRingError:
            raise
        except (ValueError, KeyError, TypeError, binascii.Error) as exc:
            raise KeyRingError("malformed key ring") from exc
        return cls(keys)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_private_temp(path: Path, data: bytes) -> Path:
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        # The umask could only have narrowed 0o600 (or removed owner bits);
        # pin it exactly so the owner can always read its own key ring.
        os.fchmod(fd, 0o600)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        tmp.unlink(missing_ok=True)
        raise
    os.close(fd)
    return tmp


def save_keyring(path: Path, ring: KeyRing) -> None:
    """Atomically write ``ring`` to ``path`` with mode 0600, replacing any file.

    Readers see either the old file or the new one, never a partial write.
    """
    path = Path(path)
    tmp = _write_private_temp(path, ring.to_json().encode("utf-8"))
    try:
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def load_keyring(path: Path) -> KeyRing:
    """Read a key ring written by :func:`save_keyring`."""
    return KeyRing.from_json(Path(path).read_bytes())


def load_or_create_keyring(path: Path) -> KeyRing:
    """Load the ring at ``path``, creating a new one (mode 0600) if absent.

    Creation never overwrites: if another process creates the file first,
    its ring is loaded and returned, so two processes cannot end up sealing
    under different, partly lost keys.
    """
    path = Path(path)
    if path.exists():
        return load_keyring(path)
    tmp = _write_private_temp(path, KeyRing.generate().to_json().encode("utf-8"))
    try:
        # link() fails if the target exists, unlike replace(): a no-clobber
        # atomic publish of a fully written file.
        os.link(tmp, path)
    except FileExistsError:
        pass
    finally:
        tmp.unlink(missing_ok=True)
    _fsync_dir(path.parent)
    return load_keyring(path)


# --------------------------------------------------------------------------- envelope


def row_aad(table: str, column: str, row_id: str | int) -> bytes:
    """Associated data binding a value to one table, column and row.

    Fields are length-prefixed, so distinct triples never collide.  An int
    row id and its decimal string (``5`` and ``"5"``) denote the same row.
    """
    if isinstance(row_id, bool) or not isinstance(row_id, str | int):
        raise TypeError("row_id must be str or int")
    if not table or not column:
        raise ValueError("table and column must be non-empty")
    return _frame(_ROW_LABEL, table.encode("utf-8"), column.encode("utf-8"), str(row_id).encode("utf-8"))


@dataclass(frozen=True, slots=True)
class _Blob:
    kid: str
    wrap_nonce: bytes
    wrapped_key: bytes
    data_nonce: bytes
    ciphertext: bytes

    def header_and_wrap(self) -> bytes:
        kid = self.kid.encode("ascii")
        return bytes([BLOB_VERSION, len(kid)]) + kid + self.wrap_nonce + self.wrapped_key

    def to_bytes(self) -> bytes:
        return self.header_and_wrap() + self.data_nonce + self.ciphertext


def _parse(blob: bytes) -> _Blob:
    try:
        if not isinstance(blob, bytes | bytearray | memoryview):
            raise DecryptionError
        blob = bytes(blob)
        if len(blob) < 2 or blob[0] != BLOB_VERSION:
            raise DecryptionError
        kid_len = blob[1]
        pos = 2
        kid = blob[pos : pos + kid_len].decode("ascii")
        pos += kid_len
        wrap_nonce = blob[pos : pos + NONCE_BYTES]
        pos += NONCE_BYTES
        wrapped_key = blob[pos : pos + WRAPPED_KEY_BYTES]
        pos += WRAPPED_KEY_BYTES
        data_nonce = blob[pos : pos + NONCE_BYTES]
        pos += NONCE_BYTES
        ciphertext = blob[pos:]
        if len(ciphertext) < TAG_BYTES or not _KID_RE.fullmatch(kid):
            raise DecryptionError
    except UnicodeDecodeError:
        raise DecryptionError from None
    return _Blob(kid, wrap_nonce, wrapped_key, data_nonce, ciphertext)


def _wrap_aad(kid: str, aad: bytes) -> bytes:
    return _frame(_WRAP_LABEL, kid.encode("ascii"), aad)


def _data_aad(aad: bytes) -> bytes:
    return _frame(_DATA_LABEL, aad)


def _unwrap(ring: KeyRing, parsed: _Blob, aad: bytes) -> bytes:
    kek = ring.get(parsed.kid)
    if kek is None:
        raise DecryptionError
    try:
        return AESGCM(kek.key).decrypt(parsed.wrap_nonce, parsed.wrapped_key, _wrap_aad(kek.kid, aad))
    except InvalidTag:
        raise DecryptionError from None


def _wrap(kek: KeyEncryptionKey, data_key: bytes, aad: bytes) -> tuple[bytes, bytes]:
    nonce = secrets.token_bytes(NONCE_BYTES)
    return nonce, AESGCM(kek.key).encrypt(nonce, data_key, _wrap_aad(kek.kid, aad))


def _check_aad(aad: bytes) -> None:
    if not isinstance(aad, bytes):
        raise TypeError("aad must be bytes (see row_aad)")


def seal(ring: KeyRing, plaintext: bytes, aad: bytes) -> bytes:
    """Encrypt ``plaintext`` under a fresh data key wrapped by ``ring.current``.

    The returned blob opens only with :func:`unseal` given a ring holding the
    same KEK and exactly the same ``aad``.  Sealing the same plaintext twice
    yields different blobs.
    """
    _check_aad(aad)
    data_key = AESGCM.generate_key(bit_length=KEY_BYTES * 8)
    data_nonce = secrets.token_bytes(NONCE_BYTES)
    ciphertext = AESGCM(data_key).encrypt(data_nonce, bytes(plaintext), _data_aad(aad))
    kek = ring.current
    wrap_nonce, wrapped_key = _wrap(kek, data_key, aad)
    return _Blob(kek.kid, wrap_nonce, wrapped_key, data_nonce, ciphertext).to_bytes()


def unseal(ring: KeyRing, blob: bytes, aad: bytes) -> bytes:
    """Return the plaintext of a :func:`seal` blob.

    Raises :class:`DecryptionError` on any modification or truncation of the
    blob, a different ``aad`` (e.g. a value moved to another row), or a key
    id the ring does not hold.
    """
    _check_aad(aad)
    parsed = _parse(blob)
    data_key = _unwrap(ring, parsed, aad)
    try:
        return AESGCM(data_key).decrypt(parsed.data_nonce, parsed.ciphertext, _data_aad(aad))
    except InvalidTag:
        raise DecryptionError from None


def rewrap(ring: KeyRing, blob: bytes, aad: bytes) -> bytes:
    """Re-wrap the blob's data key under ``ring.current``; ciphertext is untouched.

    Returns ``blob`` unchanged if it is already under the current key.  The
    wrapped key is always authenticated first, so a wrong ``aad``, unknown kid
    or damaged header raises :class:`DecryptionError`.  The ciphertext itself
    is not decrypted here; damage to it is still caught by :func:`unseal`.
    """
    _check_aad(aad)
    parsed = _parse(blob)
    data_key = _unwrap(ring, parsed, aad)
    kek = ring.current
    if parsed.kid == kek.kid:
        return bytes(blob)
    wrap_nonce, wrapped_key = _wrap(kek, data_key, aad)
    return _Blob(kek.kid, wrap_nonce, wrapped_key, parsed.data_nonce, parsed.ciphertext).to_bytes()


def blob_kid(blob: bytes) -> str:
    """The id of the KEK a blob is wrapped under (unauthenticated; for rotation bookkeeping)."""
    return _parse(blob).kid


def seal_text(ring: KeyRing, text: str, aad: bytes) -> bytes:
    """:func:`seal` for a string (UTF-8)."""
    return seal(ring, text.encode("utf-8"), aad)


def unseal_text(ring: KeyRing, blob: bytes, aad: bytes) -> str:
    """:func:`unseal` for a string sealed by :func:`seal_text`."""
    try:
        return unseal(ring, blob, aad).decode("utf-8")
    except UnicodeDecodeError:
        raise DecryptionError from None


# --------------------------------------------------------------------------- keyed hashing


def _normalise(value: str) -> str:
    return unicodedata.normalize("NFC", value).strip()


def keyed_hash(secret: bytes, purpose: str, value: str) -> str:
    """HMAC-SHA256 of ``value`` under ``secret``, separated by ``purpose``.

    Output: 64 lowercase hex characters, stable across releases for the same
    inputs.  ``value`` is NFC-normalised and stripped of surrounding
    whitespace first, so ``" 123 "`` and ``"123"`` hash alike.  Different
    purposes (e.g. ``"iin.log"`` vs ``"iin.ledger"``) give unrelated hashes,
    so one table cannot be joined against another.
    """
    if not isinstance(secret, bytes) or len(secret) < MIN_HMAC_SECRET_BYTES:
        raise ValueError(f"secret must be at least {MIN_HMAC_SECRET_BYTES} bytes")
    if not purpose:
        raise ValueError("purpose must be non-empty")
    msg = _frame(_HASH_LABEL, purpose.encode("utf-8"), _normalise(value).encode("utf-8"))
    return hmac.new(secret, msg, sha256).hexdigest()


class KeyedHasher:
    """:func:`keyed_hash` bound to one secret."""

    __slots__ = ("_secret",)

    def __init__(self, secret: bytes) -> None:
        if not isinstance(secret, bytes) or len(secret) < MIN_HMAC_SECRET_BYTES:
            raise ValueError(f"secret must be at least {MIN_HMAC_SECRET_BYTES} bytes")
        self._secret = secret

    def __repr__(self) -> str:
        return "KeyedHasher(<secret>)"

    def hash(self, purpose: str, value: str) -> str:
        """Same as ``keyed_hash(secret, purpose, value)``."""
        return keyed_hash(self._secret, purpose, value)


# --------------------------------------------------------------------------- sealed boxes


@dataclass(frozen=True, slots=True)
class RecipientKeyPair:
    """An X25519 key pair for receiving :func:`seal_to` boxes."""

    _private: PrivateKey = field(repr=False)

    @classmethod
    def generate(cls) -> RecipientKeyPair:
        """Return a fresh key pair."""
        return cls(PrivateKey.generate())

    @classmethod
    def from_private_bytes(cls, private_key: bytes) -> RecipientKeyPair:
        """Rebuild a key pair from :attr:`private_bytes`."""
        return cls(PrivateKey(private_key))

    @property
    def public_bytes(self) -> bytes:
        """32-byte public key; safe to publish."""
        return bytes(self._private.public_key)

    @property
    def private_bytes(self) -> bytes:
        """32-byte private key; keep secret."""
        return bytes(self._private)


def seal_to(public_key: bytes, data: bytes) -> bytes:
    """Anonymously encrypt ``data`` so only the holder of the matching private key can read it."""
    return SealedBox(PublicKey(public_key)).encrypt(bytes(data))


def open_sealed(private_key: bytes, sealed: bytes) -> bytes:
    """Open a :func:`seal_to` box; raise :class:`DecryptionError` if it fails for any reason."""
    box = SealedBox(PrivateKey(private_key))
    try:
        return box.decrypt(bytes(sealed))
    except (CryptoError, ValueError, TypeError):
        raise DecryptionError from None


# --------------------------------------------------------------------------- tokens


def random_token(nbytes: int = 32) -> str:
    """A URL-safe random token carrying ``nbytes`` (at least 16) bytes of entropy."""
    if nbytes < MIN_TOKEN_BYTES:
        raise ValueError(f"nbytes must be at least {MIN_TOKEN_BYTES}")
    return secrets.token_urlsafe(nbytes)


def constant_time_equals(a: str | bytes, b: str | bytes) -> bool:
    """Compare two secrets without leaking where they differ (str compared as UTF-8)."""
    a_bytes = a.encode("utf-8") if isinstance(a, str) else bytes(a)
    b_bytes = b.encode("utf-8") if isinstance(b, str) else bytes(b)
    return hmac.compare_digest(a_bytes, b_bytes)
