"""Categories and routing come from data files, checked when read."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from qorgau.kernel import kz
from qorgau.reports import catalog


def test_every_category_is_named_in_three_languages() -> None:
    codes = [c.code for c in catalog.categories()]
    assert codes == [
        "public_order",
        "rudeness_fight",
        "public_drinking",
        "traffic_violation",
        "noise",
        "vandalism",
        "unlawful_data_demand",
        "other",
    ]
    for c in catalog.categories():
        assert all(c.names[lang] for lang in ("kk", "ru", "en")), c.code
        assert all(c.hints[lang] for lang in ("kk", "ru", "en")), c.code
    assert [c.code for c in catalog.categories() if c.regulator] == ["unlawful_data_demand"]


def test_every_region_has_a_unit_in_the_bundled_routing() -> None:
    routing = catalog.routing()
    for region in kz.regions():
        assert routing.unit_for(region.code, "noise"), region.code
    assert routing.unit_for("almaty", "noise") == "almaty-police"
    assert routing.fallback_unit


def test_a_routing_file_may_send_one_category_elsewhere(tmp_path: Path) -> None:
    path = tmp_path / "routing.json"
    path.write_text(
        json.dumps(
            {
                "fallback_unit": "almaty-police",
                "regions": {"astana": {"unit": "astana-police", "categories": {"traffic_violation": "astana-traffic"}}},
            }
        )
    )
    routing = catalog.routing(path)
    assert routing.unit_for("astana", "traffic_violation") == "astana-traffic"
    assert routing.unit_for("astana", "noise") == "astana-police"
    assert routing.unit_for("shymkent", "noise") is None


@pytest.mark.parametrize(
    "doc",
    [
        {"regions": {}},
        {"fallback_unit": "x", "regions": {"atlantis": {"unit": "y"}}},
        {"fallback_unit": "x", "regions": {"astana": {"categories": {"jaywalking": "y"}}}},
    ],
)
def test_a_wrong_routing_file_is_an_error_naming_it(tmp_path: Path, doc: dict) -> None:
    path = tmp_path / "routing.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(catalog.CatalogError, match=r"routing\.json"):
        catalog.routing(path)
