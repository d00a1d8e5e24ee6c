"""Tests for qorgau.kernel.kz against the facts in DOMAIN.md."""

from __future__ import annotations

from datetime import date, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qorgau.kernel import kz

TODAY = date(2026, 1, 15)


# --------------------------------------------------------------------------------------------------
# Reference checksum, written independently from DOMAIN.md
# --------------------------------------------------------------------------------------------------


def reference_control(first11: str) -> int | None:
    """DOMAIN.md: c = Σ d_i·w_i mod 11, w = 1..11; if 10, w = 3..11,1,2; if again 10, invalid."""
    d = [int(ch) for ch in first11]
    c = sum(d[i] * (i + 1) for i in range(11)) % 11
    if c == 10:
        second = [3, 4, 5, 6, 7, 8, 9, 10, 11, 1, 2]
        c = sum(d[i] * second[i] for i in range(11)) % 11
        if c == 10:
            return None
    return c


eleven_digits = st.text(alphabet="0123456789", min_size=11, max_size=11)


@st.composite
def iin_prefixes(draw: st.DrawFn) -> tuple[str, date, str]:
    """11 digits with a real, non-future birth date and a valid century/sex digit."""
    birth = draw(st.dates(min_value=date(1800, 1, 1), max_value=TODAY))
    sex = draw(st.sampled_from(["male", "female"]))
    base = {18: 1, 19: 3, 20: 5}[birth.year // 100]
    century_digit = base if sex == "male" else base + 1
    serial = draw(st.text(alphabet="0123456789", min_size=4, max_size=4))
    return f"{birth:%y%m%d}{century_digit}{serial}", birth, sex


@st.composite
def bin_prefixes(draw: st.DrawFn) -> str:
    yy = draw(st.integers(0, 99))
    mm = draw(st.integers(1, 12))
    kind = draw(st.sampled_from("456"))
    branch = draw(st.sampled_from("0123"))
    serial = draw(st.text(alphabet="0123456789", min_size=5, max_size=5))
    return f"{yy:02d}{mm:02d}{kind}{branch}{serial}"


# --------------------------------------------------------------------------------------------------
# Control digit
# --------------------------------------------------------------------------------------------------


def test_worked_example_second_pass() -> None:
    # First pass gives 10, second pass 2.
    assert sum(int(c) * w for c, w in zip("06121160001", range(1, 12), strict=True)) % 11 == 10
    assert kz.iin_control_digit("06121160001") == 2
    assert kz.is_valid_iin("061211600012", today=TODAY)


def test_worked_example_first_pass() -> None:
    assert kz.iin_control_digit("85080830107") == 7
    iin = kz.validate_iin("850808301077", today=TODAY)
    assert iin.value == "850808301077"
    assert iin.birth_date == date(1985, 8, 8)
    assert iin.sex == "male"
    assert iin.sex is kz.Sex.MALE
    assert iin.century == 1900


def test_worked_example_decodes_female_2000s() -> None:
    iin = kz.validate_iin("061211600012", today=TODAY)
    assert iin.birth_date == date(2006, 12, 11)
    assert iin.sex == "female"
    assert iin.century == 2000


def test_control_digit_none_when_both_passes_give_ten() -> None:
    # Search for a prefix whose both passes give 10 and check it is rejected whatever the last digit.
    found = None
    for serial in range(10000):
        prefix = f"8508083{serial:04d}"
        if reference_control(prefix) is None:
            found = prefix
            break
    assert found is not None
    assert kz.iin_control_digit(found) is None
    for last in "0123456789":
        with pytest.raises(kz.InvalidIdentifier) as exc:
            kz.validate_iin(found + last, today=TODAY)
        assert exc.value.code == "kz.iin.checksum"


@pytest.mark.parametrize("bad", ["", "1234567890", "123456789012", "1234567890a", "١٢٣٤٥٦٧٨٩٠١"])
def test_control_digit_rejects_non_11_digits(bad: str) -> None:
    with pytest.raises(ValueError):
        kz.iin_control_digit(bad)


@given(eleven_digits)
def test_control_digit_matches_reference(prefix: str) -> None:
    assert kz.iin_control_digit(prefix) == reference_control(prefix)


@given(iin_prefixes())
def test_appending_control_digit_gives_valid_iin_and_others_invalid(
    case: tuple[str, date, str],
) -> None:
    prefix, birth, sex = case
    control = reference_control(prefix)
    for last in range(10):
        candidate = f"{prefix}{last}"
        if control is not None and last == control:
            iin = kz.validate_iin(candidate, today=TODAY)
            assert iin.birth_date == birth
            assert iin.sex == sex
            assert kz.classify_identifier(candidate, today=TODAY) == "iin"
        else:
            with pytest.raises(kz.InvalidIdentifier) as exc:
                kz.validate_iin(candidate, today=TODAY)
            assert exc.value.code == "kz.iin.checksum"
            assert not kz.is_valid_iin(candidate, today=TODAY)


# --------------------------------------------------------------------------------------------------
# IIN structure
# --------------------------------------------------------------------------------------------------


def _with_control(prefix: str) -> str:
    """Complete 11 digits with a digit that passes the checksum when one exists (else 0)."""
    control = reference_control(prefix)
    return prefix + str(0 if control is None else control)


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ("85080830107", "kz.iin.length"),
        ("8508083010777", "kz.iin.length"),
        ("850808 301077", "kz.iin.length"),
        ("85080830107x", "kz.iin.digits"),
        ("８５０８０８３０１０７７", "kz.iin.digits"),  # full-width digits
        ("850808001077", "kz.iin.century"),
        ("850808701077", "kz.iin.century"),
        ("850808901077", "kz.iin.century"),
        ("850808301078", "kz.iin.checksum"),
    ],
)
def test_invalid_iin_codes(value: str, code: str) -> None:
    with pytest.raises(kz.InvalidIdentifier) as exc:
        kz.validate_iin(value, today=TODAY)
    assert exc.value.code == code
    assert isinstance(exc.value, ValueError)
    assert value not in str(exc.value)


