"""Kazakhstan-specific facts: identifiers (IIN, BIN), phones, administrative divisions, MCI.

Pure Python: the only I/O is reading the bundled data files in :mod:`qorgau.kernel.data` (or an
administrator's replacement MCI file given by path). The rules follow ``DOMAIN.md`` (section
Identifiers, Administrative divisions, Money and fines).

Error messages never contain the checked value: an IIN is personal data and must not reach logs.
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from functools import lru_cache
from importlib import resources
from itertools import pairwise
from types import MappingProxyType
from typing import Any, Literal

import phonenumbers

__all__ = [
    "LANGUAGES",
    "Bin",
    "BranchKind",
    "EntityType",
    "Iin",
    "InvalidIdentifier",
    "MciDataError",
    "MciUnknown",
    "MciValue",
    "Phone",
    "Region",
    "RegionKind",
    "Sex",
    "UnknownRegion",
    "classify_identifier",
    "fine_in_tenge",
    "iin_control_digit",
    "is_valid_bin",
    "is_valid_iin",
    "load_mci",
    "mci_on",
    "mci_table",
    "parse_phone",
    "read_mci_file",
    "region",
    "regions",
    "validate_bin",
    "validate_iin",
]

_DATA_PACKAGE = "qorgau.kernel.data"
_DIGITS_11 = re.compile(r"[0-9]{11}")
_DIGITS_12 = re.compile(r"[0-9]{12}")


class InvalidIdentifier(ValueError):
    """An identifier (IIN, BIN, phone) failed validation.

    ``code`` is a stable, machine-readable reason such as ``"kz.iin.checksum"``; the message never
    repeats the rejected value.
    """

    def __init__(self, code: str, message: str | None = None) -> None:
        super().__init__(message or code)
        self.code = code


# --------------------------------------------------------------------------------------------------
# IIN / BIN control digit
# --------------------------------------------------------------------------------------------------

_WEIGHTS_1 = (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11)
_WEIGHTS_2 = (3, 4, 5, 6, 7, 8, 9, 10, 11, 1, 2)


def iin_control_digit(first11: str) -> int | None:
    """Return the control (12th) digit for the first 11 digits of an IIN or BIN.

    ``c = Σ d_i·w_i mod 11`` with ``w = 1..11``; if ``c == 10`` it is recomputed with
    ``w = 3..11, 1, 2``. Returns ``None`` when the second pass also gives 10: such a number is never
    issued. Raises :class:`ValueError` unless ``first11`` is exactly 11 ASCII digits.
    """
    if not isinstance(first11, str) or not _DIGITS_11.fullmatch(first11):
        raise ValueError("expected exactly 11 ASCII digits")
    digits = [ord(ch) - 48 for ch in first11]
    for weights in (_WEIGHTS_1, _WEIGHTS_2):
        control = sum(d * w for d, w in zip(digits, weights, strict=True)) % 11
        if control != 10:
            return control
    return None


def _checksum_ok(value: str) -> bool:
    control = iin_control_digit(value[:11])
    return control is not None and control == ord(value[11]) - 48


def _twelve_digits(s: str, kind: str) -> str:
    if not isinstance(s, str):
        raise TypeError(f"{kind.upper()} must be a str")
    value = s.strip()
    if len(value) != 12:
        raise InvalidIdentifier(f"kz.{kind}.length", f"{kind.upper()} must have 12 digits")
    if not _DIGITS_12.fullmatch(value):
        raise InvalidIdentifier(f"kz.{kind}.digits", f"{kind.upper()} must contain only digits 0-9")
    return value


# --------------------------------------------------------------------------------------------------
# IIN
# --------------------------------------------------------------------------------------------------


class Sex(StrEnum):
    """Sex as encoded in an IIN's 7th digit (odd = male)."""

    MALE = "male"
    FEMALE = "female"


_CENTURY_BASE = {1: 1800, 2: 1800, 3: 1900, 4: 1900, 5: 2000, 6: 2000}


