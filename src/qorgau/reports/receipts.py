"""Receipts: the one secret that lets an anonymous reporter come back to their report.

A receipt is 28 digits read in seven groups of four (``4821 0937 …``): 27 random digits (89.7 bits,
above the 80 the regulation asks for) and a Damm check digit, which catches any single mistyped digit
and any swap of two neighbours before the server spends work on it. Digits read aloud the same way in
Kazakh, Russian and English, and survive any keyboard.

The server keeps two values and never the receipt:

- an index, ``HMAC-SHA256(deployment secret, receipt)``, unique, so a lookup is one indexed read;
- a verifier, ``argon2id(receipt)`` with its own salt.

With the database alone the index is useless (the HMAC key is not in it) and every guess against a
verifier costs one argon2id; even with the deployment secret too, 2^89.7 HMACs are out of reach.
"""

from __future__ import annotations

import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from qorgau.kernel.crypto import KeyedHasher

RANDOM_DIGITS = 27
LENGTH = RANDOM_DIGITS + 1
GROUP = 4

# Damm's totally anti-symmetric quasigroup of order 10 (H. M. Damm, 2004).
_DAMM = (
    (0, 3, 1, 7, 5, 9, 8, 6, 4, 2),
    (7, 0, 9, 2, 1, 5, 4, 8, 6, 3),
    (4, 2, 0, 6, 8, 7, 1, 3, 5, 9),
    (1, 7, 5, 0, 9, 8, 3, 4, 2, 6),
    (6, 1, 2, 3, 0, 4, 5, 9, 7, 8),
    (3, 6, 7, 4, 2, 0, 9, 5, 8, 1),
    (5, 8, 6, 9, 7, 2, 0, 1, 3, 4),
    (8, 9, 4, 5, 3, 6, 2, 0, 1, 7),
    (9, 4, 3, 8, 6, 1, 7, 2, 0, 5),
    (2, 5, 8, 1, 4, 3, 6, 7, 9, 0),
)

# OWASP's argon2id parameters, as for passwords: a guess costs the same as a password guess.
_hasher = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1, hash_len=32, salt_len=16)
_DUMMY = _hasher.hash("0" * LENGTH)


def damm_digit(digits: str) -> int:
    interim = 0
    for ch in digits:
        interim = _DAMM[interim][ord(ch) - 48]
    return interim


def new_receipt() -> str:
    """A fresh receipt: 28 digits, no separators."""
    body = f"{secrets.randbelow(10**RANDOM_DIGITS):0{RANDOM_DIGITS}d}"
    return body + str(damm_digit(body))


def normalise(text: str) -> str | None:
    """The receipt's 28 digits from what a person typed (spaces, dashes, dots ignored).

    ``None`` if it is not 28 digits with a correct check digit: a typo, not a guess worth an argon2 run.
    """
    digits = "".join(ch for ch in text if not ch.isspace() and ch not in "-.–—")
    if len(digits) != LENGTH or not digits.isascii() or not digits.isdigit():
        return None
    return digits if damm_digit(digits) == 0 else None


def grouped(receipt: str) -> list[str]:
    """The receipt in groups of four, as it is shown and read aloud."""
    return [receipt[i : i + GROUP] for i in range(0, len(receipt), GROUP)]


def index_of(hasher: KeyedHasher, receipt: str) -> str:
    return hasher.hash("reports.receipt", receipt)


def verifier_of(receipt: str) -> str:
    return _hasher.hash(receipt)


def verify(verifier: str | None, receipt: str) -> bool:
    """Whether `receipt` matches; spends one argon2id run even when there is nothing to match."""
    try:
        return _hasher.verify(verifier or _DUMMY, receipt) and verifier is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False
