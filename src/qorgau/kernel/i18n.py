"""Translations (Babel catalogues kk/ru/en) and language negotiation.

Catalogues live in src/qorgau/locale/<lang>/LC_MESSAGES/messages.po; `make i18n` extracts and
compiles them and `make install` compiles them, so a running app reads the .mo files. If a catalogue
was never compiled (a bare checkout), the .po is read directly so the UI is never left untranslated.
"""

from __future__ import annotations

import gettext as _gettext
import threading
from collections.abc import Iterable
from pathlib import Path

from babel import Locale
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations

LANGUAGES: tuple[str, ...] = ("kk", "ru", "en")
LANGUAGE_NAMES = {"kk": "Қазақша", "ru": "Русский", "en": "English"}
LOCALE_DIR = Path(__file__).resolve().parent.parent / "locale"
DOMAIN = "messages"

_cache: dict[str, _gettext.NullTranslations] = {}
_lock = threading.Lock()


def N_(message: str) -> str:
    """Mark a string for extraction without translating it now (translated when shown)."""
    return message


def _load(lang: str) -> _gettext.NullTranslations:
    mo = LOCALE_DIR / lang / "LC_MESSAGES" / f"{DOMAIN}.mo"
    po = LOCALE_DIR / lang / "LC_MESSAGES" / f"{DOMAIN}.po"
    if mo.exists() and (not po.exists() or mo.stat().st_mtime >= po.stat().st_mtime):
        with mo.open("rb") as fh:
            return Translations(fp=fh, domain=DOMAIN)
    if po.exists():
        with po.open("rb") as fh:
            catalog = read_po(fh, locale=lang)
        trans = NullTranslations()
        trans._catalog = {m.id: m.string for m in catalog if m.id and m.string and not m.fuzzy}  # type: ignore[attr-defined]
        return trans
    return NullTranslations()


def translations(lang: str) -> _gettext.NullTranslations:
    """The catalogue for a language (cached per process)."""
    if lang not in LANGUAGES:
        lang = "en"
    found = _cache.get(lang)
    if found is None:
        with _lock:
            found = _cache.get(lang)
            if found is None:
                found = _load(lang)
                _cache[lang] = found
    return found


def gettext(lang: str, message: str, **params: object) -> str:
    """Translate `message` into `lang`; `params` fill `%(name)s` placeholders after translation."""
    text = translations(lang).gettext(message)
    return text % params if params else text


def ngettext(lang: str, singular: str, plural: str, n: int, **params: object) -> str:
    text = translations(lang).ngettext(singular, plural, n)
    return text % {"num": n, **params}


def negotiate(accept_language: str | None, default: str) -> str:
    """Pick a supported language from an Accept-Language header, else `default`."""
    if not accept_language:
        return default
    ranked: list[tuple[float, int, str]] = []
    for pos, part in enumerate(accept_language.split(",")):
        piece = part.strip()
        if not piece:
            continue
        tag, _, params = piece.partition(";")
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                q = 0.0
        ranked.append((-q, pos, tag.strip().lower()))
    for negq, _pos, tag in sorted(ranked):
        if negq == 0:
            continue
        base = tag.split("-")[0]
        if base in LANGUAGES:
            return base
    return default


# Kazakhstan has kept one time zone, UTC+5, since 1 March 2024; tzdata names it Asia/Almaty.
DISPLAY_TIME_ZONE = "Asia/Almaty"


def format_ms(lang: str, ms: int) -> str:
    """A timestamp (ms since the epoch) as local date and time in the reader's language."""
    from datetime import UTC, datetime
    from zoneinfo import ZoneInfo

    from babel.dates import format_datetime

    when = datetime.fromtimestamp(ms / 1000, tz=UTC)
    return format_datetime(when, format="medium", tzinfo=ZoneInfo(DISPLAY_TIME_ZONE), locale=Locale.parse(lang))


def all_languages() -> Iterable[tuple[str, str]]:
    return ((code, LANGUAGE_NAMES[code]) for code in LANGUAGES)


def clear_cache() -> None:
    with _lock:
        _cache.clear()
