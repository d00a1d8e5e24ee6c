"""Tests for qorgau.kernel.crypto."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qorgau.kernel import crypto
from qorgau.kernel.crypto import (
    DecryptionError,
    KeyedHasher,
    KeyEncryptionKey,
    KeyRing,
    KeyRingError,
    RecipientKeyPair,
    blob_kid,
    constant_time_equals,
    keyed_hash,
    load_or_create_keyring,
    open_sealed,
    random_token,
    rewrap,
    row_aad,
    save_keyring,
    seal,
    seal_text,
    seal_to,
    unseal,
    unseal_text,
)

AAD = row_aad("citizens", "iin", 42)
SECRET = b"s" * 32


@pytest.fixture
def ring() -> KeyRing:
    return KeyRing.generate()


def _regions(blob: bytes) -> dict[str, range]:
    kid_len = blob[1]
    pos = 2
    regions = {"version": range(0, 1), "kid_len": range(1, 2), "kid": range(pos, pos + kid_len)}
    pos += kid_len
    for name, size in (("wrap_nonce", 12), ("wrapped_key", 48), ("data_nonce", 12)):
        regions[name] = range(pos, pos + size)
        pos += size
    regions["ciphertext"] = range(pos, len(blob))
    return regions


# --------------------------------------------------------------------------- envelope


def test_round_trip(ring: KeyRing) -> None:
    blob = seal(ring, b"870101300123", AAD)
    assert b"870101300123" not in blob
    assert unseal(ring, blob, AAD) == b"870101300123"


def test_round_trip_empty_plaintext(ring: KeyRing) -> None:
    assert unseal(ring, seal(ring, b"", AAD), AAD) == b""


def test_seal_is_randomised(ring: KeyRing) -> None:
    assert seal(ring, b"same", AAD) != seal(ring, b"same", AAD)


def test_text_round_trip(ring: KeyRing) -> None:
    blob = seal_text(ring, "Қазақстан — ИИН", AAD)
    assert unseal_text(ring, blob, AAD) == "Қазақстан — ИИН"


@pytest.mark.parametrize(
    "other_aad",
    [
        row_aad("citizens", "iin", 43),  # another row
        row_aad("citizens", "phone", 42),  # another column
        row_aad("staff", "iin", 42),  # another table
        b"",
    ],
)
def test_aad_mismatch_fails(ring: KeyRing, other_aad: bytes) -> None:
    blob = seal(ring, b"secret", AAD)
    with pytest.raises(DecryptionError):
        unseal(ring, blob, other_aad)


def test_row_swap_of_wrapped_key_fails(ring: KeyRing) -> None:
    """Moving only the wrapped key (header) from row A to row B's blob must not open."""
    a_aad, b_aad = row_aad("t", "c", 1), row_aad("t", "c", 2)
    a = seal(ring, b"A", a_aad)
    b = seal(ring, b"B", b_aad)
    ra, rb = _regions(a), _regions(b)
    hdr_end = ra["wrapped_key"].stop
    franken = a[:hdr_end] + b[rb["data_nonce"].start :]
    for aad in (a_aad, b_aad):
        with pytest.raises(DecryptionError):
            unseal(ring, franken, aad)


def test_data_layer_binds_aad_too(ring: KeyRing) -> None:
    """Even a correctly re-wrapped data key for row B cannot open row A's ciphertext as row B."""
    a_aad, b_aad = row_aad("t", "c", 1), row_aad("t", "c", 2)
    blob = seal(ring, b"A", a_aad)
    parsed = crypto._parse(blob)
    data_key = crypto._unwrap(ring, parsed, a_aad)
    nonce, wrapped = crypto._wrap(ring.current, data_key, b_aad)
    forged = crypto._Blob(parsed.kid, nonce, wrapped, parsed.data_nonce, parsed.ciphertext).to_bytes()
    assert rewrap(ring.rotate(), forged, b_aad)  # the wrap layer accepts it ...
    with pytest.raises(DecryptionError):  # ... the data layer does not
        unseal(ring, forged, b_aad)


