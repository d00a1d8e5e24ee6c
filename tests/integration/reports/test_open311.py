"""Open311 GeoReport v2: discovery, services, filing (anonymous or a registered system), public lookups."""

from __future__ import annotations

import re
import time
import xml.etree.ElementTree as ET
from typing import Any

import pytest
import sqlalchemy as sa

from qorgau.kernel import kz
from qorgau.kernel.auth import services as auth
from qorgau.kernel.context import Ctx
from qorgau.kernel.errors import Problem
from qorgau.reports import catalog, open311
from qorgau.reports import tables as t
from tests.integration.reports.flows import as_anonymous, open_with_receipt
from tests.integration.reports.test_citizen_reports import found_anywhere

DESCRIPTION = (
    "A man in a grey coat broke the bus stop glass on Abai avenue; a witness can be called at +7 701 234 56 78."
)
V2 = "/open311/v2"


def parse_xml(content: bytes) -> ET.Element:
    return ET.fromstring(content)  # noqa: S314 - our own server's answer


def form(**overrides: str) -> dict[str, str]:
    data = {
        "service_code": "vandalism",
        "attribute[region]": "almaty",
        "description": DESCRIPTION,
        "address_string": "Abai avenue 52, flat 7",
        "lat": "43.2389",
        "long": "76.8897",
        "email": "reporter@example.kz",
        "first_name": "Aigul",
        "phone": "+77012345678",
    }
    data.update(overrides)
    return data


def file(client: Any, fmt: str = "json", **overrides: str) -> Any:
    return client.post(f"{V2}/requests.{fmt}", data=form(**overrides))


def admin_ctx(kernel: Any, demo: Any) -> Ctx:
    return Ctx(kernel, auth.do_sign_in(kernel, "admin", demo["admin"].password).actor)


def test_discovery_and_services(client: Any, kernel: Any, demo: Any) -> None:
    as_anonymous(client)
    body = client.get(f"{V2}/discovery.json").json()
    endpoint = body["endpoints"][0]
    assert endpoint["specification"] == "http://wiki.open311.org/GeoReport_v2"
    assert endpoint["url"].endswith("/open311/v2") and "text/xml" in endpoint["formats"]
    xml = parse_xml(client.get(f"{V2}/discovery.xml").content)
    assert xml.tag == "discovery" and xml.find("endpoints/endpoint/specification").text == open311.SPECIFICATION
    assert [f.text for f in xml.findall("endpoints/endpoint/formats/format")] == ["application/json", "text/xml"]

    services = client.get(f"{V2}/services.json").json()
    assert [s["service_code"] for s in services] == [c.code for c in catalog.categories()]
    assert set(services[0]) == {"service_code", "service_name", "description", "metadata", "type", "keywords", "group"}
    assert services[0]["metadata"] is True and services[0]["type"] == "realtime"
    response = client.get(f"{V2}/services.xml")
    assert response.headers["content-type"].startswith("text/xml")
    assert response.content.startswith(b'<?xml version="1.0" encoding="UTF-8"?>')
    root = parse_xml(response.content)
    assert root.tag == "services" and len(root.findall("service")) == len(services)
    assert root.find("service/metadata").text == "true"

    definition = client.get(f"{V2}/services/vandalism.json").json()
    assert definition["service_code"] == "vandalism"
    region = definition["attributes"][0]
    assert region["code"] == "region" and region["required"] is True and region["datatype"] == "singlevaluelist"
    assert len(region["values"]) == 20 and {"key": "almaty", "name": "Almaty City"} in region["values"]
    xml_def = parse_xml(client.get(f"{V2}/services/vandalism.xml").content)
    assert xml_def.tag == "service_definition"
    assert len(xml_def.findall("attributes/attribute/values/value")) == 20
    client.headers["Accept-Language"] = "ru"
    assert client.get(f"{V2}/services.json").json()[0]["service_name"] == catalog.categories()[0].name("ru")


def test_errors_are_the_spec_error_array(client: Any, kernel: Any, demo: Any) -> None:
    as_anonymous(client)
    response = client.get(f"{V2}/services/parking.json")
    assert response.status_code == 404
    assert response.json() == [{"code": 404, "description": "no service with service_code parking"}]
    xml = client.get(f"{V2}/services/parking.xml")
    assert xml.status_code == 404
    root = parse_xml(xml.content)
    assert root.tag == "errors" and root.find("error/code").text == "404"
    assert root.find("error/description").text.startswith("no service")
    assert client.get(f"{V2}/requests/NOPE0-NOPE0.json").json()[0]["code"] == 404
    assert client.get(f"{V2}/services.yaml").json()[0]["code"] == 404
    missing = file(client, service_code="")
    assert missing.status_code == 400 and missing.json()[0]["description"] == "service_code is required"
    short = file(client, description="short")
    assert short.status_code == 400 and short.json()[0]["description"].startswith("description:")
    no_region = client.post(f"{V2}/requests.xml", data={k: v for k, v in form().items() if k != "attribute[region]"})
    assert no_region.status_code == 400
    assert parse_xml(no_region.content).find("error/description").text.startswith("attribute[region]")
    bad_region = file(client, **{"attribute[region]": "mars"})
    assert bad_region.status_code == 400 and bad_region.json()[0]["description"].startswith("attribute[region]:")
    not_form = client.post(f"{V2}/requests.json", json=form())
    assert not_form.status_code == 400 and "form-encoded" in not_form.json()[0]["description"]
    with kernel.db.read() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(t.reports)).scalar_one() == 0


