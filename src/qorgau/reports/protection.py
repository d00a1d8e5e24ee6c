"""How a report's contents are protected: a data key per report, sealed to the responsible unit.

- Everything a report holds in confidence (text, place, attachments, messages, notes, a named
  reporter's identity) is encrypted with AES-256-GCM under the report's own random data key, with
  associated data binding each value to its table, column and row (``row_aad``).
- The data key is sealed (X25519 sealed box, PyNaCl) to the public key of the responsible police unit,
  together with the report's id, so a sealed key moved to another report does not open.
- Each unit's private key is stored envelope-encrypted under the kernel's key ring (``seal`` with
  ``row_aad``, registered for ``qorgau keys rewrap``), and is unwrapped only inside a request the
  service has authorised, for as long as that request needs it.

A stolen database therefore reveals no report content: it lacks the key ring, and without the key ring
no unit key opens, and without a unit key no report key opens.
"""

from __future__ import annotations

import json
import secrets
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from qorgau.kernel.crypto import (
    DecryptionError,
    KeyRing,
    RecipientKeyPair,
    open_sealed,
    row_aad,
    seal,
    seal_to,
    unseal,
)

_VERSION = 1
_LABEL = b"qorgau.reports.v1"
_NONCE = 12
REPORT_ID_BYTES = 32


def new_data_key() -> bytes:
    return AESGCM.generate_key(bit_length=256)


def _aad(table: str, column: str, row_id: str) -> bytes:
    # row_aad is length-prefixed, so a fixed label in front keeps the encoding unambiguous.
    return _LABEL + row_aad(table, column, row_id)


def encrypt(data_key: bytes, plaintext: bytes, *, table: str, column: str, row_id: str) -> bytes:
    """``version | nonce | ciphertext+tag`` under the report's data key, bound to one row's column."""
    nonce = secrets.token_bytes(_NONCE)
    return bytes([_VERSION]) + nonce + AESGCM(data_key).encrypt(nonce, plaintext, _aad(table, column, row_id))


def decrypt(data_key: bytes, blob: bytes, *, table: str, column: str, row_id: str) -> bytes:
    blob = bytes(blob)
    if len(blob) < 1 + _NONCE + 16 or blob[0] != _VERSION:
        raise DecryptionError
    try:
        return AESGCM(data_key).decrypt(blob[1 : 1 + _NONCE], blob[1 + _NONCE :], _aad(table, column, row_id))
    except InvalidTag:
        raise DecryptionError from None


def encrypt_json(data_key: bytes, value: Any, *, table: str, column: str, row_id: str) -> bytes:
    body = json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return encrypt(data_key, body, table=table, column=column, row_id=row_id)


def decrypt_json(data_key: bytes, blob: bytes, *, table: str, column: str, row_id: str) -> Any:
    return json.loads(decrypt(data_key, blob, table=table, column=column, row_id=row_id))


def encrypt_text(data_key: bytes, text: str, *, table: str, column: str, row_id: str) -> bytes:
    return encrypt(data_key, text.encode("utf-8"), table=table, column=column, row_id=row_id)


def decrypt_text(data_key: bytes, blob: bytes, *, table: str, column: str, row_id: str) -> str:
    return decrypt(data_key, blob, table=table, column=column, row_id=row_id).decode("utf-8")


# --- the report key, sealed to a unit ---------------------------------------------------------


def _padded_id(report_id: str) -> bytes:
    raw = report_id.encode("ascii")
    if len(raw) > REPORT_ID_BYTES:
        raise ValueError("report id too long")
    return raw.ljust(REPORT_ID_BYTES, b"\0")


def seal_report_key(unit_public_key: bytes, report_id: str, data_key: bytes) -> bytes:
    return seal_to(unit_public_key, _padded_id(report_id) + data_key)


def open_report_key(unit_private_key: bytes, report_id: str, sealed: bytes) -> bytes:
    opened = open_sealed(unit_private_key, sealed)
    if len(opened) != REPORT_ID_BYTES + 32 or opened[:REPORT_ID_BYTES] != _padded_id(report_id):
        raise DecryptionError
    return opened[REPORT_ID_BYTES:]


# --- unit keys --------------------------------------------------------------------------------

UNIT_KEYS_TABLE = "report_unit_keys"
UNIT_KEY_COLUMN = "private_key_enc"


def new_unit_key(ring: KeyRing, agency_id: str) -> tuple[bytes, bytes]:
    """A fresh unit key pair: (public key, private key wrapped under the key ring)."""
    pair = RecipientKeyPair.generate()
    wrapped = seal(ring, pair.private_bytes, row_aad(UNIT_KEYS_TABLE, UNIT_KEY_COLUMN, agency_id))
    return pair.public_bytes, wrapped


def unwrap_unit_key(ring: KeyRing, agency_id: str, wrapped: bytes) -> bytes:
    return unseal(ring, wrapped, row_aad(UNIT_KEYS_TABLE, UNIT_KEY_COLUMN, agency_id))
