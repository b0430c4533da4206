"""A member's own profile: reading and changing it (PUT replaces, PATCH changes)."""

from __future__ import annotations

import pytest

from library_service.models import User
from tests.factories import PASSWORD, assert_can_login, assert_cannot_login, assert_error, fetch

ME = "/api/users/me/"
USER_FIELDS = {
    "id",
    "email",
    "first_name",
    "last_name",
    "is_staff",
    "email_reminders",
    "date_joined",
}


async def test_get_profile(client, factory):
    user = await factory.user(email="me@example.com", first_name="Jane", last_name="Doe")
    await factory.user(email="other@example.com")
    response = await client.get(ME, headers=factory.auth(user))
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == USER_FIELDS
    assert body["id"] == user.id
    assert body["email"] == "me@example.com"
    assert body["first_name"] == "Jane"
    assert body["last_name"] == "Doe"
    assert body["is_staff"] is False


async def test_get_profile_shows_staff_flag(client, factory):
    staff = await factory.user(is_staff=True)
    response = await client.get(ME, headers=factory.auth(staff))
    assert response.json()["is_staff"] is True


async def test_put_profile_changes_email_and_names(client, factory, db):
    user = await factory.user(email="old@example.com", first_name="Old", last_name="Name")
    response = await client.put(
        ME,
        json={"email": "New@Example.com", "first_name": "New", "last_name": "Person"},
        headers=factory.auth(user),
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["email"] == "new@example.com"
    assert body["first_name"] == "New"
    assert body["last_name"] == "Person"
    stored = await fetch(db, User, user.id)
    assert (stored.email, stored.first_name, stored.last_name) == (
        "new@example.com",
        "New",
        "Person",
    )
    assert stored.hashed_password == user.hashed_password  # password not given: unchanged
    await assert_can_login(client, "new@example.com", PASSWORD)
    await assert_cannot_login(client, "old@example.com", PASSWORD)


async def test_put_profile_resets_omitted_names(client, factory, db):
    user = await factory.user(first_name="Jane", last_name="Doe")
    response = await client.put(ME, json={"email": user.email}, headers=factory.auth(user))
    assert response.status_code == 200, response.text
    stored = await fetch(db, User, user.id)
    assert (stored.first_name, stored.last_name) == ("", "")


async def test_put_profile_requires_email(client, factory, db):
    user = await factory.user(first_name="Jane")
    response = await client.put(ME, json={"first_name": "X"}, headers=factory.auth(user))
    assert response.status_code == 422, response.text
    assert (await fetch(db, User, user.id)).first_name == "Jane"


async def test_put_profile_changes_password(client, factory, db):
    user = await factory.user(email="me@example.com")
    response = await client.put(
        ME,
        json={"email": "me@example.com", "password": "brand-new-pass"},
        headers=factory.auth(user),
    )
    assert response.status_code == 200, response.text
    assert "brand-new-pass" not in response.text
    assert "password" not in response.json()
    await assert_cannot_login(client, "me@example.com", PASSWORD)
    await assert_can_login(client, "me@example.com", "brand-new-pass")


@pytest.mark.parametrize("method", ["put", "patch"])
async def test_change_email_to_taken_email_is_refused(client, factory, db, method):
    await factory.user(email="taken@example.com")
    user = await factory.user(email="me@example.com", first_name="Me")
    response = await client.request(
        method.upper(),
        ME,
        json={"email": "TAKEN@example.com", "first_name": "Changed"},
        headers=factory.auth(user),
    )
    assert_error(response, 400, "email_taken")
    stored = await fetch(db, User, user.id)
    assert stored.email == "me@example.com"
    assert stored.first_name == "Me"


async def test_patch_own_email_in_other_case_is_not_taken(client, factory, db):
    user = await factory.user(email="me@example.com")
    response = await client.patch(ME, json={"email": "ME@Example.com"}, headers=factory.auth(user))
    assert response.status_code == 200, response.text
    assert response.json()["email"] == "me@example.com"


async def test_patch_changes_only_sent_fields(client, factory, db):
    user = await factory.user(email="me@example.com", first_name="Jane", last_name="Doe")
    response = await client.patch(ME, json={"last_name": "Smith"}, headers=factory.auth(user))
    assert response.status_code == 200, response.text
    assert response.json()["first_name"] == "Jane"
    assert response.json()["last_name"] == "Smith"
    stored = await fetch(db, User, user.id)
    assert (stored.email, stored.first_name, stored.last_name) == (
        "me@example.com",
        "Jane",
        "Smith",
    )
    assert stored.hashed_password == user.hashed_password


async def test_patch_email_is_lower_cased_and_used_for_login(client, factory, db):
    user = await factory.user(email="me@example.com")
    response = await client.patch(
        ME, json={"email": "Renamed@Example.COM"}, headers=factory.auth(user)
    )
    assert response.status_code == 200, response.text
    assert response.json()["email"] == "renamed@example.com"
    assert (await fetch(db, User, user.id)).email == "renamed@example.com"
    await assert_can_login(client, "renamed@example.com", PASSWORD)
    await assert_cannot_login(client, "me@example.com", PASSWORD)


async def test_patch_password(client, factory):
    user = await factory.user(email="me@example.com")
    response = await client.patch(ME, json={"password": "n3w-password"}, headers=factory.auth(user))
    assert response.status_code == 200, response.text
    await assert_cannot_login(client, "me@example.com", PASSWORD)
    await assert_can_login(client, "me@example.com", "n3w-password")


@pytest.mark.parametrize("password", ["short", "é€" * 25, "a" * 73])
async def test_patch_invalid_password_is_refused(client, factory, db, password):
    user = await factory.user(email="me@example.com")
    response = await client.patch(ME, json={"password": password}, headers=factory.auth(user))
    assert response.status_code == 422, response.text
    assert (await fetch(db, User, user.id)).hashed_password == user.hashed_password
    await assert_can_login(client, "me@example.com", PASSWORD)


@pytest.mark.parametrize(
    "payload",
    [
        {"email": None},
        {"first_name": None},
        {"last_name": None},
        {"password": None},
        {"email": "not-an-email"},
        {"first_name": "x" * 151},
    ],
)
async def test_patch_invalid_values_are_422(client, factory, db, payload):
    user = await factory.user(email="me@example.com", first_name="Jane", last_name="Doe")
    response = await client.patch(ME, json=payload, headers=factory.auth(user))
    assert response.status_code == 422, response.text
    stored = await fetch(db, User, user.id)
    assert (stored.email, stored.first_name, stored.last_name) == ("me@example.com", "Jane", "Doe")


@pytest.mark.parametrize("method", ["put", "patch"])
async def test_profile_update_cannot_make_staff(client, factory, db, method):
    user = await factory.user(email="me@example.com")
    response = await client.request(
        method.upper(),
        ME,
        json={"email": "me@example.com", "is_staff": True, "is_active": False},
        headers=factory.auth(user),
    )
    assert response.status_code == 200, response.text
    assert response.json()["is_staff"] is False
    stored = await fetch(db, User, user.id)
    assert stored.is_staff is False
    assert stored.is_active is True


async def test_profile_update_keeps_staff_flag(client, factory, db):
    staff = await factory.user(is_staff=True)
    response = await client.patch(
        ME, json={"first_name": "Boss", "is_staff": False}, headers=factory.auth(staff)
    )
    assert response.status_code == 200, response.text
    assert (await fetch(db, User, staff.id)).is_staff is True


@pytest.mark.parametrize("method", ["get", "put", "patch"])
async def test_profile_requires_authentication(client, method):
    response = await client.request(method.upper(), ME, json={"email": "a@example.com"})
    assert_error(response, 401, "not_authenticated")
