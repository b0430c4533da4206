"""Member management for staff: GET /api/users/, GET and PATCH /api/users/{id}/."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import func, select, text

from library_service.models import User
from tests.factories import waiting_for_locks

USERS = "/api/users/"
ME = "/api/users/me/"


def member_url(user_id: int) -> str:
    return f"/api/users/{user_id}/"


async def reload(db, user_id: int) -> User:
    async with db.sessionmaker() as session:
        user = await session.get(User, user_id)
        assert user is not None
        return user


async def active_staff(db) -> int:
    async with db.sessionmaker() as session:
        statement = select(func.count()).where(User.is_staff, User.is_active)
        return int(await session.scalar(statement) or 0)


@pytest.fixture
async def staff(factory):
    return await factory.user(is_staff=True, email="desk@library.test")


# --- who may -------------------------------------------------------------------------------


async def test_members_cannot_list_read_or_change_users(client, factory, db):
    member = await factory.user()
    other = await factory.user()
    headers = factory.auth(member)
    for response in (
        await client.get(USERS, headers=headers),
        await client.get(member_url(other.id), headers=headers),
        await client.patch(member_url(other.id), json={"is_active": False}, headers=headers),
        await client.patch(member_url(member.id), json={"is_staff": True}, headers=headers),
    ):
        assert response.status_code == 403, response.text
        assert response.json()["code"] == "permission_denied"
    assert (await reload(db, other.id)).is_active is True
    assert (await reload(db, member.id)).is_staff is False


async def test_anonymous_callers_are_asked_to_authenticate(client, factory):
    user = await factory.user()
    for response in (
        await client.get(USERS),
        await client.get(member_url(user.id)),
        await client.patch(member_url(user.id), json={"first_name": "X"}),
    ):
        assert response.status_code == 401, response.text


async def test_unknown_user_is_404(client, factory, staff):
    headers = factory.auth(staff)
    read = await client.get(member_url(999_999), headers=headers)
    change = await client.patch(member_url(999_999), json={"is_active": False}, headers=headers)
    for response in (read, change):
        assert response.status_code == 404, response.text
        assert response.json()["code"] == "user_not_found"


# --- listing -------------------------------------------------------------------------------


async def test_list_pages_and_filters_users(client, factory, staff):
    ada = await factory.user(email="ada@example.com", first_name="Ada", last_name="Lovelace")
    await factory.user(email="grace@example.com", first_name="Grace", last_name="Hopper")
    gone = await factory.user(email="gone@example.com", is_active=False)
    headers = factory.auth(staff)

    everyone = (await client.get(USERS, headers=headers)).json()
    assert everyone["count"] == 4
    assert [u["email"] for u in everyone["results"]] == [
        "desk@library.test",
        "ada@example.com",
        "grace@example.com",
        "gone@example.com",
    ]
    assert set(everyone["results"][0]) == {
        "id",
        "email",
        "first_name",
        "last_name",
        "is_staff",
        "is_active",
        "email_reminders",
        "date_joined",
    }

    by_name = (await client.get(USERS, params={"search": "LOVE"}, headers=headers)).json()
    assert [u["id"] for u in by_name["results"]] == [ada.id]
    by_email = (await client.get(USERS, params={"search": "grace@"}, headers=headers)).json()
    assert [u["email"] for u in by_email["results"]] == ["grace@example.com"]
    wildcard = (await client.get(USERS, params={"search": "%"}, headers=headers)).json()
    assert wildcard["count"] == 0

    inactive = (await client.get(USERS, params={"is_active": "false"}, headers=headers)).json()
    assert [u["id"] for u in inactive["results"]] == [gone.id]
    assert inactive["results"][0]["is_active"] is False
    staff_only = (await client.get(USERS, params={"is_staff": "true"}, headers=headers)).json()
    assert [u["id"] for u in staff_only["results"]] == [staff.id]

    first = (await client.get(USERS, params={"limit": 3}, headers=headers)).json()
    assert first["count"] == 4
    assert len(first["results"]) == 3
    assert first["previous"] is None
    second = (await client.get(first["next"], headers=headers)).json()
    assert [u["email"] for u in second["results"]] == ["gone@example.com"]
    assert second["next"] is None
    past_the_end = await client.get(USERS, params={"offset": 10}, headers=headers)
    assert past_the_end.json() == {
        "count": 4,
        "next": None,
        "previous": past_the_end.json()["previous"],
        "results": [],
    }


async def test_read_one_user(client, factory, staff):
    member = await factory.user(first_name="Ada")
    response = await client.get(member_url(member.id), headers=factory.auth(staff))
    assert response.status_code == 200, response.text
    assert response.json()["first_name"] == "Ada"
    assert response.json()["is_active"] is True
    assert "password" not in response.text


# --- changing ------------------------------------------------------------------------------


async def test_deactivating_a_member_ends_their_tokens_even_after_reactivation(
    client, factory, staff, db
):
    member = await factory.user()
    member_headers = factory.auth(member)
    assert (await client.get(ME, headers=member_headers)).status_code == 200
    headers = factory.auth(staff)

    response = await client.patch(member_url(member.id), json={"is_active": False}, headers=headers)
    assert response.status_code == 200, response.text
    assert response.json()["is_active"] is False
    refused = await client.get(ME, headers=member_headers)
    assert refused.status_code == 401
    assert refused.json()["code"] == "token_not_valid"

    back = await client.patch(member_url(member.id), json={"is_active": True}, headers=headers)
    assert back.json()["is_active"] is True
    assert (await client.get(ME, headers=member_headers)).status_code == 401
    login = await client.post(
        "/api/users/token/", json={"email": member.email, "password": "password123"}
    )
    assert login.status_code == 200, login.text
    fresh = {"Authorization": f"Bearer {login.json()['access']}"}
    assert (await client.get(ME, headers=fresh)).status_code == 200


async def test_granting_and_revoking_staff(client, factory, staff, db):
    member = await factory.user()
    member_headers = factory.auth(member)
    headers = factory.auth(staff)
    assert (await client.get(USERS, headers=member_headers)).status_code == 403

    granted = await client.patch(member_url(member.id), json={"is_staff": True}, headers=headers)
    assert granted.status_code == 200, granted.text
    assert granted.json()["is_staff"] is True
    assert (await client.get(USERS, headers=member_headers)).status_code == 200

    revoked = await client.patch(member_url(member.id), json={"is_staff": False}, headers=headers)
    assert revoked.json()["is_staff"] is False
    assert (await client.get(USERS, headers=member_headers)).status_code == 403


async def test_names_change_and_only_the_fields_sent(client, factory, staff, db):
    member = await factory.user(first_name="Ada", last_name="Byron")
    response = await client.patch(
        member_url(member.id), json={"last_name": "Lovelace"}, headers=factory.auth(staff)
    )
    assert response.status_code == 200, response.text
    fresh = await reload(db, member.id)
    assert (fresh.first_name, fresh.last_name, fresh.is_active) == ("Ada", "Lovelace", True)


@pytest.mark.parametrize(
    "payload",
    [
        {"is_active": None},
        {"is_staff": "maybe"},
        {"first_name": "x" * 151},
        {"first_name": "A\x00da"},
        {"email": "other@example.com"},
        {"password": "new-password-1"},
    ],
)
async def test_invalid_or_unknown_fields_are_refused(client, factory, staff, db, payload):
    member = await factory.user(first_name="Ada")
    response = await client.patch(member_url(member.id), json=payload, headers=factory.auth(staff))
    assert response.status_code == 422, response.text
    fresh = await reload(db, member.id)
    assert (fresh.first_name, fresh.email, fresh.is_active) == ("Ada", member.email, True)


@pytest.mark.parametrize("payload", [{"is_active": False}, {"is_staff": False}])
async def test_staff_cannot_deactivate_or_demote_themselves(client, factory, staff, db, payload):
    await factory.user(is_staff=True)  # not the last staff account: the refusal is about self
    response = await client.patch(member_url(staff.id), json=payload, headers=factory.auth(staff))
    assert response.status_code == 400, response.text
    assert response.json()["code"] == "cannot_change_own_access"
    fresh = await reload(db, staff.id)
    assert (fresh.is_active, fresh.is_staff) == (True, True)


async def test_staff_may_correct_their_own_name(client, factory, staff, db):
    response = await client.patch(
        member_url(staff.id),
        json={"first_name": "Desk", "is_active": True, "is_staff": True},
        headers=factory.auth(staff),
    )
    assert response.status_code == 200, response.text
    assert (await reload(db, staff.id)).first_name == "Desk"


@pytest.mark.slow
@pytest.mark.parametrize("change", [{"is_staff": False}, {"is_active": False}])
async def test_two_staff_removing_each_other_at_once_leave_one(client, factory, db, change):
    first = await factory.user(is_staff=True)
    second = await factory.user(is_staff=True)
    # Hold the staff rows, so both requests are waiting for them before either proceeds.
    async with db.engine.connect() as holder:
        transaction = await holder.begin()
        await holder.execute(text("SELECT id FROM users WHERE is_staff FOR UPDATE"))
        requests = asyncio.gather(
            client.patch(member_url(second.id), json=change, headers=factory.auth(first)),
            client.patch(member_url(first.id), json=change, headers=factory.auth(second)),
        )
        task = asyncio.ensure_future(requests)
        await waiting_for_locks(db, 2)  # both requests wait for the staff rows
        await transaction.commit()
        responses = await task

    outcomes = sorted(
        (r.status_code, r.json().get("code") if r.status_code >= 400 else None) for r in responses
    )
    assert outcomes == [(200, None), (400, "last_staff_account")]
    assert await active_staff(db) == 1