@pytest.mark.parametrize(
    "prefix",
    [
        "85130830107",  # month 13
        "85000830107",  # month 00
        "85023030107",  # 30 February
        "85080030107",  # day 00
        "85043130107",  # 31 April
        "01022950107",  # 29 February 2001 (not a leap year)
        "00022910107",  # 29 February 1800 (not a leap year)
    ],
)
def test_impossible_birth_dates_rejected(prefix: str) -> None:
    with pytest.raises(kz.InvalidIdentifier) as exc:
        kz.validate_iin(_with_control(prefix), today=TODAY)
    assert exc.value.code == "kz.iin.birth_date"


def test_leap_day_accepted() -> None:
    value = _with_control("00022950107")  # 29 February 2000
    assert reference_control(value[:11]) is not None
    assert kz.validate_iin(value, today=TODAY).birth_date == date(2000, 2, 29)


def test_future_birth_date_rejected() -> None:
    value = _with_control("26011650107")  # 16 January 2026, a day after TODAY
    assert reference_control(value[:11]) is not None
    with pytest.raises(kz.InvalidIdentifier) as exc:
        kz.validate_iin(value, today=TODAY)
    assert exc.value.code == "kz.iin.future"
    assert kz.validate_iin(value, today=date(2026, 1, 16)).birth_date == date(2026, 1, 16)


def test_future_birth_date_default_today() -> None:
    value = _with_control("99010160107")  # 2099
    assert not kz.is_valid_iin(value)


def test_outer_whitespace_stripped() -> None:
    assert kz.validate_iin("  850808301077\n", today=TODAY).value == "850808301077"


def test_iin_repr_hides_number() -> None:
    iin = kz.validate_iin("850808301077", today=TODAY)
    assert "850808301077" not in repr(iin)
    assert str(iin) == "850808301077"


