"""The onboarding dashboard service: who has joined, who is missing, last activity, flags, CSV."""

from __future__ import annotations

import csv
import io
from datetime import date, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from qorgau.kernel import i18n
from qorgau.kernel.auth import invites
from qorgau.kernel.auth import services as auth
from qorgau.kernel.context import Ctx
from qorgau.kernel.db import utc_now_ms
from qorgau.kernel.errors import Problem
from qorgau.messenger import tables as mt
from qorgau.messenger.services import onboarding
from qorgau.messenger.services.onboarding import Flag, Status


def ctx_of(kernel: Any, demo: dict[str, Any], login: str) -> Ctx:
    return Ctx(kernel, auth.do_sign_in(kernel, login, demo[login].password).actor, lang="en")


def test_agency_admin_sees_a_mix_with_the_missing_first(kernel: Any, demo: dict[str, Any]) -> None:
    data = onboarding.onboarding(ctx_of(kernel, demo, "aigerim.admin"))
    names = [o.username for o in data.officials]
    # Demo agency: admin, official and security officer joined; Timur invited (link open), Zhanar's expired.
    assert set(names) == {
        "aigerim.admin",
        "nurlan.official",
        "erlan.security",
        "timur.seitkali",
        "zhanar.abdrakhmanova",
    }
    assert names[:2] == ["zhanar.abdrakhmanova", "timur.seitkali"]
    assert [o.status for o in data.officials[:2]] == [Status.EXPIRED, Status.PENDING]
    s = data.summary
    assert (s.total, s.joined, s.pending, s.expired, s.not_invited) == (5, 3, 1, 1, 0)
    assert s.missing == 2 and s.percent == 60
    assert all(o.agency_id == data.agency_id for o in data.officials)


def test_status_filter_and_missing_officials(kernel: Any, demo: dict[str, Any]) -> None:
    ctx = ctx_of(kernel, demo, "aigerim.admin")
    joined = onboarding.onboarding(ctx, status="joined").officials
    assert {o.status for o in joined} == {Status.JOINED}
    missing = onboarding.missing_officials(ctx)
    by_name = {o.username: o.user_id for o in onboarding.onboarding(ctx).officials}
    assert set(missing) == {by_name["timur.seitkali"], by_name["zhanar.abdrakhmanova"]}
    with pytest.raises(Problem) as bad:
        onboarding.onboarding(ctx, status="everybody")
    assert bad.value.field == "status"


def test_flags_follow_the_deadline(kernel: Any, demo: dict[str, Any]) -> None:
    ctx = ctx_of(kernel, demo, "aigerim.admin")
    deadline = onboarding.transition_deadline(kernel)
    far = onboarding.onboarding(ctx, today=deadline - timedelta(days=60))
    near = onboarding.onboarding(ctx, today=deadline - timedelta(days=3))
    passed = onboarding.onboarding(ctx, today=deadline + timedelta(days=1))
    assert {o.flag for o in far.officials} == {None}
    assert {o.flag for o in near.officials if o.missing} == {Flag.NEAR}
    assert {o.flag for o in passed.officials if o.missing} == {Flag.OVERDUE}
    assert {o.flag for o in passed.officials if not o.missing} == {None}
    assert passed.summary.days_left == -1 and near.summary.days_left == 3


def test_last_active_is_the_latest_of_web_and_matrix_activity(kernel: Any, demo: dict[str, Any]) -> None:
    ctx = ctx_of(kernel, demo, "aigerim.admin")
    nurlan = next(u for u in auth.list_all_users(kernel) if u.username == "nurlan.official")
    before = {o.username: o for o in onboarding.onboarding(ctx).officials}
    assert before["nurlan.official"].last_active_at is None
    seen = utc_now_ms() + 60_000
    kernel.db.run(
        lambda tx: tx.execute(
            mt.devices.insert().values(
                id="d" * 32,
                account_id=nurlan.id,
                user_id="@nurlan.official:qorgau.example.kz",
                device_id="PHONE",
                token_hash="0" * 64,
                created_at=seen - 1000,
                last_seen_at=seen,
            )
        )
    )
    after = {o.username: o for o in onboarding.onboarding(ctx).officials}
    assert after["nurlan.official"].last_active_at == seen
    # The admin signed in a moment ago: their session counts.
    assert after["aigerim.admin"].last_active_at is not None


