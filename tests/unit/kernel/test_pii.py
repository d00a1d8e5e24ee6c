"""Unit tests for qorgau.kernel.pii: each label, the span conventions of DOMAIN.md, the CLI."""

from __future__ import annotations

import io
import itertools
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from qorgau.kernel import kz
from qorgau.kernel.pii import LABELS, PiiInputError, Span, find_pii, redact, redact_stream, scan_stream
from qorgau.kernel.pii_cli import pii_app


def found(text: str) -> list[tuple[str, str]]:
    return [(text[s.start : s.end], s.label) for s in find_pii(text)]


def labels(text: str, label: str) -> list[str]:
    return [t for t, lab in found(text) if lab == label]


# --------------------------------------------------------------------------------------------------
# IIN / BIN
# --------------------------------------------------------------------------------------------------


def test_iin_valid_contiguous_and_spaced():
    assert labels("Мой ИИН 850808301077, прошу проверить.", "IIN") == ["850808301077"]
    assert labels("ЖСН: 850808 301077.", "IIN") == ["850808 301077"]
    assert labels("IIN 061211600012", "IIN") == ["061211600012"]


def test_iin_wrong_control_digit_is_not_an_iin():
    assert kz.is_valid_iin("850808301077")
    assert found("ИИН 850808301078 указан неверно") == []


def test_iin_impossible_or_future_birth_date_is_not_an_iin():
    month13 = "851308301070"
    future = "350101500000"
    for first11 in (month13[:11], future[:11]):
        c = kz.iin_control_digit(first11)
        number = first11 + str(c if c is not None else 0)
        assert found(f"ИИН {number}") == [], number


def test_iin_inside_a_longer_number_is_not_an_iin():
    assert labels("счёт 1850808301077 и 8508083010771", "IIN") == []


def test_bin():
    assert found("ТОО, БИН 940140000385") == [("940140000385", "BIN")]
    assert found("БСН 940140000386") == []  # wrong control digit


# --------------------------------------------------------------------------------------------------
# PHONE
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "phone",
    [
        "+7 701 234 56 78",
        "8 701 234 56 78",
        "8(701)2345678",
        "+7(701)234-56-78",
        "87012345678",
        "+77012345678",
        "8-701-234-56-78",
        "8 (727) 123-45-67",
        "+7 7172 55-66-77",
        "7012345678",
    ],
)
def test_phone_formats(phone):
    assert found(f"звоните {phone}, спасибо") == [(phone, "PHONE")]


def test_phone_boundaries_exclude_keyword_brackets_and_punctuation():
    assert found("(тел. 8 701 234 56 78).") == [("8 701 234 56 78", "PHONE")]
    assert found("номер (87012345678)") == [("87012345678", "PHONE")]
    assert found("Tel: +7 777 123 45 67.") == [("+7 777 123 45 67", "PHONE")]


def test_two_phones_next_to_each_other():
    text = "87012345678 87771234567"
    assert found(text) == [("87012345678", "PHONE"), ("87771234567", "PHONE")]


def test_not_phones():
    assert found("сумма 7 000 000 000 тенге") == []
    assert found("Russian number +7 916 123 45 67") == []  # +7 9xx is Russia, not Kazakhstan
    assert found("дата 12.05.2024 14:30, заявка 1234567") == []


# --------------------------------------------------------------------------------------------------
# EMAIL, CARD, IBAN
# --------------------------------------------------------------------------------------------------


def test_email_without_trailing_punctuation():
    assert found("Пишите: aigerim.n@mail.kz.") == [("aigerim.n@mail.kz", "EMAIL")]
    assert found("mail (john_smith+1@gmail.com)") == [("john_smith+1@gmail.com", "EMAIL")]


def test_card_luhn_and_separators():
    assert found("карта 4400 4301 2345 6786") == []  # Luhn fails
    good = "4400430123456789"
    assert found(f"карта {good}") == [(good, "CARD")]
    assert found("карта 4400-4301-2345-6789.") == [("4400-4301-2345-6789", "CARD")]
    assert found("карта 4400 4301 2345 6789") == [("4400 4301 2345 6789", "CARD")]


def test_masked_card_is_not_a_card():
    assert found("карта 4400 43** **** 1234") == []


def test_iban_compact_and_grouped():
    assert found("счёт KZ86125KZT5004100100.") == [("KZ86125KZT5004100100", "IBAN")]
    assert found("IBAN KZ86 125K ZT50 0410 0100") == [("KZ86 125K ZT50 0410 0100", "IBAN")]
    assert found("счёт KZ87125KZT5004100100") == []  # mod-97 fails


# --------------------------------------------------------------------------------------------------
# PLATE
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("plate", ["123 ABC 02", "123ABC02", "777 AB 01", "001 КАВ 17", "555 ВОР 20"])
def test_plates(plate):
    assert found(f"машина {plate} стоит") == [(plate, "PLATE")]


