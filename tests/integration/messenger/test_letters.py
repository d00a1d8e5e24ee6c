"""Official letters over HTTP: register with a number, deliver, read, answer; the registry; who may see."""

from __future__ import annotations

import io
import re
import time
from datetime import date, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from PIL import Image

from qorgau.kernel.auth import services as auth
from qorgau.kernel.db import utc_now_ms
from qorgau.messenger import tables as t
from qorgau.messenger.letters import registration_year, today
from tests.integration.test_auth_http import csrf_from, sign_in


class As:
    """One signed-in person on the shared test client: their own cookies for each request."""

    def __init__(self, client: Any, demo: dict[str, Any], login: str) -> None:
        self.client = client
        client.cookies.clear()
        response = sign_in(client, login, demo[login].password)
        assert response.status_code in (302, 303), response.text[:300]
        self.csrf = csrf_from(client.get("/account").text)
        self.cookies = dict(client.cookies)

    def _call(self, method: str, path: str, **kw: Any) -> Any:
        self.client.cookies.clear()
        self.client.cookies.update(self.cookies)
        response = getattr(self.client, method)(path, **kw)
        self.cookies = dict(self.client.cookies)
        return response

    def get(self, path: str, **kw: Any) -> Any:
        return self._call("get", path, **kw)

    def post(self, path: str, **kw: Any) -> Any:
        return self._call("post", path, **kw)


@pytest.fixture
def people(client: Any, demo: dict[str, Any]) -> dict[str, tuple[As, str]]:
    found = {}
    for name in ("nurlan.official", "dana.official", "serik.police", "erlan.security"):
        person = As(client, demo, name)
        found[name] = (person, person.csrf)
    return found


def agency_id(kernel: Any, code: str) -> str:
    agency = auth.get_agency(kernel, code)
    assert agency is not None
    return agency.id


def register(client: Any, csrf: str, **fields: Any) -> Any:
    files = fields.pop("files", None)
    data = {"_csrf": csrf, **fields}
    return client.post("/messenger/letters", data=data, files=files, follow_redirects=False)


def letter_id_of(response: Any) -> str:
    assert response.status_code == 303, response.text[:800]
    found = re.match(r"/messenger/letters/([0-9a-f]{32})\?registered=1$", response.headers["location"])
    assert found, response.headers["location"]
    return found.group(1)


def states(kernel: Any, letter_id: str) -> dict[str, str]:
    a = t.letter_addressees
    with kernel.db.read() as conn:
        return dict(conn.execute(sa.select(a.c.agency_id, a.c.state).where(a.c.letter_id == letter_id)).all())


def ledger_leaves(kernel: Any) -> list[bytes]:
    with kernel.db.read() as conn:
        return list(conn.execute(sa.text("SELECT leaf FROM ledger_entries ORDER BY leaf_index")).scalars().all())


def ledger_actions(kernel: Any) -> list[str]:
    return [m.group(1).decode() for leaf in ledger_leaves(kernel) if (m := re.search(rb'"action":"([^"]+)"', leaf))]


def png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 8), (0, 95, 143)).save(out, "PNG")
    return out.getvalue()


def test_a_letter_is_registered_delivered_read_and_answered(kernel: Any, people: dict[str, Any]) -> None:
    nurlan, n_csrf = people["nurlan.official"]
    dana, d_csrf = people["dana.official"]
    akimat, digital = agency_id(kernel, "almaty-akimat"), agency_id(kernel, "astana-digital")
    due = (date.today() + timedelta(days=10)).isoformat()
    sent = register(
        nurlan,
        n_csrf,
        addressees=[akimat],
        subject="О подключении к национальному мессенджеру",
        body="Просим до 1 марта подключить всех сотрудников.",
        due=due,
        files=[("files", ("plan.png", png(), "image/png"))],
    )
    letter_id = letter_id_of(sent)
    page = nurlan.get(f"/messenger/letters/{letter_id}?registered=1")
    year = registration_year(int(time.time() * 1000))
    number = re.search(r"№ (УЦА-\d{4}/\d{6})", page.text)
    assert number and number.group(1) == f"УЦА-{year}/000001", page.text[:2000]
    assert states(kernel, letter_id) == {akimat: "registered"}

    # A second letter gets the next number of the same agency's register.
    second = letter_id_of(register(nurlan, n_csrf, addressees=[akimat], subject="Второе", body="Текст"))
    assert f"УЦА-{year}/000002" in nurlan.get(f"/messenger/letters/{second}").text

    # The addressee agency's registry lists it: delivered; opening it: read.
    registry = dana.get("/messenger/letters?dir=in")
    assert registry.status_code == 200 and "О подключении к национальному мессенджеру" in registry.text
    assert states(kernel, letter_id) == {akimat: "delivered"}
    opened = dana.get(f"/messenger/letters/{letter_id}")
    assert opened.status_code == 200 and "Просим до 1 марта" in opened.text
    assert states(kernel, letter_id) == {akimat: "read"}
    attachment = dana.get(f"/messenger/letters/{letter_id}/files/0")
    assert attachment.status_code == 200 and attachment.headers["content-type"] == "image/png"

    # The answer links to the letter and marks it answered.
    reply_form = dana.get(f"/messenger/letters/new?reply_to={letter_id}")
    assert "Re: О подключении" in reply_form.text
    answer_id = letter_id_of(
        register(
            dana, d_csrf, addressees=[digital], subject="Re: О подключении", body="Подключим.", in_reply_to=letter_id
        )
    )
    assert states(kernel, letter_id) == {akimat: "answered"}
    view = nurlan.get(f"/messenger/letters/{letter_id}")
    assert "/messenger/letters/" + answer_id in view.text
    assert f"№ АА-{year}/000001" in view.text

    actions = ledger_actions(kernel)
    for step in ("letter.registered", "letter.delivered", "letter.read", "letter.answered"):
        assert step in actions
    # The ledger carries numbers and ids, never the subject or the text.
    bodies = b"".join(ledger_leaves(kernel))
    assert "национальному".encode() not in bodies and "Подключим".encode() not in bodies


