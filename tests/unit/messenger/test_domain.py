"""The messenger's pure rules: identifiers, tokens, power levels, membership, redaction, filters."""

from __future__ import annotations

import pytest

from qorgau.kernel.errors import Problem
from qorgau.messenger.domain import (
    EventFilter,
    PowerLevels,
    SyncFilter,
    alias_for,
    check_membership_change,
    check_power_levels_change,
    default_power_levels,
    localpart,
    new_room_id,
    parse_stream_token,
    preset_state,
    redact_content,
    stream_token,
    user_id,
)

S = "qorgau.example.kz"
ADMIN, MEMBER, OTHER = f"@admin:{S}", f"@member:{S}", f"@other:{S}"


def test_user_ids_round_trip_for_this_server_only() -> None:
    assert user_id("nurlan.official", S) == f"@nurlan.official:{S}"
    assert localpart(f"@nurlan.official:{S}", S) == "nurlan.official"
    assert localpart("@nurlan.official:evil.example", S) is None
    assert localpart("nurlan.official", S) is None
    assert localpart(f"@Nurlan:{S}", S) is None  # local parts are lower case
    assert localpart(f"@:{S}", S) is None


def test_room_ids_never_contain_digits() -> None:
    # A run of digits could look like an IIN to the ledger's personal-data guard.
    for _ in range(200):
        room_id = new_room_id(S)
        local = room_id[1:].split(":")[0]
        assert room_id.startswith("!") and local.isalpha() and len(local) == 18


def test_stream_tokens() -> None:
    assert stream_token(42) == "s42"
    assert parse_stream_token("s42") == 42
    for bad in ("42", "s", "s-1", "sx", "t42", "s" + "9" * 30):
        with pytest.raises(Problem) as caught:
            parse_stream_token(bad)
        assert caught.value.extra["errcode"] == "M_INVALID_PARAM"


def test_aliases_reject_separators() -> None:
    assert alias_for("news", S) == f"#news:{S}"
    for bad in ("", "a:b", "#x", "with space", "x" * 101):
        with pytest.raises(Problem):
            alias_for(bad, S)


def test_power_levels_defaults() -> None:
    levels = PowerLevels(default_power_levels(ADMIN))
    assert levels.user_level(ADMIN) == 100 and levels.user_level(MEMBER) == 0
    assert levels.may_send(MEMBER, "m.room.message", is_state=False)
    assert not levels.may_send(MEMBER, "m.room.name", is_state=True)
    assert not levels.may_send(MEMBER, "kz.custom.state", is_state=True)  # state_default 50
    assert levels.may(MEMBER, "invite") and not levels.may(MEMBER, "kick")
    assert PowerLevels({}).user_level(MEMBER) == 0
    assert PowerLevels({"users": {MEMBER: "75"}}).user_level(MEMBER) == 75


def test_power_level_changes_stay_within_ones_own_level() -> None:
    levels = default_power_levels(ADMIN)
    levels["users"][MEMBER] = 50
    old = PowerLevels(levels)
    raise_self = {**levels, "users": {**levels["users"], MEMBER: 100}}
    assert check_power_levels_change(old, raise_self, MEMBER) is not None
    demote_admin = {**levels, "users": {ADMIN: 0, MEMBER: 50}}
    assert check_power_levels_change(old, demote_admin, MEMBER) is not None
    promote_other = {**levels, "users": {**levels["users"], OTHER: 50}}
    assert check_power_levels_change(old, promote_other, MEMBER) is None
    assert check_power_levels_change(old, promote_other, ADMIN) is None
    assert check_power_levels_change(old, {**levels, "ban": True}, ADMIN) == "'ban' must be an integer"
    assert check_power_levels_change(old, {**levels, "events": {"m.room.name": 100}}, MEMBER) is not None