@dataclass(frozen=True, slots=True, repr=False)
class Iin:
    """A validated individual identification number (ИИН / ЖСН).

    ``century`` is the first year of the birth century as the digit encodes it: 1800, 1900 or 2000.
    ``repr()`` hides the number, so an ``Iin`` logged by mistake does not leak it.
    """

    value: str
    birth_date: date
    sex: Sex
    century: int

    def __str__(self) -> str:
        return self.value

    def __repr__(self) -> str:
        return "Iin(<redacted>)"


def validate_iin(s: str, *, today: date | None = None) -> Iin:
    """Validate an IIN and decode its birth date, sex and century.

    Outer whitespace is stripped; otherwise exactly 12 ASCII digits are required (internal spaces
    are the PII scanner's business, not this function's). Checks, in order, raising
    :class:`InvalidIdentifier` with the code shown:

    - ``kz.iin.length`` – not 12 characters; ``kz.iin.digits`` – not all digits 0-9;
    - ``kz.iin.century`` – 7th digit 0, 7, 8 or 9;
    - ``kz.iin.birth_date`` – the date ``YYMMDD`` does not exist (month 13, 30 February…);
    - ``kz.iin.future`` – the birth date is after ``today`` (default :func:`date.today`);
    - ``kz.iin.checksum`` – wrong control digit, or a number whose control digit is undefined.
    """
    value = _twelve_digits(s, "iin")
    century_digit = ord(value[6]) - 48
    base = _CENTURY_BASE.get(century_digit)
    if base is None:
        raise InvalidIdentifier("kz.iin.century", "IIN century digit must be 1-6")
    try:
        birth = date(base + int(value[0:2]), int(value[2:4]), int(value[4:6]))
    except ValueError:
        raise InvalidIdentifier("kz.iin.birth_date", "IIN birth date does not exist") from None
    if birth > (today or date.today()):
        raise InvalidIdentifier("kz.iin.future", "IIN birth date is in the future")
    if not _checksum_ok(value):
        raise InvalidIdentifier("kz.iin.checksum", "IIN control digit is wrong")
    sex = Sex.MALE if century_digit % 2 == 1 else Sex.FEMALE
    return Iin(value=value, birth_date=birth, sex=sex, century=base)


def is_valid_iin(s: str, *, today: date | None = None) -> bool:
    """Return whether :func:`validate_iin` accepts ``s``."""
    try:
        validate_iin(s, today=today)
    except InvalidIdentifier:
        return False
    return True


# --------------------------------------------------------------------------------------------------
# BIN
# --------------------------------------------------------------------------------------------------


class EntityType(StrEnum):
    """A BIN's 5th digit."""

    RESIDENT_LEGAL_ENTITY = "resident_legal_entity"  # 4
    NON_RESIDENT_LEGAL_ENTITY = "non_resident_legal_entity"  # 5
    INDIVIDUAL_ENTREPRENEUR = "individual_entrepreneur"  # 6


class BranchKind(StrEnum):
    """A BIN's 6th digit."""

    HEAD_OFFICE = "head_office"  # 0
    BRANCH = "branch"  # 1
    REPRESENTATIVE_OFFICE = "representative_office"  # 2
    PEASANT_FARM = "peasant_farm"  # 3


_ENTITY_TYPES = {
    4: EntityType.RESIDENT_LEGAL_ENTITY,
    5: EntityType.NON_RESIDENT_LEGAL_ENTITY,
    6: EntityType.INDIVIDUAL_ENTREPRENEUR,
}
_BRANCH_KINDS = {
    0: BranchKind.HEAD_OFFICE,
    1: BranchKind.BRANCH,
    2: BranchKind.REPRESENTATIVE_OFFICE,
    3: BranchKind.PEASANT_FARM,
}


@dataclass(frozen=True, slots=True)
class Bin:
    """A validated business identification number (БИН / БСН).

    ``registered`` is the registration (year, month). The BIN writes only ``YY``; the year is read
    as ``20YY`` unless that month lies after ``today``'s month, in which case it is ``19YY``.
    """

    value: str
    registered: tuple[int, int]
    entity_type: EntityType
    branch_kind: BranchKind
    serial: str

    def __str__(self) -> str:
        return self.value


