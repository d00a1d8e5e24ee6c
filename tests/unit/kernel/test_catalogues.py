"""Every user-facing string in the code and templates has a Kazakh and a Russian translation."""

from __future__ import annotations

from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parents[3]
SRC = ROOT / "src" / "qorgau"


def source_messages() -> set[str]:
    with (ROOT / "babel.cfg").open() as fh:
        method_map, options_map = parse_mapping_cfg(fh)
    found = set()
    for _file, _line, message, _comments, _ctx in extract_from_dir(
        str(SRC), method_map, options_map, keywords={"_": None, "N_": None}
    ):
        found.add(message if isinstance(message, str) else message[0])
    return found


@pytest.mark.parametrize("lang", ["kk", "ru"])
def test_every_message_is_translated(lang: str) -> None:
    with (SRC / "locale" / lang / "LC_MESSAGES" / "messages.po").open("rb") as fh:
        catalog = read_po(fh, locale=lang)
    translated = {m.id for m in catalog if m.id and m.string and not m.fuzzy}
    missing = sorted(source_messages() - translated)
    assert not missing, f"untranslated in {lang} (run `make i18n` and translate): {missing}"
    for m in catalog:
        if m.id and "%(" in m.id:
            assert m.string.count("%(") == m.id.count("%("), m.id
