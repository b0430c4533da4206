"""Registration: who may sign up, with what email and password, and what is stored."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from library_service.models import User
from tests.factories import PASSWORD, assert_can_login, assert_cannot_login, assert_error, count

REGISTER = "/api/users/"
USER_FIELDS = {
    "id",
    "email",
    "first_name",
    "last_name",
    "is_staff",
    "email_reminders",
    "date_joined",
}


async def users_in_db(db) -> list[User]:
    async with db.sessionmaker() as session:
        return list((await session.execute(select(User).order_by(User.id))).scalars())


async def user_by_email(db, email: str) -> User | None:
    async with db.sessionmaker() as session:
        statement = select(User).where(func.lower(User.email) == email.lower())
        return (await session.execute(statement)).scalar_one_or_none()


async def test_register_creates_member_without_exposing_password(client, db):
    response = await client.post(
        REGISTER,
        json={
            "email": "New.Reader@Example.COM",
            "password": "s3cret-pass",
            "first_name": "Ada",
            "last_name": "Lovelace",
        },
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert set(body) == USER_FIELDS
    assert body["email"] == "new.reader@example.com"
    assert body["first_name"] == "Ada"
    assert body["last_name"] == "Lovelace"
    assert body["is_staff"] is False
    assert "s3cret-pass" not in response.text
    assert "password" not in response.text

    [user] = await users_in_db(db)
    assert user.id == body["id"]
    assert user.email == "new.reader@example.com"
    assert user.is_active is True
    assert user.is_staff is False
    assert user.hashed_password != "s3cret-pass"
    assert user.hashed_password.startswith("$2")


async def test_register_names_are_optional(client, db):
    response = await client.post(REGISTER, json={"email": "a@example.com", "password": PASSWORD})
    assert response.status_code == 201, response.text
    assert response.json()["first_name"] == ""
    assert response.json()["last_name"] == ""
    assert len(await users_in_db(db)) == 1


@pytest.mark.parametrize("second", ["reader@example.com", "READER@Example.com"])
async def test_register_duplicate_email_is_refused(client, db, second):
    first = await client.post(REGISTER, json={"email": "reader@example.com", "password": PASSWORD})
    assert first.status_code == 201, first.text
    response = await client.post(REGISTER, json={"email": second, "password": "other-password"})
    assert_error(response, 400, "email_taken")
    assert await count(db, User) == 1
    # The first account's password is untouched.
    await assert_can_login(client, "reader@example.com", PASSWORD)


async def test_register_duplicate_of_existing_mixed_case_email(client, db, factory):
    await factory.user(email="Mixed@Example.com")
    response = await client.post(
        REGISTER, json={"email": "mixed@example.com", "password": PASSWORD}
    )
    assert_error(response, 400, "email_taken")
    assert await count(db, User) == 1


@pytest.mark.parametrize(
    "password",
    [
        "",
        "1234567",  # 7 bytes
        "ééé" + "a",  # 4 characters, 7 bytes
        " " * 10,  # only whitespace
        "a" * 73,
        "é€" * 25,  # 50 characters but 125 UTF-8 bytes
        "é" * 37,  # 37 characters, 74 bytes
        "€" * 25,  # 25 characters, 75 bytes
    ],
)
async def test_register_refuses_a_short_blank_or_over_72_byte_password(client, db, password):
    size = len(password.encode())
    assert size < 8 or size > 72 or not password.strip()
    response = await client.post(REGISTER, json={"email": "a@example.com", "password": password})
    assert response.status_code == 422, response.text
    assert await users_in_db(db) == []


@pytest.mark.parametrize(
    "password",
    [
        "a" * 8,
        "éééé",  # 4 characters, 8 bytes
        "a" * 72,
        "é" * 36,  # 36 characters, 72 bytes
        "€" * 24,  # 24 characters, 72 bytes
    ],
)
async def test_register_accepts_password_of_8_and_72_bytes(client, db, password):
    response = await client.post(REGISTER, json={"email": "a@example.com", "password": password})
    assert response.status_code == 201, response.text
    assert len(await users_in_db(db)) == 1
    await assert_can_login(client, "a@example.com", password)


async def test_72_byte_password_is_checked_in_full(client):
    password = "a" * 71 + "b"
    response = await client.post(REGISTER, json={"email": "a@example.com", "password": password})
    assert response.status_code == 201, response.text
    await assert_cannot_login(client, "a@example.com", "a" * 72)
    await assert_can_login(client, "a@example.com", password)


@pytest.mark.parametrize(
    "payload",
    [
        {"email": "not-an-email", "password": PASSWORD},
        {"email": "reader@", "password": PASSWORD},
        {"email": "@example.com", "password": PASSWORD},
        {"email": "", "password": PASSWORD},
        {"email": None, "password": PASSWORD},
        {"password": PASSWORD},
        {"email": "a@example.com", "password": PASSWORD, "first_name": "x" * 151},
        {"email": "a@example.com", "password": PASSWORD, "last_name": "x" * 151},
    ],
)
async def test_register_refuses_invalid_input(client, db, payload):
    response = await client.post(REGISTER, json=payload)
    assert response.status_code == 422, response.text
    assert isinstance(response.json()["detail"], list)
    assert await users_in_db(db) == []


@pytest.mark.parametrize(
    "payload", [{"email": "a@example.com"}, {"email": "a@example.com", "password": None}]
)
async def test_only_staff_enrol_without_a_password(client, db, payload):
    response = await client.post(REGISTER, json=payload)
    assert response.status_code == 400, response.text
    assert response.json()["code"] == "password_required"
    assert await users_in_db(db) == []


async def test_register_with_nul_in_name_is_a_validation_error_not_a_500(client, db):
    payload = {"email": "a@example.com", "password": PASSWORD, "first_name": "Ad\x00a"}
    response = await client.post(REGISTER, json=payload)
    assert response.status_code == 422, response.text
    assert await users_in_db(db) == []


async def test_register_cannot_make_staff(client, db):
    response = await client.post(
        REGISTER,
        json={"email": "sneaky@example.com", "password": PASSWORD, "is_staff": True},
    )
    assert response.status_code == 201, response.text
    assert response.json()["is_staff"] is False
    user = await user_by_email(db, "sneaky@example.com")
    assert user is not None
    assert user.is_staff is False
