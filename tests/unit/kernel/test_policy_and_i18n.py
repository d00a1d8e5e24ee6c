"""The policy fails closed; language negotiation; throttle back-off."""

from __future__ import annotations

from qorgau.kernel import i18n
from qorgau.kernel.auth.policy import can
from qorgau.kernel.auth.roles import Actor, Role
from qorgau.kernel.auth.throttle import ClientThrottle, lockout_seconds


def actor(role: Role, agency: str | None = "a1", scopes: frozenset[str] = frozenset(), via: str = "session") -> Actor:
    return Actor("u1", "user", role, "User", agency, via=via, scopes=scopes)


def test_unknown_action_is_denied_to_everyone() -> None:
    assert not can(actor(Role.PLATFORM_ADMIN), "nothing.registered")
    assert not can(None, "nothing.registered")


def test_agency_admin_creates_only_officials_of_own_agency() -> None:
    admin = actor(Role.AGENCY_ADMIN, "a1")
    assert can(admin, "users.create", {"role": Role.OFFICIAL, "agency_id": "a1"})
    assert not can(admin, "users.create", {"role": Role.OFFICIAL, "agency_id": "a2"})
    assert not can(admin, "users.create", {"role": Role.PLATFORM_ADMIN, "agency_id": "a1"})


def test_token_scopes_limit_actions() -> None:
    scoped = actor(Role.PLATFORM_ADMIN, scopes=frozenset({"users"}), via="token")
    assert can(scoped, "users.list")
    assert not can(scoped, "events.read")


def test_accept_language_negotiation() -> None:
    assert i18n.negotiate("ru-RU,ru;q=0.9,en;q=0.8", "kk") == "ru"
    assert i18n.negotiate("de-DE, en;q=0.5", "kk") == "en"
    assert i18n.negotiate("fr", "kk") == "kk"
    assert i18n.negotiate("en;q=0, ru;q=0.1", "kk") == "ru"
    assert i18n.negotiate(None, "ru") == "ru"


def test_client_throttle_backs_off_exponentially() -> None:
    throttle = ClientThrottle(max_failures=3, base_seconds=10, max_seconds=100)
    for _ in range(2):
        throttle.failure("k", now=0)
    assert throttle.retry_after("k", now=0) == 0
    throttle.failure("k", now=0)
    assert throttle.retry_after("k", now=0) == 10
    throttle.failure("k", now=0)
    assert throttle.retry_after("k", now=0) == 20
    assert lockout_seconds(10, 10, 100) == 100
    throttle.success("k")
    assert throttle.retry_after("k", now=0) == 0