def test_row_aad_is_unambiguous() -> None:
    assert row_aad("ab", "c", 1) != row_aad("a", "bc", 1)
    assert row_aad("a", "b", "c1") != row_aad("a", "bc", 1)
    assert row_aad("t", "c", 5) == row_aad("t", "c", "5")
    with pytest.raises(TypeError):
        row_aad("t", "c", True)
    with pytest.raises(ValueError):
        row_aad("", "c", 1)


@pytest.mark.parametrize(
    "region", ["version", "kid_len", "kid", "wrap_nonce", "wrapped_key", "data_nonce", "ciphertext"]
)
def test_tamper_every_byte_of_each_region_fails(ring: KeyRing, region: str) -> None:
    blob = seal(ring, b"some plaintext", AAD)
    indices = _regions(blob)[region]
    assert len(indices) > 0
    for i in indices:
        for flip in (0x01, 0x80):
            tampered = bytearray(blob)
            tampered[i] ^= flip
            with pytest.raises(DecryptionError):
                unseal(ring, bytes(tampered), AAD)


def test_truncation_and_extension_fail(ring: KeyRing) -> None:
    blob = seal(ring, b"some plaintext", AAD)
    for n in range(len(blob)):
        with pytest.raises(DecryptionError):
            unseal(ring, blob[:n], AAD)
    with pytest.raises(DecryptionError):
        unseal(ring, blob + b"\x00", AAD)


def test_kid_swapped_to_other_known_key_fails() -> None:
    k1 = KeyEncryptionKey.generate("aaaa")
    k2 = KeyEncryptionKey.generate("bbbb")
    ring = KeyRing([k1, k2])
    blob = seal(ring, b"x", AAD)
    assert blob_kid(blob) == "bbbb"
    swapped = blob.replace(b"bbbb", b"aaaa", 1)
    assert blob_kid(swapped) == "aaaa"
    with pytest.raises(DecryptionError):
        unseal(ring, swapped, AAD)


def test_unknown_kid_fails(ring: KeyRing) -> None:
    blob = seal(ring, b"x", AAD)
    with pytest.raises(DecryptionError):
        unseal(KeyRing.generate(), blob, AAD)


def test_decryption_error_leaks_nothing(ring: KeyRing) -> None:
    blob = seal(ring, b"x", AAD)
    with pytest.raises(DecryptionError) as info:
        unseal(KeyRing.generate(), blob, AAD)
    assert str(info.value) == "decryption failed"
    assert info.value.__cause__ is None
    assert info.value.__suppress_context__ or info.value.__context__ is None


def test_rotate_keeps_old_blobs_readable(ring: KeyRing) -> None:
    old_blob = seal(ring, b"old", AAD)
    rotated = ring.rotate()
    assert rotated.current.kid != ring.current.kid
    assert rotated.ids == (*ring.ids, rotated.current.kid)
    assert ring.ids == (ring.current.kid,)  # original ring untouched
    assert unseal(rotated, old_blob, AAD) == b"old"
    new_blob = seal(rotated, b"new", AAD)
    assert blob_kid(new_blob) == rotated.current.kid
    assert blob_kid(old_blob) == ring.current.kid


def test_rewrap_then_drop_old_key(ring: KeyRing) -> None:
    old_kid = ring.current.kid
    blob = seal(ring, b"payload", AAD)
    rotated = ring.rotate()
    new_blob = rewrap(rotated, blob, AAD)
    assert blob_kid(new_blob) == rotated.current.kid != old_kid
    # Ciphertext (data nonce onwards) is untouched.
    assert new_blob[_regions(new_blob)["data_nonce"].start :] == blob[_regions(blob)["data_nonce"].start :]
    # A ring built without the old key still opens it.
    only_new = KeyRing([rotated.current])
    assert old_kid not in only_new
    assert unseal(only_new, new_blob, AAD) == b"payload"
    assert unseal(rotated.without(old_kid), new_blob, AAD) == b"payload"
    with pytest.raises(DecryptionError):
        unseal(only_new, blob, AAD)


def test_rewrap_current_is_noop_and_checks_aad(ring: KeyRing) -> None:
    blob = seal(ring, b"x", AAD)
    assert rewrap(ring, blob, AAD) == blob
    with pytest.raises(DecryptionError):
        rewrap(ring, blob, row_aad("citizens", "iin", 43))
    with pytest.raises(DecryptionError):
        rewrap(ring.rotate(), blob, row_aad("citizens", "iin", 43))


