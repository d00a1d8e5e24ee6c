"""A report's data key opens only its own values, and only through its unit's key under the key ring."""

from __future__ import annotations

import pytest

from qorgau.kernel.crypto import DecryptionError, KeyRing, RecipientKeyPair
from qorgau.reports import protection


def test_values_are_bound_to_their_row_and_column() -> None:
    key = protection.new_data_key()
    blob = protection.encrypt_text(key, "драка у остановки", table="reports", column="content_enc", row_id="r1")
    assert "драка".encode() not in blob
    assert protection.decrypt_text(key, blob, table="reports", column="content_enc", row_id="r1") == "драка у остановки"
    for table, column, row_id in (("reports", "content_enc", "r2"), ("reports", "identity_enc", "r1")):
        with pytest.raises(DecryptionError):
            protection.decrypt(key, blob, table=table, column=column, row_id=row_id)
    with pytest.raises(DecryptionError):
        protection.decrypt(protection.new_data_key(), blob, table="reports", column="content_enc", row_id="r1")
    with pytest.raises(DecryptionError):
        protection.decrypt(key, blob[:-1] + bytes([blob[-1] ^ 1]), table="reports", column="content_enc", row_id="r1")


def test_a_sealed_report_key_opens_only_for_its_unit_and_its_report() -> None:
    unit, other = RecipientKeyPair.generate(), RecipientKeyPair.generate()
    key = protection.new_data_key()
    sealed = protection.seal_report_key(unit.public_bytes, "a" * 32, key)
    assert protection.open_report_key(unit.private_bytes, "a" * 32, sealed) == key
    with pytest.raises(DecryptionError):
        protection.open_report_key(other.private_bytes, "a" * 32, sealed)
    with pytest.raises(DecryptionError):
        protection.open_report_key(unit.private_bytes, "b" * 32, sealed)  # moved to another report


def test_the_unit_private_key_is_wrapped_under_the_key_ring() -> None:
    ring = KeyRing.generate()
    public, wrapped = protection.new_unit_key(ring, "unit-1")
    private = protection.unwrap_unit_key(ring, "unit-1", wrapped)
    assert RecipientKeyPair.from_private_bytes(private).public_bytes == public
    assert private not in wrapped
    with pytest.raises(DecryptionError):
        protection.unwrap_unit_key(ring, "unit-2", wrapped)
    with pytest.raises(DecryptionError):
        protection.unwrap_unit_key(KeyRing.generate(), "unit-1", wrapped)