def test_plate_needs_a_region_code():
    assert found("машина 123 ABC 45 стоит") == []


# --------------------------------------------------------------------------------------------------
# PERSON
# --------------------------------------------------------------------------------------------------


def test_person_with_initials_and_case_endings():
    assert labels("Сосед (Иванов А.) шумит", "PERSON") == ["Иванов А."]
    assert labels("Заявление от А.Б. Петрова", "PERSON") == ["А.Б. Петрова"]
    assert labels("Позвонил Ахметовой Гульнаре", "PERSON") == ["Ахметовой Гульнаре"]
    assert labels("Нұрлан Серікұлына хабарласыңыз", "PERSON") == ["Нұрлан Серікұлына"]
    assert labels("Петров Сергей Иванович пришёл", "PERSON") == ["Петров Сергей Иванович"]


def test_person_kazakh_and_english():
    assert labels("Көршім Айгерім түнде шу шығарады", "PERSON") == ["Айгерім"]
    assert labels("Жүргізуші Серікұлы Нұрлан жол ережесін бұзды", "PERSON") == ["Серікұлы Нұрлан"]
    assert labels("My neighbour Yerlan Akhmetov is loud", "PERSON") == ["Yerlan Akhmetov"]


def test_person_titles_and_possessive_are_outside():
    assert labels("Mr. Smith's car was parked there", "PERSON") == ["Smith"]
    assert labels("капитан Жумабаев отказал", "PERSON") == ["Жумабаев"]
    assert labels("гражданин Ким скрылся", "PERSON") == ["Ким"]


def test_street_named_after_a_person_is_not_a_person():
    assert found("на улице Жамбыла было шумно") == []
    assert found("Абай көшесінде жол жөнделуде") == []
    assert found("школа имени Абая закрыта") == []
    assert found("на пересечении ул. Абая и Сейфуллина авария") == []


def test_shop_or_town_named_after_a_person_is_not_a_person():
    assert found("магазин «Айгерим» продаёт алкоголь ночью") == []
    assert found("«Айгерім» дүкені түнде ашық") == []
    assert found("near Peter's Bakery shop") == []
    assert found("в г. Конаев ремонт дороги") == []


def test_common_words_are_not_persons():
    assert found("Мужчина в куртке украл телефон. Машина уехала.") == []
    assert found("Снова шумят соседи сверху.") == []


# --------------------------------------------------------------------------------------------------
# ADDRESS
# --------------------------------------------------------------------------------------------------


def test_address_from_city_to_flat():
    text = "Сосед с ул. Абая 15, кв. 7 (Иванов А.) шумит ночью, его номер 8 701 234 56 78"
    assert found(text) == [
        ("ул. Абая 15, кв. 7", "ADDRESS"),
        ("Иванов А.", "PERSON"),
        ("8 701 234 56 78", "PHONE"),
    ]
    assert labels("Адрес: 050012, г. Алматы, ул. Толе би, д. 101, кв. 5.", "ADDRESS") == [
        "050012, г. Алматы, ул. Толе би, д. 101, кв. 5"
    ]
    assert labels("Алматы қаласы, Абай даңғылы, 150 үй, 12 пәтер тұрғыны", "ADDRESS") == [
        "Алматы қаласы, Абай даңғылы, 150 үй, 12 пәтер"
    ]
    assert labels("He lives at 15 Abay Avenue, apt. 7, Almaty.", "ADDRESS") == ["15 Abay Avenue, apt. 7, Almaty"]


def test_address_with_city_written_last_and_microdistrict():
    assert labels("живёт: ул. Сатпаева 22, г. Астана", "ADDRESS") == ["ул. Сатпаева 22, г. Астана"]
    assert labels("мкр. Самал-2, д. 58, кв. 3", "ADDRESS") == ["мкр. Самал-2, д. 58, кв. 3"]


def test_street_named_after_a_person_stays_inside_the_address():
    assert found("г. Астана, пр. Кабанбай батыра 11, кв 45") == [
        ("г. Астана, пр. Кабанбай батыра 11, кв 45", "ADDRESS")
    ]


def test_not_addresses():
    assert found("в г. Алматы было холодно") == []  # a bare town
    assert found("на пересечении ул. Абая и ул. Достык") == []  # an intersection
    assert found("на 25 км трассы Алматы – Бишкек ДТП") == []  # a kilometre post
    assert found("Абай даңғылы бойында") == []  # no house number