def test_blob_kid_rejects_garbage() -> None:
    for junk in (b"", b"\x01", b"\x02" + b"\x00" * 100, b"\x01\x04k\xff\xfe\xfd" + b"\x00" * 100):
        with pytest.raises(DecryptionError):
            blob_kid(junk)


@settings(max_examples=200)
@given(plaintext=st.binary(max_size=4096), aad=st.binary(max_size=256))
def test_hypothesis_round_trip(plaintext: bytes, aad: bytes) -> None:
    ring = _HYPOTHESIS_RING
    blob = seal(ring, plaintext, aad)
    assert unseal(ring, blob, aad) == plaintext
    assert unseal(ring.rotate(), blob, aad) == plaintext


@given(plaintext=st.binary(max_size=256), aad=st.binary(max_size=64), other=st.binary(max_size=64))
def test_hypothesis_other_aad_fails(plaintext: bytes, aad: bytes, other: bytes) -> None:
    if aad == other:
        return
    blob = seal(_HYPOTHESIS_RING, plaintext, aad)
    with pytest.raises(DecryptionError):
        unseal(_HYPOTHESIS_RING, blob, other)


_HYPOTHESIS_RING = KeyRing.generate()


# --------------------------------------------------------------------------- key ring


def test_keyring_validation() -> None:
    with pytest.raises(KeyRingError):
        KeyRing([])
    k = KeyEncryptionKey.generate("k1")
    with pytest.raises(KeyRingError):
        KeyRing([k, k])
    with pytest.raises(KeyRingError):
        KeyEncryptionKey.generate("bad kid!")
    with pytest.raises(KeyRingError):
        KeyEncryptionKey("k1", b"short", k.created_at)
    ring = KeyRing([k])
    with pytest.raises(KeyRingError):
        ring.without(k.kid)  # current key cannot be dropped
    assert ring.get("nope") is None
    assert ring.get("k1") is k


def test_repr_does_not_leak_key_material(ring: KeyRing) -> None:
    b64 = json.loads(ring.to_json())["keys"][0]["key"]
    assert ring.current.key.hex() not in repr(ring)
    assert b64 not in repr(ring)
    assert repr(ring.current.key) not in repr(ring)


def test_json_round_trip(ring: KeyRing) -> None:
    ring = ring.rotate()
    again = KeyRing.from_json(ring.to_json())
    assert again == ring
    assert again.current.kid == ring.current.kid
    assert again.ids == ring.ids


@pytest.mark.parametrize(
    "doc",
    [
        "not json",
        "{}",
        '{"version": 2, "keys": []}',
        '{"version": 1, "keys": []}',
        '{"version": 1, "keys": [{"kid": "k1", "key": "!!", "created_at": "2024-01-01T00:00:00+00:00"}]}',
        '{"version": 1, "keys": [{"kid": "k1", "key": "AAAA", "created_at": "2024-01-01T00:00:00+00:00"}]}',
    ],
)
def test_from_json_rejects_malformed(doc: str) -> None:
    with pytest.raises(KeyRingError):
        KeyRing.from_json(doc)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_load_or_create_creates_0600_and_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "keyring.json"
    old_umask = os.umask(0)  # a permissive umask must not widen the file
    try:
        ring = load_or_create_keyring(path)
    finally:
        os.umask(old_umask)
    assert _mode(path) == 0o600
    path.unlink()
    old_umask = os.umask(0o777)  # nor may a strict one lock the owner out
    try:
        ring = load_or_create_keyring(path)
    finally:
        os.umask(old_umask)
    assert _mode(path) == 0o600
    assert load_or_create_keyring(path) == ring  # loads, does not regenerate
    assert [p.name for p in tmp_path.iterdir()] == ["keyring.json"]  # no temp left behind


def test_save_keyring_atomic_0600(tmp_path: Path) -> None:
    path = tmp_path / "keyring.json"
    ring = load_or_create_keyring(path)
    rotated = ring.rotate()
    path.chmod(0o644)
    save_keyring(path, rotated)
    assert _mode(path) == 0o600  # replaced by a new 0600 file
    assert load_or_create_keyring(path) == rotated
    assert [p.name for p in tmp_path.iterdir()] == ["keyring.json"]


