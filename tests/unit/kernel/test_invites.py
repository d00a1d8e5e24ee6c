"""Invitation links as a service: issue, re-issue, use once, expire; the token never stored or logged."""

from __future__ import annotations

import json
from typing import Any

import pytest
import sqlalchemy as sa

from qorgau.kernel.auth import invites
from qorgau.kernel.auth import services as auth
from qorgau.kernel.auth import tables as t
from qorgau.kernel.context import Ctx
from qorgau.kernel.errors import Problem
from qorgau.kernel.ledger.tables import ledger_entries
from qorgau.settings import SettingsError, load_settings


def admin_ctx(kernel: Any, demo: dict[str, Any], login: str = "aigerim.admin") -> Ctx:
    return Ctx(kernel, auth.do_sign_in(kernel, login, demo[login].password).actor)


def invite(kernel: Any, demo: dict[str, Any], username: str = "asel.new") -> invites.IssuedInvite:
    return invites.do_invite_user(
        admin_ctx(kernel, demo),
        kernel,
        username=username,
        role="official",
        display_name="Әсел Жаңа",
        agency="astana-digital",
    )


def ledger(kernel: Any) -> list[dict[str, Any]]:
    with kernel.db.read() as conn:
        return [json.loads(bytes(leaf)) for (leaf,) in conn.execute(sa.select(ledger_entries.c.leaf))]


def test_an_invited_official_sets_a_password_and_joins(kernel: Any, demo: dict[str, Any]) -> None:
    issued = invite(kernel, demo)
    assert len(issued.token) >= 43  # 32 random bytes
    assert invites.invite_statuses(kernel, [issued.user_id])[issued.user_id].state == invites.InviteState.PENDING
    opened = invites.open_invite(kernel, issued.token)
    assert opened.username == "asel.new" and opened.display_name == "Әсел Жаңа"
    signed = invites.do_accept_invite(kernel, issued.token, "a-long-new-password")
    assert signed.actor.username == "asel.new"
    assert auth.resolve_session(kernel, signed.session_token) is not None
    assert invites.invite_statuses(kernel, [issued.user_id])[issued.user_id].state == invites.InviteState.JOINED
    # The new password works for an ordinary sign-in too.
    assert auth.do_sign_in(kernel, "asel.new", "a-long-new-password").actor.user_id == issued.user_id


def test_the_token_is_stored_only_as_a_digest_and_never_in_the_ledger(kernel: Any, demo: dict[str, Any]) -> None:
    issued = invite(kernel, demo)
    invites.do_accept_invite(kernel, issued.token, "a-long-new-password")
    with kernel.db.read() as conn:
        stored = [tuple(r) for r in conn.execute(sa.select(t.account_invites)).all()]
    assert issued.token not in repr(stored)
    entries = ledger(kernel)
    actions = [e.get("action") for e in entries]
    assert "account.invite" in actions and "account.invite_used" in actions
    assert issued.token not in json.dumps(entries) and "asel.new" not in json.dumps(entries)


def test_a_link_works_once(kernel: Any, demo: dict[str, Any]) -> None:
    issued = invite(kernel, demo)
    invites.do_accept_invite(kernel, issued.token, "a-long-new-password")
    with pytest.raises(Problem) as used:
        invites.do_accept_invite(kernel, issued.token, "another-long-password")
    assert used.value.code == "auth.invite_used" and used.value.status == 410
    assert auth.do_sign_in(kernel, "asel.new", "a-long-new-password")


def test_reissuing_revokes_the_previous_link(kernel: Any, demo: dict[str, Any]) -> None:
    first = invite(kernel, demo)
    second = invites.do_issue_invite(admin_ctx(kernel, demo), kernel, first.user_id)
    with pytest.raises(Problem) as old:
        invites.open_invite(kernel, first.token)
    assert old.value.code == "auth.invite_revoked"
    assert invites.open_invite(kernel, second.token).user_id == first.user_id