# --------------------------------------------------------------------------------------------------
# Invariants, redaction, streams and CLI
# --------------------------------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            ["ул. Абая 15", " Иванов А.", " 8 701 234 56 78", ", ", " кв. 7", "850808301077", " Ерлан", "«", "»"]
        )
        | st.text(max_size=8),
        max_size=12,
    ).map("".join)
)
def test_spans_are_sorted_disjoint_and_in_bounds(text):
    spans = find_pii(text)
    assert spans == sorted(spans)
    for a, b in itertools.pairwise(spans):
        assert a.end <= b.start
    for s in spans:
        assert 0 <= s.start < s.end <= len(text) and s.label in LABELS
    assert isinstance(redact(text), str)


def test_redact():
    text = "Иванов А., тел. 8 701 234 56 78."
    assert redact(text) == "[PERSON], тел. [PHONE]."
    assert redact("abc", [Span(0, 1, "PERSON")]) == "[PERSON]bc"
    with pytest.raises(ValueError):
        redact("abcdef", [Span(0, 3, "PERSON"), Span(2, 4, "PHONE")])


def test_scan_and_redact_streams():
    inp = io.StringIO('{"text": "Иванов А."}\n\n{"text": "нет данных"}\n')
    out = io.StringIO()
    assert scan_stream(inp, out) == 2
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert lines == [{"spans": [{"start": 0, "end": 9, "label": "PERSON"}]}, {"spans": []}]
    out = io.StringIO()
    assert redact_stream(io.StringIO('{"text": "тел 87012345678"}\n'), out) == 1
    assert json.loads(out.getvalue()) == {"text": "тел [PHONE]"}


@pytest.mark.parametrize("bad", ["not json\n", "[1, 2]\n", '{"text": 5}\n', '{"body": "x"}\n'])
def test_malformed_line_names_the_line(bad):
    with pytest.raises(PiiInputError) as info:
        scan_stream(io.StringIO('{"text": "ok"}\n' + bad), io.StringIO())
    assert info.value.line_no == 2


def test_cli_scan_and_redact():
    runner = CliRunner()
    res = runner.invoke(pii_app, ["scan"], input='{"text": "ИИН 850808301077"}\n')
    assert res.exit_code == 0
    assert json.loads(res.stdout) == {"spans": [{"start": 4, "end": 16, "label": "IIN"}]}
    res = runner.invoke(pii_app, ["redact"], input='{"text": "почта a@b.kz"}\n')
    assert res.exit_code == 0
    assert json.loads(res.stdout) == {"text": "почта [EMAIL]"}


def test_cli_malformed_input_exits_2():
    res = CliRunner().invoke(pii_app, ["scan"], input='{"text": "ok"}\n{oops\n')
    assert res.exit_code == 2
    assert "line 2" in res.output


@pytest.mark.parametrize(
    ("text", "address"),
    [
        ("во дворе дома № 12 по ул. Ленина", "дома № 12 по ул. Ленина"),
        ("На Абая 150 открыли магазин", "Абая 150"),
        ("мкр Самал 2 д 15 кв 4 — шумят", "мкр Самал 2 д 15 кв 4"),
        ("ЖК «Хайвил», блок 3, кв. 45 — там", "ЖК «Хайвил», блок 3, кв. 45"),
        ("Толе би 12-45, спросить", "Толе би 12-45"),
        ("пр. Достык, 240, БЦ «Нурлы Тау», офис 512", "пр. Достык, 240, БЦ «Нурлы Тау», офис 512"),
        ("Ақтау, 14 мкр, 22 үй, 41 пәтер — осында", "Ақтау, 14 мкр, 22 үй, 41 пәтер"),
        ("Атырау қ., Смағұл Сәдуақасов көшесі, 24 үй.", "Атырау қ., Смағұл Сәдуақасов көшесі, 24 үй"),
        ("Address: 97 Dostyk Ave, Almaty 050051.", "97 Dostyk Ave, Almaty 050051"),
    ],
)
def test_address_forms(text, address):
    assert labels(text, "ADDRESS") == [address]


@pytest.mark.parametrize(
    ("text", "persons"),
    [
        ("Позвоните Айгуль Сапаровой завтра", ["Айгуль Сапаровой"]),
        ("Водитель Toyota Camry (Ахметов) сбил пешехода", ["Ахметов"]),
        ("Хозяин собаки не убирает за ней", []),
        ("Моя фамилия Ли, имя Алексей.", ["Ли", "Алексей"]),
        ("Досым Ерасыл Мұратұлы кеше ұрланды.", ["Ерасыл Мұратұлы"]),
        ("Ерлан Нұрлановты Абай көшесі, 60/1-үй мекенжайынан көрдім.", ["Ерлан Нұрлановты"]),
        ("Сотрудник ЦОНа Абенова требовала ИИН", ["Абенова"]),
        ("The officer, Sgt. Nurlan Abenov, refused.", ["Nurlan Abenov"]),
    ],
)
def test_person_forms(text, persons):
    assert labels(text, "PERSON") == persons