# --------------------------------------------------------------------------------------------------
# BIN
# --------------------------------------------------------------------------------------------------


def test_domain_bin_example() -> None:
    b = kz.validate_bin("940140000385", today=TODAY)
    assert b.registered == (1994, 1)
    assert b.entity_type == "resident_legal_entity"
    assert b.branch_kind == "head_office"
    assert b.serial == "00038"
    assert kz.is_valid_bin("940140000385")
    assert kz.classify_identifier("940140000385") == "bin"
    assert not kz.is_valid_iin("940140000385")


@pytest.mark.parametrize(
    ("prefix", "registered", "entity", "branch"),
    [
        ("15035100001", (2015, 3), "non_resident_legal_entity", "branch"),
        ("25126200001", (2025, 12), "individual_entrepreneur", "representative_office"),
        ("26014300001", (2026, 1), "resident_legal_entity", "peasant_farm"),
        ("26024000001", (1926, 2), "resident_legal_entity", "head_office"),  # 2026-02 is future
    ],
)
def test_bin_fields(prefix: str, registered: tuple[int, int], entity: str, branch: str) -> None:
    value = _with_control(prefix)
    assert reference_control(prefix) is not None
    b = kz.validate_bin(value, today=TODAY)
    assert b.registered == registered
    assert b.entity_type == entity
    assert b.branch_kind == branch


@pytest.mark.parametrize(
    ("prefix", "code"),
    [
        ("94134000038", "kz.bin.month"),
        ("94004000038", "kz.bin.month"),
        ("94013000038", "kz.bin.entity_type"),
        ("94017000038", "kz.bin.entity_type"),
        ("94014400038", "kz.bin.branch_kind"),
    ],
)
def test_invalid_bin_codes(prefix: str, code: str) -> None:
    with pytest.raises(kz.InvalidIdentifier) as exc:
        kz.validate_bin(_with_control(prefix), today=TODAY)
    assert exc.value.code == code


def test_bin_checksum_and_shape() -> None:
    for value, code in [
        ("940140000386", "kz.bin.checksum"),
        ("94014000038", "kz.bin.length"),
        ("9401400003-5", "kz.bin.digits"),
    ]:
        with pytest.raises(kz.InvalidIdentifier) as exc:
            kz.validate_bin(value, today=TODAY)
        assert exc.value.code == code


@given(bin_prefixes())
def test_bin_checksum_property(prefix: str) -> None:
    control = reference_control(prefix)
    for last in range(10):
        ok = control is not None and last == control
        assert kz.is_valid_bin(f"{prefix}{last}", today=TODAY) is ok
        if ok:
            assert kz.classify_identifier(f"{prefix}{last}", today=TODAY) == "bin"


@given(st.text(alphabet="0123456789", min_size=12, max_size=12))
def test_classify_is_consistent(value: str) -> None:
    kind = kz.classify_identifier(value, today=TODAY)
    assert kind == (
        "iin" if kz.is_valid_iin(value, today=TODAY) else "bin" if kz.is_valid_bin(value, today=TODAY) else None
    )
    # An IIN and a BIN are told apart by the 5th digit, so never both.
    assert not (kz.is_valid_iin(value, today=TODAY) and kz.is_valid_bin(value, today=TODAY))


def test_classify_garbage() -> None:
    assert kz.classify_identifier("hello") is None
    assert kz.classify_identifier("850808301078") is None


# --------------------------------------------------------------------------------------------------
# Phones
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "written",
    [
        "+7 701 234 56 78",
        "8 (701) 234-56-78",
        "87012345678",
        "7012345678",
        "+77012345678",
        "+7 (701) 234-56-78",
        " 8 701 234 56 78 ",
    ],
)
def test_phone_common_writings(written: str) -> None:
    phone = kz.parse_phone(written)
    assert phone.e164 == "+77012345678"
    assert phone.prefix == "701"
    assert phone.is_mobile
    assert str(phone) == "+77012345678"