def validate_bin(s: str, *, today: date | None = None) -> Bin:
    """Validate a BIN and decode its registration month, entity type and branch kind.

    Outer whitespace is stripped; otherwise exactly 12 ASCII digits are required. Raises
    :class:`InvalidIdentifier` with ``kz.bin.length``, ``kz.bin.digits``, ``kz.bin.month``
    (``MM`` not 01-12), ``kz.bin.entity_type`` (5th digit not 4-6), ``kz.bin.branch_kind``
    (6th digit not 0-3) or ``kz.bin.checksum``, checked in that order.
    """
    value = _twelve_digits(s, "bin")
    yy, month = int(value[0:2]), int(value[2:4])
    if not 1 <= month <= 12:
        raise InvalidIdentifier("kz.bin.month", "BIN registration month must be 01-12")
    entity_type = _ENTITY_TYPES.get(ord(value[4]) - 48)
    if entity_type is None:
        raise InvalidIdentifier("kz.bin.entity_type", "BIN 5th digit must be 4, 5 or 6")
    branch_kind = _BRANCH_KINDS.get(ord(value[5]) - 48)
    if branch_kind is None:
        raise InvalidIdentifier("kz.bin.branch_kind", "BIN 6th digit must be 0-3")
    if not _checksum_ok(value):
        raise InvalidIdentifier("kz.bin.checksum", "BIN control digit is wrong")
    ref = today or date.today()
    year = 2000 + yy
    if (year, month) > (ref.year, ref.month):
        year -= 100
    return Bin(
        value=value,
        registered=(year, month),
        entity_type=entity_type,
        branch_kind=branch_kind,
        serial=value[6:11],
    )


def is_valid_bin(s: str, *, today: date | None = None) -> bool:
    """Return whether :func:`validate_bin` accepts ``s``."""
    try:
        validate_bin(s, today=today)
    except InvalidIdentifier:
        return False
    return True


def classify_identifier(s: str, *, today: date | None = None) -> Literal["iin", "bin"] | None:
    """Tell a valid IIN from a valid BIN (by the 5th digit: 0-3 vs 4-6); ``None`` if neither."""
    if is_valid_iin(s, today=today):
        return "iin"
    if is_valid_bin(s, today=today):
        return "bin"
    return None


# --------------------------------------------------------------------------------------------------
# Phones
# --------------------------------------------------------------------------------------------------

_MOBILE_PREFIXES = frozenset(
    {"700", "701", "702", "705", "706", "707", "708", "747"}
    | {"760", "761", "762", "763", "764", "771", "775", "776", "777", "778", "785"}
)
_PHONE_CHARS = re.compile(r"\+?[0-9 \t().\-]+")


@dataclass(frozen=True, slots=True)
class Phone:
    """A Kazakh phone number.

    ``e164`` is ``+7XXXXXXXXXX``; ``prefix`` the 3 digits after ``+7``; ``is_mobile`` follows the
    Kazakh mobile prefixes in DOMAIN.md; ``allocated`` is whether libphonenumber knows the range
    (always true for numbers returned by a strict :func:`parse_phone`).
    """

    e164: str
    prefix: str
    is_mobile: bool
    allocated: bool

    @property
    def national(self) -> str:
        """The number as written at home: ``8 (701) 234 5678``."""
        return phonenumbers.format_number(phonenumbers.parse(self.e164), phonenumbers.PhoneNumberFormat.NATIONAL)

    def __str__(self) -> str:
        return self.e164


