"""hidden_ranges: which stream ranges of a room a user may not read, per the setting in force at each event."""

from __future__ import annotations

import pytest

from qorgau.kernel.errors import Problem
from qorgau.messenger.domain import check_history_visibility, hidden_ranges


def test_a_room_that_was_always_shared_hides_nothing() -> None:
    assert hidden_ranges([(5, "shared")], [(2, "join"), (9, "leave")]) == ()
    assert hidden_ranges([(5, "world_readable")], [(20, "invite"), (30, "join")]) == ()
    assert hidden_ranges([], [(20, "join")]) == ()


def test_joined_hides_everything_before_the_join_and_while_away() -> None:
    settings = [(5, "joined")]
    assert hidden_ranges(settings, [(20, "invite"), (30, "join")]) == ((5, 29),)
    assert hidden_ranges(settings, [(20, "join"), (30, "leave"), (40, "invite"), (50, "join")]) == ((5, 19), (30, 49))


def test_invited_shows_history_from_the_invitation() -> None:
    assert hidden_ranges([(5, "invited")], [(20, "invite"), (30, "join")]) == ((5, 19),)


def test_each_event_follows_the_setting_in_force_at_it() -> None:
    settings = [(5, "shared"), (10, "joined"), (40, "shared")]
    # Before 10: shared; 10..29: joined and not a member; from 30 on: joined as a member, then shared.
    assert hidden_ranges(settings, [(20, "invite"), (30, "join")]) == ((10, 29),)
    # A leave under a later shared setting hides nothing more.
    assert hidden_ranges(settings, [(30, "join"), (45, "leave")]) == ((10, 29),)
    # An unknown stored value reads as shared (the default).
    assert hidden_ranges([(5, "bogus")], [(30, "join")]) == ()


def test_a_leave_under_joined_hides_the_rest() -> None:
    assert hidden_ranges([(5, "joined")], [(20, "join"), (30, "leave")]) == ((5, 19), (30, None))


@pytest.mark.parametrize("value", ["everyone", "", None, 3, ["joined"]])
def test_only_the_four_values_are_valid(value: object) -> None:
    with pytest.raises(Problem) as raised:
        check_history_visibility({"history_visibility": value})
    assert raised.value.extra["errcode"] == "M_BAD_JSON"
    for good in ("world_readable", "shared", "invited", "joined"):
        check_history_visibility({"history_visibility": good})