@pytest.mark.parametrize(
    "prefix",
    [
        "700",
        "701",
        "702",
        "705",
        "706",
        "707",
        "708",
        "747",
        "760",
        "761",
        "762",
        "763",
        "764",
        "771",
        "775",
        "776",
        "777",
        "778",
        "785",
    ],
)
def test_mobile_prefixes(prefix: str) -> None:
    assert kz.parse_phone(f"8{prefix}1234567").is_mobile


def test_landline_not_mobile() -> None:
    phone = kz.parse_phone("8 (727) 272-45-67")
    assert phone.e164 == "+77272724567"
    assert not phone.is_mobile
    assert kz.parse_phone("+7 717 255 55 55").is_mobile is False


@pytest.mark.parametrize("written", ["+7 916 123-45-67", "8 (926) 123-45-67", "+7 495 123 45 67"])
def test_russian_numbers_rejected(written: str) -> None:
    with pytest.raises(kz.InvalidIdentifier) as exc:
        kz.parse_phone(written)
    assert exc.value.code == "kz.phone.not_kz"


def test_other_country_rejected() -> None:
    with pytest.raises(kz.InvalidIdentifier) as exc:
        kz.parse_phone("+998 90 123 45 67")
    assert exc.value.code == "kz.phone.not_kz"


@pytest.mark.parametrize(
    "written",
    ["", "hello", "+7 701 234", "8701234567890123", "call 87012345678", "8 (701) 234-56-78 ext 5"],
)
def test_invalid_phones(written: str) -> None:
    with pytest.raises(kz.InvalidIdentifier) as exc:
        kz.parse_phone(written)
    assert exc.value.code == "kz.phone.invalid"


def test_unallocated_landline_strict_and_lenient() -> None:
    with pytest.raises(kz.InvalidIdentifier):
        kz.parse_phone("8 (727) 123-45-67")
    phone = kz.parse_phone("8 (727) 123-45-67", strict=False)
    assert phone.e164 == "+77271234567"
    assert not phone.allocated
    assert not phone.is_mobile


# --------------------------------------------------------------------------------------------------
# Regions
# --------------------------------------------------------------------------------------------------


def test_twenty_units_with_unique_codes_and_names() -> None:
    units = kz.regions()
    assert len(units) == 20
    assert len({r.code for r in units}) == 20
    for r in units:
        assert r.code.isascii()
        for lang in kz.LANGUAGES:
            assert r.names[lang].strip()
    assert sum(r.kind == "city" for r in units) == 3
    assert {r.code for r in units if r.kind is kz.RegionKind.CITY} == {"astana", "almaty", "shymkent"}
    isos = [r.iso_3166_2 for r in units if r.iso_3166_2]
    assert len(isos) == len(set(isos))


def test_expected_codes_in_order() -> None:
    assert [r.code for r in kz.regions()] == [
        "abai",
        "akmola",
        "aktobe",
        "almaty_region",
        "atyrau",
        "east_kazakhstan",
        "jambyl",
        "jetisu",
        "karaganda",
        "kostanay",
        "kyzylorda",
        "mangystau",
        "pavlodar",
        "north_kazakhstan",
        "turkistan",
        "ulytau",
        "west_kazakhstan",
        "astana",
        "almaty",
        "shymkent",
    ]
    assert kz.regions() is kz.regions()


def test_region_lookup_and_names() -> None:
    almaty = kz.region("almaty")
    assert almaty.kind == "city"
    assert almaty.name("kk") == "Алматы қаласы"
    assert almaty.name("ru-RU") == almaty.names["ru"]
    assert almaty.name("de") == almaty.names["en"]
    assert kz.region("abai").name("kk") == "Абай облысы"
    assert kz.region("shymkent").name("kk") == "Шымкент қаласы"
    assert kz.region("astana").name("kk") == "Астана"
    assert kz.region("almaty_region").iso_3166_2 == "KZ-19"
    assert hash(almaty) == hash(kz.region("almaty"))