def parse_phone(s: str, *, strict: bool = True) -> Phone:
    """Parse a Kazakh phone number written in any common way.

    Accepts ``+7 701 234 56 78``, ``8 (701) 234-56-78``, ``87012345678``, ``7012345678`` and the
    like: digits with an optional leading ``+`` and spaces, brackets, dots or dashes. Raises
    :class:`InvalidIdentifier` with ``kz.phone.not_kz`` for a number of another country (including
    Russia, which shares +7: ``+7 9xx…``) and ``kz.phone.invalid`` otherwise.

    With ``strict=False`` a 10-digit number in the Kazakh ``7xx`` space is accepted even when
    libphonenumber does not know the range (``allocated`` is then false) — useful for finding
    numbers in free text, where a made-up landline still identifies someone.
    """
    if not isinstance(s, str):
        raise TypeError("phone must be a str")
    text = s.strip()
    if not text or not _PHONE_CHARS.fullmatch(text) or sum(ch.isdigit() for ch in text) < 10:
        raise InvalidIdentifier("kz.phone.invalid", "not a phone number")
    try:
        number = phonenumbers.parse(text, "KZ")
    except phonenumbers.NumberParseException:
        raise InvalidIdentifier("kz.phone.invalid", "not a phone number") from None
    if number.country_code != 7:
        raise InvalidIdentifier("kz.phone.not_kz", "not a Kazakh phone number")
    nsn = phonenumbers.national_significant_number(number)
    allocated = phonenumbers.is_valid_number_for_region(number, "KZ")
    if not allocated:
        if phonenumbers.is_valid_number(number):
            raise InvalidIdentifier("kz.phone.not_kz", "not a Kazakh phone number")
        if strict or len(nsn) != 10 or not nsn.startswith("7"):
            raise InvalidIdentifier("kz.phone.invalid", "not a valid Kazakh phone number")
    prefix = nsn[:3]
    return Phone(
        e164=f"+7{nsn}",
        prefix=prefix,
        is_mobile=len(nsn) == 10 and prefix in _MOBILE_PREFIXES,
        allocated=allocated,
    )


# --------------------------------------------------------------------------------------------------
# Administrative divisions
# --------------------------------------------------------------------------------------------------

LANGUAGES: tuple[str, ...] = ("kk", "ru", "en")


class RegionKind(StrEnum):
    """A region (облыс) or a city of republican significance."""

    REGION = "region"
    CITY = "city"


class UnknownRegion(KeyError):
    """No region has the given code."""


@dataclass(frozen=True, slots=True)
class Region:
    """One of the 20 first-level administrative units.

    ``code`` is Qorgau's stable ASCII identifier (``"almaty_region"``, ``"almaty"``…); ``names``
    maps a language (``kk``, ``ru``, ``en``) to the unit's name; ``iso_3166_2`` is e.g. ``"KZ-75"``.
    """

    code: str
    kind: RegionKind
    names: Mapping[str, str] = field(hash=False)
    iso_3166_2: str | None = None

    def name(self, lang: str) -> str:
        """The name in ``lang`` (``"kk"``, ``"ru-RU"``…), falling back to English."""
        primary = lang.split("-", 1)[0].split("_", 1)[0].lower()
        return self.names.get(primary) or self.names["en"]


@lru_cache(maxsize=1)
def regions() -> tuple[Region, ...]:
    """All 20 units, in the stable order of the bundled ``regions.json``."""
    raw = json.loads(resources.files(_DATA_PACKAGE).joinpath("regions.json").read_text("utf-8"))
    result = []
    for item in raw["regions"]:
        names = {lang: str(item["names"][lang]) for lang in item["names"]}
        if not names.get("en"):
            raise ValueError(f"region {item['code']!r} has no English name")
        result.append(
            Region(
                code=str(item["code"]),
                kind=RegionKind(item["kind"]),
                names=MappingProxyType(names),
                iso_3166_2=item.get("iso_3166_2"),
            )
        )
    return tuple(result)


@lru_cache(maxsize=1)
def _regions_by_code() -> Mapping[str, Region]:
    return MappingProxyType({r.code: r for r in regions()})


def region(code: str) -> Region:
    """The unit with this code; raises :class:`UnknownRegion` (a ``KeyError``) if there is none."""
    try:
        return _regions_by_code()[code]
    except KeyError:
        raise UnknownRegion(code) from None


# --------------------------------------------------------------------------------------------------
# MCI (monthly calculation index)
# --------------------------------------------------------------------------------------------------


class MciUnknown(LookupError):
    """No MCI value is known for the requested date."""


class MciDataError(ValueError):
    """An MCI data file is malformed."""


@dataclass(frozen=True, slots=True)
class MciValue:
    """The MCI in tenge in force from ``valid_from`` until the next entry, and where it comes from."""

    valid_from: date
    tenge: int
    source: str