@pytest.mark.parametrize(
    ("action", "sender", "target", "sender_m", "target_m", "rule", "allowed"),
    [
        ("join", MEMBER, MEMBER, None, "invite", "invite", True),
        ("join", MEMBER, MEMBER, None, None, "invite", False),
        ("join", MEMBER, MEMBER, None, None, "public", True),
        ("join", MEMBER, MEMBER, None, "ban", "public", False),
        ("join", MEMBER, OTHER, None, "invite", "public", False),
        ("leave", MEMBER, MEMBER, "join", "join", "invite", True),
        ("leave", MEMBER, MEMBER, "invite", "invite", "invite", True),
        ("leave", MEMBER, MEMBER, None, None, "invite", False),
        ("invite", MEMBER, OTHER, "join", None, "invite", True),
        ("invite", MEMBER, OTHER, None, None, "invite", False),
        ("invite", MEMBER, OTHER, "join", "ban", "invite", False),
        ("invite", MEMBER, OTHER, "join", "join", "invite", False),
        ("kick", ADMIN, MEMBER, "join", "join", "invite", True),
        ("kick", MEMBER, OTHER, "join", "join", "invite", False),
        ("kick", ADMIN, MEMBER, "join", "leave", "invite", False),
        ("ban", ADMIN, MEMBER, "join", None, "invite", True),
        ("ban", MEMBER, ADMIN, "join", "join", "invite", False),
        ("unban", ADMIN, MEMBER, "join", "ban", "invite", True),
        ("unban", ADMIN, MEMBER, "join", "leave", "invite", False),
    ],
)
def test_membership_rules(
    action: str, sender: str, target: str, sender_m: str | None, target_m: str | None, rule: str, allowed: bool
) -> None:
    refusal = check_membership_change(
        action=action,
        sender=sender,
        target=target,
        sender_membership=sender_m,
        target_membership=target_m,
        join_rule=rule,
        power=PowerLevels(default_power_levels(ADMIN)),
    )
    assert (refusal is None) is allowed, refusal


def test_presets() -> None:
    assert dict(preset_state("public_chat"))["m.room.join_rules"] == {"join_rule": "public"}
    assert dict(preset_state("private_chat"))["m.room.join_rules"] == {"join_rule": "invite"}


def test_redaction_keeps_only_what_the_room_version_keeps() -> None:
    assert redact_content("m.room.message", {"body": "secret", "msgtype": "m.text"}) == {}
    assert redact_content("m.room.member", {"membership": "join", "displayname": "Дана"}) == {"membership": "join"}
    levels = default_power_levels(ADMIN)
    kept = redact_content("m.room.power_levels", levels)
    assert kept["users"] == {ADMIN: 100} and "notifications" not in kept
    assert redact_content("m.room.join_rules", {"join_rule": "invite", "x": 1}) == {"join_rule": "invite"}


def test_event_filters() -> None:
    f = EventFilter.parse({"types": ["m.room.*"], "not_types": ["m.room.member"], "not_senders": [OTHER]})
    assert f.allows("m.room.message", MEMBER)
    assert not f.allows("m.room.member", MEMBER)
    assert not f.allows("m.room.message", OTHER)
    assert not f.allows("kz.custom", MEMBER)
    literal = EventFilter.parse({"types": ["m.room.message"]})
    assert not literal.allows("m.room.messageX")
    assert not EventFilter.parse({"types": ["a.b"]}).allows("aXb")  # '.' is not a wildcard
    urls = EventFilter.parse({"contains_url": True})
    assert urls.allows("m.room.message", content={"url": "mxc://x/y"})
    assert not urls.allows("m.room.message", content={"body": "x"})
    assert EventFilter().passes_everything
    for bad in ({"limit": -1}, {"limit": "5"}, {"types": "m.room.message"}, {"contains_url": "yes"}, []):
        with pytest.raises(Problem):
            EventFilter.parse(bad)


def test_sync_filters() -> None:
    f = SyncFilter.parse({"room": {"timeline": {"limit": 5}, "rooms": ["!a:x"], "include_leave": True}})
    assert f.timeline_limit == 5 and f.room.include_leave
    assert f.room.allows_room("!a:x") and not f.room.allows_room("!b:x")
    assert SyncFilter().timeline_limit == 50
    assert SyncFilter.parse({"room": {"timeline": {"limit": 10**9}}}).timeline_limit == 1000
    with pytest.raises(Problem):
        SyncFilter.parse({"room": {"include_leave": "yes"}})