def test_subject_and_text_are_sealed_in_the_database(kernel: Any, people: dict[str, Any]) -> None:
    nurlan, csrf = people["nurlan.official"]
    letter_id = letter_id_of(
        register(
            nurlan, csrf, addressees=[agency_id(kernel, "almaty-akimat")], subject="Секретная тема", body="Тело письма"
        )
    )
    with kernel.db.read() as conn:
        row = conn.execute(sa.select(t.letters).where(t.letters.c.id == letter_id)).one()
    assert "Секретная".encode() not in row.subject and "Тело".encode() not in row.body


def test_other_agencies_do_not_see_a_letter(kernel: Any, people: dict[str, Any]) -> None:
    nurlan, csrf = people["nurlan.official"]
    letter_id = letter_id_of(
        register(nurlan, csrf, addressees=[agency_id(kernel, "almaty-akimat")], subject="Только акимату", body="Текст")
    )
    police, _ = people["serik.police"]
    hidden = police.get(f"/messenger/letters/{letter_id}")
    assert hidden.status_code == 404
    assert "Только акимату" not in police.get("/messenger/letters").text
    assert police.get(f"/messenger/letters/{letter_id}/files/0").status_code == 404
    # The sender's own agency cannot answer its own letter (it was not addressed to it).
    assert nurlan.get(f"/messenger/letters/new?reply_to={letter_id}").status_code == 409


@pytest.mark.parametrize(
    ("fields", "code_field"),
    [
        ({"subject": "", "body": "x"}, "subject"),
        ({"subject": "x" * 301, "body": "x"}, "subject"),
        ({"subject": "Тема", "body": ""}, "body"),
        ({"subject": "Тема", "body": "x", "addressees": []}, "addressees"),
        ({"subject": "Тема", "body": "x", "addressees": ["0" * 32]}, "addressees"),
        ({"subject": "Тема", "body": "x", "due": "2020-01-01"}, "due"),
        ({"subject": "Тема", "body": "x", "due": "31.12.2030"}, "due"),
    ],
)
def test_bad_letters_are_refused_with_the_form_kept(
    kernel: Any, people: dict[str, Any], fields: dict[str, Any], code_field: str
) -> None:
    nurlan, csrf = people["nurlan.official"]
    fields = {"addressees": [agency_id(kernel, "almaty-akimat")], **fields}
    response = register(nurlan, csrf, **fields)
    assert response.status_code == 400, response.text[:300]
    assert 'data-testid="form-error"' in response.text
    if fields.get("body"):
        assert fields["body"] in response.text
    with kernel.db.read() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(t.letters)).scalar() == 0


def _today() -> str:
    # The deployment's today (Kazakhstan's time zone), not the test machine's: near midnight UTC they differ.
    return today(utc_now_ms()).isoformat()


def test_overdue_letters_come_first_and_are_flagged(kernel: Any, people: dict[str, Any]) -> None:
    nurlan, csrf = people["nurlan.official"]
    akimat = agency_id(kernel, "almaty-akimat")
    late = letter_id_of(register(nurlan, csrf, addressees=[akimat], subject="Просроченное", body="x", due=_today()))
    letter_id_of(register(nurlan, csrf, addressees=[akimat], subject="Свежее", body="x"))
    with kernel.db.transaction() as tx:
        tx.execute(t.letters.update().where(t.letters.c.id == late).values(due_at=1))
    page = nurlan.get("/messenger/letters")
    assert page.text.index("Просроченное") < page.text.index("Свежее")
    overdue_only = nurlan.get("/messenger/letters?state=overdue")
    assert "Просроченное" in overdue_only.text and "Свежее" not in overdue_only.text
    found = nurlan.get("/messenger/letters?q=свеж")
    assert "Свежее" in found.text and "Просроченное" not in found.text


def test_a_dsp_letter_shows_its_banner_and_a_security_officer_view_is_ledgered(
    kernel: Any, people: dict[str, Any]
) -> None:
    nurlan, csrf = people["nurlan.official"]
    letter_id = letter_id_of(
        register(nurlan, csrf, addressees=[agency_id(kernel, "almaty-akimat")], subject="ДСП тема", body="x", dsp="1")
    )
    assert 'data-testid="dsp-banner"' in nurlan.get(f"/messenger/letters/{letter_id}").text
    assert "letter.dsp_view" not in ledger_actions(kernel)
    security, _ = people["erlan.security"]
    assert security.get(f"/messenger/letters/{letter_id}").status_code == 200
    assert "letter.dsp_view" in ledger_actions(kernel)


def test_citizens_and_anonymous_have_no_registry(client: Any, demo: dict[str, Any]) -> None:
    anonymous = client.get("/messenger/letters", follow_redirects=False)
    assert anonymous.status_code in (302, 303, 401) and 'data-testid="registry"' not in anonymous.text
    sign_in(client, "850808301077", demo["850808301077"].password)
    assert client.get("/messenger/letters").status_code == 403