def test_a_used_invitation_turns_into_joined(kernel: Any, demo: dict[str, Any]) -> None:
    ctx = ctx_of(kernel, demo, "aigerim.admin")
    timur = next(o for o in onboarding.onboarding(ctx).officials if o.username == "timur.seitkali")
    issued = invites.do_issue_invite(ctx, kernel, timur.user_id)
    invites.do_accept_invite(kernel, issued.token, "timur-long-password")
    row = next(o for o in onboarding.onboarding(ctx).officials if o.username == "timur.seitkali")
    assert row.status == Status.JOINED and row.joined_at is not None and row.last_active_at is not None


def test_scope_agency_admin_own_agency_platform_admin_any(kernel: Any, demo: dict[str, Any]) -> None:
    aigerim = ctx_of(kernel, demo, "aigerim.admin")
    almaty = auth.get_agency(kernel, "almaty-akimat")
    assert almaty is not None
    with pytest.raises(Problem) as foreign:
        onboarding.onboarding(aigerim, agency_id=almaty.id)
    assert foreign.value.code == "auth.forbidden"
    admin = ctx_of(kernel, demo, "admin")
    everyone = onboarding.onboarding(admin)
    assert everyone.agency_id is None and {o.agency_id for o in everyone.officials} >= {almaty.id}
    only = onboarding.onboarding(admin, agency_id=almaty.id)
    assert {o.username for o in only.officials} == {"dana.official"}
    for login in ("nurlan.official", "serik.police", "850808301077"):
        with pytest.raises(Problem):
            onboarding.onboarding(ctx_of(kernel, demo, login))


def test_disabled_accounts_are_not_counted(kernel: Any, demo: dict[str, Any]) -> None:
    from qorgau.kernel.auth import tables as t

    ctx = ctx_of(kernel, demo, "aigerim.admin")
    kernel.db.run(
        lambda tx: tx.execute(
            t.users.update().where(t.users.c.username == "zhanar.abdrakhmanova").values(disabled=True)
        )
    )
    assert "zhanar.abdrakhmanova" not in {o.username for o in onboarding.onboarding(ctx).officials}


def test_csv_has_a_bom_the_same_columns_and_no_formulas(kernel: Any, demo: dict[str, Any]) -> None:
    ctx = ctx_of(kernel, demo, "aigerim.admin")
    from qorgau.kernel.auth import tables as t

    kernel.db.run(
        lambda tx: tx.execute(
            t.users.update().where(t.users.c.username == "timur.seitkali").values(display_name="=HYPERLINK(1)")
        )
    )
    data = onboarding.onboarding(ctx, today=date(2027, 2, 20))
    body = onboarding.to_csv(data, lang="ru", agency_names={data.agency_id: "Управление"})
    assert body.startswith("\ufeff".encode())
    rows = list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))
    assert rows[0] == [i18n.gettext("ru", c) for c in onboarding.CSV_COLUMNS]
    assert len(rows) == 1 + len(data.officials) and all(len(r) == len(onboarding.CSV_COLUMNS) for r in rows)
    timur = next(r for r in rows if r[1] == "timur.seitkali")
    assert timur[0] == "'=HYPERLINK(1)"
    assert timur[4] == i18n.gettext("ru", "Invited, link pending")
    assert timur[-1] == i18n.gettext("ru", "Not joined — deadline near")
    assert not any("850808301077" in cell for r in rows for cell in r)
    assert body.count(b"\r\n") == len(rows)


def test_the_dashboard_reads_in_a_few_queries_whatever_the_size(kernel: Any, demo: dict[str, Any]) -> None:
    ctx = ctx_of(kernel, demo, "admin")
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_rest: Any) -> None:
        statements.append(statement)

    sa.event.listen(kernel.db.engine, "before_cursor_execute", count)
    try:
        onboarding.onboarding(ctx)
    finally:
        sa.event.remove(kernel.db.engine, "before_cursor_execute", count)
    assert len([s for s in statements if s.lstrip().upper().startswith("SELECT")]) <= 5
