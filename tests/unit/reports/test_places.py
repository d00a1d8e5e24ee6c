"""The keyed place key: the grid, the neighbourhood, and that the key says nothing without the secret."""

from __future__ import annotations

import hashlib
import math

import pytest

from qorgau.kernel.crypto import KeyedHasher
from qorgau.reports import places

HASHER = KeyedHasher(b"k" * 32)


def metres_north(lat: float, metres: float) -> float:
    return lat + metres / 111_320.0


def metres_east(lat: float, long: float, metres: float) -> float:
    return long + metres / (111_320.0 * math.cos(math.radians(lat)))


def test_the_cell_is_about_150_metres_across_the_country() -> None:
    assert pytest.approx(150) == places.LAT_STEP * 111_320
    for lat in (40.0, 48.0, 56.0):
        width = places.LONG_STEP * 111_320 * math.cos(math.radians(lat))
        assert 120 < width < 175


def test_the_neighbourhood_is_the_cell_and_its_eight_neighbours() -> None:
    around = places.neighbourhood((10, -3))
    assert around[0] == (10, -3)
    assert len(set(around)) == 9
    assert {(r - 10, c + 3) for r, c in around} == {(dr, dc) for dr in (-1, 0, 1) for dc in (-1, 0, 1)}


@pytest.mark.parametrize("lat,long", [(43.2389, 76.8897), (51.128, 71.43), (55.9, 46.1), (40.1, 87.9)])
@pytest.mark.parametrize("bearing", range(0, 360, 15))
def test_points_100_metres_apart_share_a_neighbourhood(lat: float, long: float, bearing: int) -> None:
    north = 100 * math.cos(math.radians(bearing))
    east = 100 * math.sin(math.radians(bearing))
    other = (metres_north(lat, north), metres_east(lat, long, east))
    here = places.cell_of(lat, long)
    assert places.cell_of(*other) in places.neighbourhood(here)
    content = {"lat": lat, "long": long}
    key = places.place_key(HASHER, "almaty", lat=other[0], long=other[1])
    assert key in places.nearby_keys(HASHER, "almaty", content)


def test_points_10_km_apart_do_not() -> None:
    lat, long = 43.2389, 76.8897
    far = places.place_key(HASHER, "almaty", lat=metres_north(lat, 10_000), long=long)
    assert far not in places.nearby_keys(HASHER, "almaty", {"lat": lat, "long": long})


def test_the_region_is_part_of_the_key() -> None:
    a = places.place_key(HASHER, "almaty", lat=43.2389, long=76.8897)
    b = places.place_key(HASHER, "almaty_region", lat=43.2389, long=76.8897)
    assert a != b


def test_without_a_point_the_normalised_address_is_the_key() -> None:
    a = places.place_key(HASHER, "almaty", lat=None, long=None, address="Абай даңғылы, 52")
    b = places.place_key(HASHER, "almaty", lat=None, long=None, address="  абай   ДАҢҒЫЛЫ 52. ")
    c = places.place_key(HASHER, "almaty", lat=None, long=None, address="Абай даңғылы, 54")
    assert a == b != c
    assert places.nearby_keys(HASHER, "almaty", {"address": "АБАЙ даңғылы 52"}) == {a}
    assert places.place_key(HASHER, "almaty", lat=None, long=None, address=" ,. ") is None
    assert places.nearby_keys(HASHER, "almaty", {"address": ""}) == set()


def test_the_key_cannot_be_reversed_without_the_secret() -> None:
    """Enumerating every cell of the region finds the key only with the deployment's secret."""
    lat, long = 43.2389, 76.8897
    stored = places.place_key(HASHER, "almaty", lat=lat, long=long)
    assert stored is not None and len(stored) == 64
    row, col = places.cell_of(lat, long)
    cells = [(r, c) for r in range(row - 30, row + 31) for c in range(col - 30, col + 31)]
    # An attacker with the database and the code, but another (or no) secret, tries every nearby cell.
    wrong = KeyedHasher(b"x" * 32)
    assert stored not in {places.cell_key(wrong, "almaty", cell) for cell in cells}
    plain = {hashlib.sha256(f"almaty|cell|{r}|{c}".encode()).hexdigest() for r, c in cells}
    assert stored not in plain
    # With the secret, the same enumeration does find it: the secret is what protects the place.
    assert stored in {places.cell_key(HASHER, "almaty", cell) for cell in cells}