def test_load_or_create_does_not_clobber_a_racing_creator(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "keyring.json"
    winner = KeyRing.generate()
    real_link = os.link

    def racing_link(src: str, dst: str) -> None:
        save_keyring(Path(dst), winner)  # another process wins between exists() and link()
        real_link(src, dst)

    monkeypatch.setattr(crypto.os, "link", racing_link)
    assert load_or_create_keyring(path) == winner
    assert [p.name for p in tmp_path.iterdir()] == ["keyring.json"]


# --------------------------------------------------------------------------- keyed hashing


def test_keyed_hash_deterministic_and_hex() -> None:
    h = keyed_hash(SECRET, "iin.log", "870101300123")
    assert h == keyed_hash(SECRET, "iin.log", "870101300123")
    assert len(h) == 64 and all(c in "0123456789abcdef" for c in h)
    assert "870101300123" not in h


def test_keyed_hash_normalises_whitespace() -> None:
    assert keyed_hash(SECRET, "iin", " 870101300123\n") == keyed_hash(SECRET, "iin", "870101300123")


def test_keyed_hash_differs_per_purpose_secret_and_value() -> None:
    base = keyed_hash(SECRET, "iin.log", "870101300123")
    assert keyed_hash(SECRET, "iin.ledger", "870101300123") != base
    assert keyed_hash(b"t" * 32, "iin.log", "870101300123") != base
    assert keyed_hash(SECRET, "iin.log", "870101300124") != base
    # Domain separation is framed: moving bytes between purpose and value changes the hash.
    assert keyed_hash(SECRET, "ab", "c") != keyed_hash(SECRET, "a", "bc")


def test_keyed_hash_known_answer() -> None:
    """Pins the construction so stored hashes stay matchable across releases."""
    import hashlib
    import hmac

    def frame(*parts: bytes) -> bytes:
        return b"".join(len(p).to_bytes(4, "big") + p for p in parts)

    expected = hmac.new(SECRET, frame(b"qorgau.crypto.keyed-hash.v1", b"iin", b"123"), hashlib.sha256)
    assert keyed_hash(SECRET, "iin", "123") == expected.hexdigest()


def test_keyed_hasher_matches_function_and_validates() -> None:
    hasher = KeyedHasher(SECRET)
    assert hasher.hash("iin", "1") == keyed_hash(SECRET, "iin", "1")
    assert SECRET.decode() not in repr(hasher)
    with pytest.raises(ValueError):
        KeyedHasher(b"short")
    with pytest.raises(ValueError):
        keyed_hash(SECRET, "", "1")


# --------------------------------------------------------------------------- sealed boxes


def test_sealed_box_round_trip() -> None:
    pair = RecipientKeyPair.generate()
    assert len(pair.public_bytes) == 32 and len(pair.private_bytes) == 32
    sealed = seal_to(pair.public_bytes, b"data key")
    assert open_sealed(pair.private_bytes, sealed) == b"data key"
    restored = RecipientKeyPair.from_private_bytes(pair.private_bytes)
    assert restored.public_bytes == pair.public_bytes
    assert pair.private_bytes.hex() not in repr(pair)


def test_sealed_box_wrong_key_and_tamper_fail() -> None:
    pair, other = RecipientKeyPair.generate(), RecipientKeyPair.generate()
    sealed = seal_to(pair.public_bytes, b"data key")
    with pytest.raises(DecryptionError):
        open_sealed(other.private_bytes, sealed)
    tampered = bytearray(sealed)
    tampered[-1] ^= 1
    with pytest.raises(DecryptionError):
        open_sealed(pair.private_bytes, bytes(tampered))
    with pytest.raises(DecryptionError):
        open_sealed(pair.private_bytes, sealed[:10])


# --------------------------------------------------------------------------- tokens


def test_random_token() -> None:
    t = random_token()
    assert len(t) == 43 and t != random_token()
    assert set(t) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    with pytest.raises(ValueError):
        random_token(8)


def test_constant_time_equals() -> None:
    assert constant_time_equals("abc", "abc")
    assert constant_time_equals(b"abc", "abc")
    assert not constant_time_equals("abc", "abd")
    assert not constant_time_equals("abc", "abcd")
    assert constant_time_equals("ИИН", "ИИН")