def _parse_mci(doc: Mapping[str, Any], origin: str) -> tuple[MciValue, ...]:
    entries = doc.get("mci")
    if not isinstance(entries, list) or not entries:
        raise MciDataError(f"{origin}: expected a non-empty [[mci]] array")
    values = []
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise MciDataError(f"{origin}: mci[{i}] is not a table")
        valid_from, tenge, source = entry.get("valid_from"), entry.get("tenge"), entry.get("source")
        # tomllib gives datetime for date-times; datetime is a date subclass, so exclude it.
        if not isinstance(valid_from, date) or isinstance(valid_from, datetime):
            raise MciDataError(f"{origin}: mci[{i}].valid_from must be a date (YYYY-MM-DD)")
        if not isinstance(tenge, int) or isinstance(tenge, bool) or tenge <= 0:
            raise MciDataError(f"{origin}: mci[{i}].tenge must be a positive integer")
        if not isinstance(source, str) or not source.strip():
            raise MciDataError(f"{origin}: mci[{i}].source must be a non-empty string")
        values.append(MciValue(valid_from=valid_from, tenge=tenge, source=source.strip()))
    values.sort(key=lambda v: v.valid_from)
    for prev, cur in pairwise(values):
        if prev.valid_from == cur.valid_from:
            raise MciDataError(f"{origin}: two entries are valid from {cur.valid_from.isoformat()}")
    return tuple(values)


@lru_cache(maxsize=1)
def _bundled_mci() -> tuple[MciValue, ...]:
    data = resources.files(_DATA_PACKAGE).joinpath("mci.toml").read_text("utf-8")
    return _parse_mci(tomllib.loads(data), "bundled mci.toml")


def read_mci_file(path: str | os.PathLike[str] | None = None) -> tuple[MciValue, ...]:
    """Read and check an MCI file (format of the bundled ``mci.toml``), sorted by ``valid_from``.

    ``path=None`` reads the bundled file. Raises :class:`MciDataError` for malformed content.
    """
    if path is None:
        return _bundled_mci()
    with open(path, "rb") as fh:
        try:
            doc = tomllib.load(fh)
        except tomllib.TOMLDecodeError as exc:
            raise MciDataError(f"{os.fspath(path)}: {exc}") from exc
    return _parse_mci(doc, os.fspath(path))


_active_mci: tuple[MciValue, ...] | None = None


def load_mci(path: str | os.PathLike[str] | None = None) -> tuple[MciValue, ...]:
    """Make the MCI file at ``path`` the process-wide table (``None``: back to the bundled file).

    This is how an administrator's dated file replaces the bundled values. The file is checked
    first; on error the current table stays in force. Returns the new table.
    """
    global _active_mci
    table = read_mci_file(path)
    _active_mci = None if path is None else table
    return table


def _table(path: str | os.PathLike[str] | None) -> tuple[MciValue, ...]:
    if path is not None:
        return read_mci_file(path)
    return _active_mci if _active_mci is not None else _bundled_mci()


def mci_table(*, path: str | os.PathLike[str] | None = None) -> list[MciValue]:
    """All known MCI values, oldest first (from ``path`` if given, else the active table)."""
    return list(_table(path))


def mci_on(day: date, *, path: str | os.PathLike[str] | None = None) -> int:
    """The MCI in tenge in force on ``day``: the latest entry whose ``valid_from`` is not after it.

    Raises :class:`MciUnknown` for a day before the first entry. A day after the last entry gets the
    last value; keep the file up to date when a new budget law sets the next year's MCI.
    """
    if not isinstance(day, date):
        raise TypeError("day must be a date")
    if isinstance(day, datetime):  # use its calendar date
        day = day.date()
    current: MciValue | None = None
    for value in _table(path):
        if value.valid_from > day:
            break
        current = value
    if current is None:
        raise MciUnknown(f"no MCI value is known for {day.isoformat()}")
    return current.tenge


def fine_in_tenge(mci_units: int, day: date, *, path: str | os.PathLike[str] | None = None) -> int:
    """Convert a fine of ``mci_units`` MCI to tenge with the MCI in force on ``day`` (the offence)."""
    if not isinstance(mci_units, int) or isinstance(mci_units, bool):
        raise TypeError("mci_units must be an int")
    if mci_units < 0:
        raise ValueError("mci_units must not be negative")
    return mci_units * mci_on(day, path=path)