def test_an_expired_link_is_refused(kernel: Any, demo: dict[str, Any]) -> None:
    issued = invite(kernel, demo)
    later = issued.expires_at + 1
    with pytest.raises(Problem) as expired:
        invites.open_invite(kernel, issued.token, now_ms=later)
    assert expired.value.code == "auth.invite_expired" and expired.value.status == 410
    states = invites.invite_statuses(kernel, [issued.user_id], now_ms=later)
    assert states[issued.user_id].state == invites.InviteState.EXPIRED


@pytest.mark.parametrize("token", ["", "short", "x" * 43, "ü" * 43, "a/b" * 20])
def test_unknown_or_malformed_tokens_are_unknown(kernel: Any, token: str) -> None:
    with pytest.raises(Problem) as unknown:
        invites.open_invite(kernel, token)
    assert unknown.value.code == "auth.invite_unknown" and unknown.value.status == 404


def test_weak_password_keeps_the_link_usable(kernel: Any, demo: dict[str, Any]) -> None:
    issued = invite(kernel, demo)
    with pytest.raises(Problem) as weak:
        invites.do_accept_invite(kernel, issued.token, "short")
    assert weak.value.code == "auth.weak_password"
    assert invites.open_invite(kernel, issued.token)


def test_joined_accounts_cannot_be_invited(kernel: Any, demo: dict[str, Any]) -> None:
    nurlan = next(u for u in auth.list_all_users(kernel) if u.username == "nurlan.official")
    assert nurlan.joined_at is not None  # created with a password: joined at creation
    with pytest.raises(Problem) as joined:
        invites.do_issue_invite(admin_ctx(kernel, demo), kernel, nurlan.id)
    assert joined.value.code == "auth.invite_joined"


def test_agency_admin_invites_only_officials_of_their_own_agency(kernel: Any, demo: dict[str, Any]) -> None:
    ctx = admin_ctx(kernel, demo)
    for role, agency in (("official", "almaty-akimat"), ("police_officer", "astana-digital")):
        with pytest.raises(Problem) as refused:
            invites.do_invite_user(ctx, kernel, username=f"x.{role}", role=role, agency=agency)
        assert refused.value.code == "auth.forbidden"
    other = invites.do_invite_user(None, kernel, username="almaty.new", role="official", agency="almaty-akimat")
    with pytest.raises(Problem) as foreign:
        invites.do_issue_invite(ctx, kernel, other.user_id)
    assert foreign.value.code == "auth.forbidden"
    with pytest.raises(Problem) as citizen:
        invites.do_invite_user(None, kernel, username="no.agency", role="guard")
    assert citizen.value.code == "auth.invite_role"


def test_withdrawn_link_leaves_the_account_not_invited(kernel: Any, demo: dict[str, Any]) -> None:
    issued = invite(kernel, demo)
    invites.do_withdraw_invite(admin_ctx(kernel, demo), issued.user_id)
    assert invites.invite_statuses(kernel, [issued.user_id])[issued.user_id].state == invites.InviteState.NONE
    with pytest.raises(Problem):
        invites.open_invite(kernel, issued.token)


def test_settings_validate_ttl_and_deadline() -> None:
    assert load_settings(env={}).invite_ttl_hours == 72
    assert load_settings(env={"QORGAU_MESSENGER_TRANSITION_DEADLINE": "2027-01-15"}).messenger_transition_deadline
    for env, name in (
        ({"QORGAU_INVITE_TTL_HOURS": "0"}, "QORGAU_INVITE_TTL_HOURS"),
        ({"QORGAU_INVITE_TTL_HOURS": "soon"}, "QORGAU_INVITE_TTL_HOURS"),
        ({"QORGAU_MESSENGER_TRANSITION_DEADLINE": "01.03.2027"}, "QORGAU_MESSENGER_TRANSITION_DEADLINE"),
        ({"QORGAU_MESSENGER_TRANSITION_DEADLINE": "2027-02-30"}, "QORGAU_MESSENGER_TRANSITION_DEADLINE"),
    ):
        with pytest.raises(SettingsError, match=name):
            load_settings(env=env)