def test_kazakh_names_use_kazakh_letters() -> None:
    assert "Қ" in kz.region("karaganda").name("kk")
    assert "Ұ" in kz.region("ulytau").name("kk")
    assert "ң" in kz.region("mangystau").name("kk")


def test_unknown_region() -> None:
    with pytest.raises(kz.UnknownRegion):
        kz.region("baikonur")
    with pytest.raises(KeyError):
        kz.region("")


# --------------------------------------------------------------------------------------------------
# MCI
# --------------------------------------------------------------------------------------------------


def test_mci_values() -> None:
    assert kz.mci_on(date(2024, 7, 1)) == 3692
    assert kz.mci_on(date(2025, 6, 1)) == 3932
    assert kz.mci_on(date(2025, 12, 31)) == 3932
    assert kz.mci_on(date(2026, 1, 1)) == 4325
    assert kz.mci_on(date(2026, 3, 1)) == 4325
    assert kz.mci_on(datetime(2026, 3, 1, 12, 0)) == 4325


def test_fine_in_tenge() -> None:
    assert kz.fine_in_tenge(10, date(2026, 1, 15)) == 43250
    assert kz.fine_in_tenge(10, date(2025, 12, 31)) == 39320
    assert kz.fine_in_tenge(0, date(2026, 1, 15)) == 0
    with pytest.raises(ValueError):
        kz.fine_in_tenge(-1, date(2026, 1, 15))


def test_mci_before_first_entry() -> None:
    with pytest.raises(kz.MciUnknown):
        kz.mci_on(date(2023, 12, 31))


def test_mci_table() -> None:
    table = kz.mci_table()
    assert [v.valid_from for v in table] == sorted(v.valid_from for v in table)
    assert {v.valid_from.year: v.tenge for v in table}.items() >= {2024: 3692, 2025: 3932, 2026: 4325}.items()
    assert all(v.source for v in table)


def test_mci_override_file(tmp_path) -> None:
    path = tmp_path / "mci.toml"
    path.write_text(
        "[[mci]]\nvalid_from = 2026-07-01\ntenge = 5000\nsource = 'test'\n"
        "[[mci]]\nvalid_from = 2026-01-01\ntenge = 4325\nsource = 'test'\n",
        encoding="utf-8",
    )
    assert kz.mci_on(date(2026, 8, 1), path=path) == 5000
    assert kz.mci_on(date(2026, 8, 1)) == 4325
    try:
        kz.load_mci(path)
        assert kz.fine_in_tenge(2, date(2026, 8, 1)) == 10000
        with pytest.raises(kz.MciUnknown):
            kz.mci_on(date(2025, 6, 1))
    finally:
        kz.load_mci(None)
    assert kz.mci_on(date(2025, 6, 1)) == 3932


@pytest.mark.parametrize(
    "content",
    [
        "",
        "[[mci]]\nvalid_from = 2026-01-01\ntenge = -1\nsource = 'x'\n",
        "[[mci]]\nvalid_from = '2026-01-01'\ntenge = 4325\nsource = 'x'\n",
        "[[mci]]\nvalid_from = 2026-01-01\ntenge = 4325\n",
        "[[mci]]\nvalid_from = 2026-01-01\ntenge = 1\nsource = 'x'\n"
        "[[mci]]\nvalid_from = 2026-01-01\ntenge = 2\nsource = 'y'\n",
        "not toml [",
    ],
)
def test_bad_mci_file_rejected_and_table_kept(tmp_path, content: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(kz.MciDataError):
        kz.load_mci(path)
    assert kz.mci_on(date(2025, 6, 1)) == 3932


@settings(max_examples=50)
@given(st.integers(0, 2000), st.dates(min_value=date(2024, 1, 1), max_value=date(2030, 12, 31)))
def test_fine_is_units_times_mci(units: int, day: date) -> None:
    assert kz.fine_in_tenge(units, day) == units * kz.mci_on(day)