def test_anonymous_filing_gives_a_token_and_the_receipt(client: Any, kernel: Any, demo: Any) -> None:
    as_anonymous(client)
    client.headers["User-Agent"] = "Zz-Open311-Probe/9.9"
    response = file(client)
    assert response.status_code == 201, response.text
    [answer] = response.json()
    assert "service_request_id" not in answer
    token, receipt = answer["token"], answer["receipt"]
    assert re.fullmatch(r"(\d{4} ){6}\d{4}", receipt)
    # The receipt opens the report on the web like one filed there.
    opened = open_with_receipt(client, receipt)
    assert opened.status_code == 200 and "bus stop glass" in opened.text

    [resolved] = client.get(f"{V2}/tokens/{token}.json").json()
    ref = resolved["service_request_id"]
    assert resolved["token"] == token
    assert client.get(f"{V2}/tokens/{token[:-1]}x.json").status_code == 404
    xml_token = parse_xml(client.get(f"{V2}/tokens/{token}.xml").content)
    assert xml_token.tag == "service_requests" and xml_token.find("request/service_request_id").text == ref

    [public] = client.get(f"{V2}/requests/{ref}.json").json()
    assert public["service_code"] == "vandalism" and public["status"] == "open"
    assert public["address"] == "Almaty City" and public["address_id"] == "almaty"
    assert "lat" not in public and "long" not in public
    assert "701" not in public["description"] and "[PHONE]" in public["description"]
    assert "Abai avenue 52" not in str(public) and "flat 7" not in str(public)
    assert public["requested_datetime"].endswith("T00:00:00+05:00")
    assert public["agency_responsible"]
    xml_request = parse_xml(client.get(f"{V2}/requests/{ref}.xml").content)
    assert xml_request.tag == "service_requests"
    assert xml_request.find("request/service_request_id").text == ref
    assert xml_request.find("request/status").text == "open"

    # Nothing about the client or the personal fields GeoReport allows is stored.
    for needle in ("Zz-Open311-Probe", "testclient", "reporter@example.kz", "Aigul", "+77012345678"):
        assert not found_anywhere(kernel, needle), needle
    with kernel.db.read() as conn:
        row = conn.execute(sa.select(t.reports)).one()
    assert row.named is False and row.reporter_ref is None
    with kernel.db.read() as conn:
        assert conn.execute(sa.select(t.report_stats.c.count)).scalar_one() == 1


def test_registered_systems_get_the_request_id(client: Any, kernel: Any, demo: Any) -> None:
    integration_id, key = open311.do_create_integration(admin_ctx(kernel, demo), "Almaty city app")
    with kernel.db.read() as conn:
        stored = conn.execute(sa.select(t.report_integrations)).one()
    assert stored.key_hash != key and key not in stored.key_hash
    as_anonymous(client)
    response = file(client, api_key=key)
    assert response.status_code == 201, response.text
    [answer] = response.json()
    assert "token" not in answer and answer["receipt"]
    assert client.get(f"{V2}/requests/{answer['service_request_id']}.json").json()[0]["service_code"] == "vandalism"
    # Not throttled like one web client: a city app files for many people.
    for _ in range(kernel.settings.reports_submissions_per_hour + 1):
        assert file(client, api_key=key).status_code == 201
    wrong = file(client, api_key="o311_wrong")
    assert wrong.status_code == 403 and wrong.json()[0]["code"] == 403
    open311.do_revoke_integration(admin_ctx(kernel, demo), integration_id)
    assert file(client, api_key=key).status_code == 403


def test_only_the_platform_admin_registers_systems(kernel: Any, demo: Any) -> None:
    for login in ("aigerim.admin", "serik.police", "850808301077"):
        actor = auth.do_sign_in(kernel, login, demo[login].password).actor
        with pytest.raises(Problem) as caught:
            open311.do_create_integration(Ctx(kernel, actor), "x")
        assert caught.value.code == "auth.forbidden"
    with pytest.raises(Problem):
        open311.do_create_integration(Ctx(kernel, None), "x")


