"""Where a report happened, as a keyed coarse key: enough to suggest duplicates, too little to locate anyone.

A report's address and coordinates are encrypted under its own data key, so the database cannot compare
places in clear. At submission the service stores instead a *place key*: an HMAC (the deployment's keyed
hasher) of the region and the ~150 m grid cell of the point, or, without a point, of the normalised
address text. Without the secret the key cannot be reversed by trying every cell of the country; with it,
the service computes at query time the keys of a report's own cell and of its eight neighbours, so two
reports 100 m apart across a cell border are still found together.

The grid: rows of ``CELL_METRES`` of latitude, columns of ``CELL_METRES`` of longitude at the reference
latitude of 48° N (the middle of Kazakhstan). Across the country (40°–56° N) a column is 125–172 m wide,
so any two points less than 125 m apart lie in the same or a neighbouring cell.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Mapping
from typing import Any

from qorgau.kernel.crypto import KeyedHasher

CELL_METRES = 150.0
_METRES_PER_DEGREE = 111_320.0
_REFERENCE_LAT = 48.0
LAT_STEP = CELL_METRES / _METRES_PER_DEGREE
LONG_STEP = CELL_METRES / (_METRES_PER_DEGREE * math.cos(math.radians(_REFERENCE_LAT)))
_PURPOSE = "reports.place"
_NOT_WORD = re.compile(r"[^\w]+")


def cell_of(lat: float, long: float) -> tuple[int, int]:
    """The grid cell (row, column) of a point."""
    return math.floor(lat / LAT_STEP), math.floor(long / LONG_STEP)


def neighbourhood(cell: tuple[int, int]) -> list[tuple[int, int]]:
    """The cell itself, then its eight neighbours (row-major)."""
    row, col = cell
    return [cell, *((row + dr, col + dc) for dr in (-1, 0, 1) for dc in (-1, 0, 1) if (dr, dc) != (0, 0))]


def normal_address(text: str) -> str:
    """An address as compared: NFKC, case-folded, punctuation and repeated spaces removed."""
    folded = unicodedata.normalize("NFKC", text).casefold().replace("ё", "е")
    return " ".join(_NOT_WORD.sub(" ", folded).split())


def cell_key(hasher: KeyedHasher, region_code: str, cell: tuple[int, int]) -> str:
    return hasher.hash(_PURPOSE, f"{region_code}|cell|{cell[0]}|{cell[1]}")


def address_key(hasher: KeyedHasher, region_code: str, address: str) -> str | None:
    normal = normal_address(address)
    return hasher.hash(_PURPOSE, f"{region_code}|address|{normal}") if normal else None


def place_key(
    hasher: KeyedHasher, region_code: str, *, lat: float | None, long: float | None, address: str = ""
) -> str | None:
    """The key stored with a report: of its cell if it has a point, else of its address, else none."""
    if lat is not None and long is not None:
        return cell_key(hasher, region_code, cell_of(lat, long))
    return address_key(hasher, region_code, address)


def nearby_keys(hasher: KeyedHasher, region_code: str, content: Mapping[str, Any]) -> set[str]:
    """The keys a duplicate of a report (its decrypted content) may carry: its cell and the 8 around it."""
    lat, long = content.get("lat"), content.get("long")
    if lat is not None and long is not None:
        return {cell_key(hasher, region_code, c) for c in neighbourhood(cell_of(float(lat), float(long)))}
    key = address_key(hasher, region_code, str(content.get("address") or ""))
    return {key} if key else set()
