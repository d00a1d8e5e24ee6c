"""Receipts: enough entropy, easy to read out, typos caught before any argon2 work, stored only hashed."""

from __future__ import annotations

import math

from qorgau.kernel.crypto import KeyedHasher
from qorgau.reports import receipts


def test_a_receipt_carries_more_than_80_bits_and_reads_as_seven_groups_of_four() -> None:
    assert receipts.RANDOM_DIGITS * math.log2(10) >= 80
    receipt = receipts.new_receipt()
    assert len(receipt) == 28 and receipt.isdigit()
    assert receipts.grouped(receipt) == [receipt[i : i + 4] for i in range(0, 28, 4)]
    assert len({receipts.new_receipt() for _ in range(200)}) == 200


def test_the_receipt_is_found_whatever_the_spacing() -> None:
    receipt = receipts.new_receipt()
    spaced = " ".join(receipts.grouped(receipt))
    assert receipts.normalise(spaced) == receipt
    assert receipts.normalise("-".join(receipts.grouped(receipt))) == receipt
    assert receipts.normalise(f"  {receipt}\n") == receipt


def test_every_single_typo_and_neighbour_swap_is_caught() -> None:
    receipt = receipts.new_receipt()
    for i in range(len(receipt)):
        for d in "0123456789":
            if d != receipt[i]:
                assert receipts.normalise(receipt[:i] + d + receipt[i + 1 :]) is None
    for i in range(len(receipt) - 1):
        if receipt[i] != receipt[i + 1]:
            swapped = receipt[:i] + receipt[i + 1] + receipt[i] + receipt[i + 2 :]
            assert receipts.normalise(swapped) is None


def test_wrong_lengths_and_letters_are_not_receipts() -> None:
    receipt = receipts.new_receipt()
    assert receipts.normalise(receipt[:-1]) is None
    assert receipts.normalise(receipt + "0") is None
    assert receipts.normalise("O" + receipt[1:]) is None
    assert receipts.normalise("٣" * 28) is None  # non-ASCII digits


def test_only_a_keyed_index_and_an_argon2id_verifier_are_kept() -> None:
    receipt = receipts.new_receipt()
    hasher = KeyedHasher(b"k" * 32)
    index = receipts.index_of(hasher, receipt)
    assert index == receipts.index_of(hasher, receipt)
    assert index != receipts.index_of(KeyedHasher(b"j" * 32), receipt)
    verifier = receipts.verifier_of(receipt)
    assert verifier.startswith("$argon2id$") and receipt not in verifier and receipt not in index
    assert receipts.verify(verifier, receipt)
    assert not receipts.verify(verifier, receipts.new_receipt())
    assert not receipts.verify(None, receipt)
    assert not receipts.verify("not-a-hash", receipt)
