"""ДСП ("For official use only") rules: marking, members of one agency, forwarding, views, exports."""

from __future__ import annotations

import pytest

from qorgau.kernel.auth.roles import Actor, Role
from qorgau.kernel.errors import Problem
from qorgau.messenger.domain import (
    DSP_STATE,
    check_dsp_forward,
    check_dsp_member,
    check_dsp_message,
    content_marked_dsp,
    dsp_view_is_ledgered,
    forwarded_from,
    may_export_dsp,
    room_marked_dsp,
)


def _actor(role: Role, agency: str | None = "a1") -> Actor:
    return Actor(user_id="u1", username="u", role=role, display_name="U", agency_id=agency)


def test_a_room_is_dsp_by_initial_state_or_creation_content() -> None:
    assert room_marked_dsp([{"type": DSP_STATE, "content": {"dsp": True}}], None)
    assert room_marked_dsp([], {"kz.qorgau.dsp": True})
    assert not room_marked_dsp([], None)
    assert not room_marked_dsp([{"type": DSP_STATE, "content": {"dsp": False}}], {})
    assert not room_marked_dsp([{"type": DSP_STATE, "state_key": "x", "content": {"dsp": True}}], {})
    assert not room_marked_dsp([{"type": DSP_STATE, "content": {"dsp": "yes"}}], {"kz.qorgau.dsp": 1})


def test_dsp_rooms_keep_to_one_agency() -> None:
    assert check_dsp_member(room_dsp=False, room_agency="a1", member_agency="a2") is None
    assert check_dsp_member(room_dsp=True, room_agency="a1", member_agency="a1") is None
    assert check_dsp_member(room_dsp=True, room_agency="a1", member_agency="a2") == (
        "ДСП room: members must belong to a1"
    )
    assert check_dsp_member(room_dsp=True, room_agency="a1", member_agency=None) is not None


def test_dsp_messages_stay_in_dsp_rooms() -> None:
    marked = {"msgtype": "m.text", "body": "x", "kz.qorgau.dsp": True}
    assert content_marked_dsp(marked) and not content_marked_dsp({"body": "x"})
    assert check_dsp_message(room_dsp=True, content=marked) is None
    assert check_dsp_message(room_dsp=True, content={"body": "x"}) is None
    assert check_dsp_message(room_dsp=False, content={"body": "x"}) is None
    assert "ДСП content must stay in ДСП rooms" in (check_dsp_message(room_dsp=False, content=marked) or "")


def test_forwarded_from_is_parsed_strictly() -> None:
    assert forwarded_from({"body": "x"}) is None
    assert forwarded_from({"kz.qorgau.forwarded_from": {"room_id": "!r:s", "event_id": "$e"}}) == ("!r:s", "$e")
    with pytest.raises(Problem) as err:
        forwarded_from({"kz.qorgau.forwarded_from": "!r:s"})
    assert err.value.extra["errcode"] == "M_BAD_JSON"


def test_forwarding_dsp_content() -> None:
    assert check_dsp_forward(source_dsp=False, target_dsp=False, sender_agency="a1", member_agencies=["a2"]) is None
    assert check_dsp_forward(source_dsp=True, target_dsp=True, sender_agency="a1", member_agencies=["a1"]) is None
    assert "not marked ДСП" in (
        check_dsp_forward(source_dsp=True, target_dsp=False, sender_agency="a1", member_agencies=["a1"]) or ""
    )
    assert "outside your agency" in (
        check_dsp_forward(source_dsp=True, target_dsp=True, sender_agency="a1", member_agencies=["a1", "a2"]) or ""
    )


def test_only_a_security_officers_views_are_ledgered() -> None:
    assert dsp_view_is_ledgered(_actor(Role.SECURITY_OFFICER))
    assert not dsp_view_is_ledgered(_actor(Role.OFFICIAL))
    assert not dsp_view_is_ledgered(_actor(Role.AGENCY_ADMIN))
    assert not dsp_view_is_ledgered(None)


def test_who_may_export_dsp_content() -> None:
    assert may_export_dsp(_actor(Role.SECURITY_OFFICER))
    assert may_export_dsp(_actor(Role.AGENCY_ADMIN), "a1")
    assert not may_export_dsp(_actor(Role.AGENCY_ADMIN), "a2")
    assert not may_export_dsp(_actor(Role.OFFICIAL), "a1")
    assert not may_export_dsp(_actor(Role.SECURITY_OFFICER, agency=None))
    assert not may_export_dsp(_actor(Role.PLATFORM_ADMIN, agency=None))
    assert not may_export_dsp(None)
