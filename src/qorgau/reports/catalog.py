"""Reference data of the reports service: categories and routing, read from data files.

The bundled files live in :mod:`qorgau.reports.data`; an administrator may point the setting
``reports_routing_file`` at a replacement routing file. Both are checked when read: a category or
region code that does not exist is an error, never a silent default.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any

from qorgau.kernel import kz

_DATA = "qorgau.reports.data"
LANGS = ("kk", "ru", "en")


class CatalogError(ValueError):
    """A reports data file is malformed; the message names the file and the entry."""


@dataclass(frozen=True)
class Category:
    code: str
    names: Mapping[str, str] = field(hash=False)
    hints: Mapping[str, str] = field(hash=False)
    # Reports in this category also concern the personal-data regulator (an event tells it).
    regulator: bool = False

    def name(self, lang: str) -> str:
        return self.names.get(lang) or self.names["en"]

    def hint(self, lang: str) -> str:
        return self.hints.get(lang) or self.hints.get("en", "")


def _names(entry: Mapping[str, Any], key: str, origin: str, required: bool = True) -> Mapping[str, str]:
    raw = entry.get(key) or {}
    if not isinstance(raw, dict) or (required and any(not raw.get(lang) for lang in LANGS)):
        raise CatalogError(f"{origin}: {entry.get('code')!r} needs {key} in kk, ru and en")
    return MappingProxyType({str(k): str(v) for k, v in raw.items()})


@lru_cache(maxsize=1)
def categories() -> tuple[Category, ...]:
    """The report categories, in the order the form shows them."""
    doc = json.loads(resources.files(_DATA).joinpath("categories.json").read_text("utf-8"))
    found = []
    for entry in doc["categories"]:
        code = entry.get("code")
        if not isinstance(code, str) or not code or len(code) > 32:
            raise CatalogError(f"categories.json: bad code {code!r}")
        found.append(
            Category(
                code=code,
                names=_names(entry, "names", "categories.json"),
                hints=_names(entry, "hints", "categories.json", required=False),
                regulator=bool(entry.get("regulator", False)),
            )
        )
    if len({c.code for c in found}) != len(found):
        raise CatalogError("categories.json: duplicate category code")
    return tuple(found)


def category(code: str) -> Category | None:
    return next((c for c in categories() if c.code == code), None)


@dataclass(frozen=True)
class Routing:
    """Region (and optionally category) → police unit code, and the unit that takes the rest."""

    fallback_unit: str
    units: Mapping[str, str]
    by_category: Mapping[tuple[str, str], str]

    def unit_for(self, region_code: str, category_code: str) -> str | None:
        """The unit code the data file names for this region and category (None if it names none)."""
        return self.by_category.get((region_code, category_code)) or self.units.get(region_code)


def _parse_routing(doc: Mapping[str, Any], origin: str) -> Routing:
    fallback = doc.get("fallback_unit")
    if not isinstance(fallback, str) or not fallback:
        raise CatalogError(f"{origin}: fallback_unit must name an agency code")
    units: dict[str, str] = {}
    by_category: dict[tuple[str, str], str] = {}
    known = {c.code for c in categories()}
    for region_code, entry in (doc.get("regions") or {}).items():
        try:
            kz.region(region_code)
        except kz.UnknownRegion:
            raise CatalogError(f"{origin}: unknown region {region_code!r}") from None
        if entry.get("unit"):
            units[region_code] = str(entry["unit"])
        for category_code, unit in (entry.get("categories") or {}).items():
            if category_code not in known:
                raise CatalogError(f"{origin}: unknown category {category_code!r} in {region_code!r}")
            by_category[(region_code, category_code)] = str(unit)
    return Routing(fallback, MappingProxyType(units), MappingProxyType(by_category))


@lru_cache(maxsize=8)
def routing(path: Path | None = None) -> Routing:
    """The routing table: the bundled file, or the administrator's file at `path`."""
    if path is None:
        text = resources.files(_DATA).joinpath("routing.json").read_text("utf-8")
        origin = "routing.json"
    else:
        try:
            text = Path(path).read_text("utf-8")
        except OSError as exc:
            raise CatalogError(f"{path}: {exc.strerror}") from None
        origin = str(path)
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CatalogError(f"{origin}: not valid JSON ({exc.msg})") from None
    return _parse_routing(doc, origin)
