"""What the reporter is shown before sending: which personal data the public version hides."""

from __future__ import annotations

import pytest

from qorgau.reports import redaction


@pytest.fixture(autouse=True)
def fallback_detector(monkeypatch: pytest.MonkeyPatch) -> None:
    """These cases check the fallback; the kernel's detector, once installed, has its own tests."""
    monkeypatch.setattr(redaction, "_kernel_detector", lambda: None)


def test_identifiers_phones_and_emails_are_hidden() -> None:
    text = "Кассир потребовал ИИН 850808301077, звоните +7 701 234-56-78 или пишите a.b@mail.kz."
    assert redaction.redact(text) == "Кассир потребовал ИИН [IIN], звоните [PHONE] или пишите [EMAIL]."
    labels = [s.label for s in redaction.segments(text) if s.label]
    assert labels == ["IIN", "PHONE", "EMAIL"]
    assert "".join(s.text for s in redaction.segments(text)) == text


def test_numbers_that_are_not_identifiers_stay() -> None:
    text = "Номер 850808301078 неверный, автобус 12, дом 123456 789012."
    assert redaction.redact(text) == text


def test_a_bin_and_a_landline_with_brackets() -> None:
    assert redaction.redact("ТОО БИН 940140000385, тел. 8 (727) 123-45-67") == "ТОО БИН [BIN], тел. [PHONE]"


def test_the_kernel_detector_is_used_when_present(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        redaction,
        "_kernel_detector",
        lambda: lambda text: [{"start": 0, "end": 6, "label": "PERSON"}, {"start": 3, "end": 9, "label": "X"}],
    )
    assert redaction.redact("Иванов бьёт соседа") == "[PERSON] бьёт соседа"