def test_signed_in_clients_cannot_file_through_open311(client: Any, kernel: Any, demo: Any) -> None:
    actor = auth.do_sign_in(kernel, "850808301077", demo["850808301077"].password).actor
    _id, token = auth.do_create_api_token(Ctx(kernel, actor), name="o311", scopes=["*"])
    as_anonymous(client)
    response = client.post(f"{V2}/requests.json", data=form(), headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 403 and response.json()[0]["code"] == 403


def test_request_list_filters(client: Any, kernel: Any, demo: Any, monkeypatch: Any) -> None:
    # Every cell counts as published here; test_the_list_keeps_to_published_cells covers suppression.
    monkeypatch.setattr(
        open311, "published_cells", lambda _k: {(r.code, c.code) for r in kz.regions() for c in catalog.categories()}
    )
    as_anonymous(client)
    refs = {}
    for code in ("vandalism", "noise", "noise"):
        [answer] = file(client, service_code=code).json()
        refs.setdefault(code, []).append(
            client.get(f"{V2}/tokens/{answer['token']}.json").json()[0]["service_request_id"]
        )
    withdrawn = file(client, service_code="other").json()[0]

    def close(ref: str) -> None:
        kernel.writer.run(
            lambda tx: tx.execute(t.reports.update().where(t.reports.c.ref == ref).values(status="closed"))
        )

    close(refs["noise"][0])
    withdrawn_ref = client.get(f"{V2}/tokens/{withdrawn['token']}.json").json()[0]["service_request_id"]
    kernel.writer.run(
        lambda tx: tx.execute(t.reports.update().where(t.reports.c.ref == withdrawn_ref).values(status="withdrawn"))
    )

    def ids(**params: str) -> set[str]:
        response = client.get(f"{V2}/requests.json", params=params)
        assert response.status_code == 200, response.text
        return {r["service_request_id"] for r in response.json()}

    everything = {*refs["vandalism"], *refs["noise"]}
    assert ids() == everything  # the withdrawn one is never public
    assert ids(service_code="noise") == set(refs["noise"])
    assert ids(service_code="noise,vandalism") == everything
    assert ids(status="closed") == {refs["noise"][0]}
    assert ids(status="open") == {refs["noise"][1], *refs["vandalism"]}
    assert ids(status="open,closed") == everything
    assert ids(service_request_id=f"{refs['vandalism'][0]},{withdrawn_ref}") == {refs["vandalism"][0]}
    assert client.get(f"{V2}/requests/{withdrawn_ref}.json").status_code == 404
    assert ids(start_date="2020-01-01T00:00:00Z", end_date="2020-02-01T00:00:00Z") == set()
    hour_ago = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 3600))
    assert ids(start_date=hour_ago) == everything
    assert ids(end_date=hour_ago) == set()
    too_long = client.get(
        f"{V2}/requests.json",
        params={"start_date": "2020-01-01T00:00:00Z", "end_date": "2020-06-01T00:00:00Z"},
    )
    assert too_long.status_code == 400 and "90 days" in too_long.json()[0]["description"]
    bad = client.get(f"{V2}/requests.xml", params={"start_date": "yesterday"})
    assert bad.status_code == 400 and parse_xml(bad.content).find("error/description").text.startswith("start_date")
    assert client.get(f"{V2}/requests.json", params={"status": "pending"}).status_code == 400
    assert client.get(f"{V2}/requests.json", params={"service_code": "parking"}).status_code == 400
    listing = parse_xml(client.get(f"{V2}/requests.xml").content)
    assert listing.tag == "service_requests" and len(listing.findall("request")) == 3


def test_the_georeport_client_from_pypi_reads_the_api(app: Any, kernel: Any, demo: Any, monkeypatch: Any) -> None:
    """The `georeport` package (PyPI) against a real server: services, definitions, requests, JSON and XML."""
    import georeport

    monkeypatch.setattr(open311, "published_cells", lambda _k: {("almaty", "vandalism")})
    import httpx

    from tests.live import serve

    with serve(app) as url:
        root = url + V2
        answer = httpx.post(root + "/requests.json", data=form()).json()[0]
        ref = httpx.get(f"{root}/tokens/{answer['token']}.json").json()[0]["service_request_id"]
        for fmt in ("json", "xml"):
            client = georeport.GeoReport(root, output_format=fmt)
            services = client.get_service_list()
            assert [s["service_code"] for s in services] == [c.code for c in catalog.categories()]
            definition = client.get_service_definition("vandalism")
            assert definition["service_code"] == "vandalism"
            one = client.get_service_request(ref)
            assert one["service_request_id"] == ref and one["status"] == "open"
            listed = client.get_service_requests(service_code="vandalism", status="open")
            listed = listed if isinstance(listed, list) else [listed]  # xmltodict: one element is a dict
            assert [r["service_request_id"] for r in listed] == [ref]


def test_the_list_keeps_to_published_cells(client: Any, kernel: Any, demo: Any) -> None:
    """A filtered list would count reports per region and category: it shows only cells the statistics show."""
    as_anonymous(client)
    for _ in range(3):
        assert file(client, service_code="noise").status_code == 201
    # Three noise reports in one region: a suppressed cell ("<10"), so the public list shows none of them.
    assert client.get(f"{V2}/requests.json", params={"service_code": "noise"}).json() == []
    [answer] = file(client, service_code="noise").json()
    ref = client.get(f"{V2}/tokens/{answer['token']}.json").json()[0]["service_request_id"]
    # A report is still readable by its own id.
    assert client.get(f"{V2}/requests/{ref}.json").json()[0]["service_request_id"] == ref
