"""Users: registration, tokens, bearer authentication and the own profile."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from jose import jwt
from sqlalchemy import func, select, update

from library_service.core import clock
from library_service.core.security import create_token, decode_token
from library_service.models import User

REGISTER = "/api/users/"
TOKEN = "/api/users/token/"
REFRESH = "/api/users/token/refresh/"
ME = "/api/users/me/"
PASSWORD = "password123"
USER_FIELDS = {"id", "email", "first_name", "last_name", "is_staff", "date_joined"}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _b64(data: dict[str, Any]) -> str:
    raw = json.dumps(data, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def claims_for(user_id: int, kind: str = "access", **extra: Any) -> dict[str, Any]:
    now = int(clock.now().timestamp())
    claims: dict[str, Any] = {
        "sub": str(user_id),
        "type": kind,
        "iat": now,
        "exp": now + 3600,
        "jti": "abc",
    }
    claims.update(extra)
    return claims


async def users_in_db(db) -> list[User]:
    async with db.sessionmaker() as session:
        return list((await session.execute(select(User).order_by(User.id))).scalars())


async def user_by_email(db, email: str) -> User | None:
    async with db.sessionmaker() as session:
        statement = select(User).where(func.lower(User.email) == email.lower())
        return (await session.execute(statement)).scalar_one_or_none()


async def reload(db, user: User) -> User:
    async with db.sessionmaker() as session:
        fresh = await session.get(User, user.id)
        assert fresh is not None
        return fresh


async def login(client, email: str, password: str = PASSWORD):
    return await client.post(TOKEN, json={"email": email, "password": password})


async def assert_can_login(client, email: str, password: str) -> str:
    response = await login(client, email, password)
    assert response.status_code == 200, response.text
    return response.json()["access"]


async def assert_cannot_login(client, email: str, password: str) -> None:
    response = await login(client, email, password)
    assert response.status_code == 401, response.text
    assert response.json()["code"] == "invalid_credentials"


# --- registration -------------------------------------------------------------------------


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
    assert response.status_code == 400, response.text
    assert response.json()["code"] == "email_taken"
    assert isinstance(response.json()["detail"], str)
    users = await users_in_db(db)
    assert len(users) == 1
    # The first account's password is untouched.
    await assert_can_login(client, "reader@example.com", PASSWORD)


async def test_register_duplicate_of_existing_mixed_case_email(client, db, factory):
    await factory.user(email="Mixed@Example.com")
    response = await client.post(
        REGISTER, json={"email": "mixed@example.com", "password": PASSWORD}
    )
    assert response.status_code == 400, response.text
    assert response.json()["code"] == "email_taken"
    assert len(await users_in_db(db)) == 1


@pytest.mark.parametrize(
    "password",
    [
        "",
        "1234567",  # 7 bytes
        "ééé" + "a",  # 4 characters, 7 bytes
        " " * 10,  # only whitespace
    ],
)
async def test_register_refuses_short_or_blank_password(client, db, password):
    response = await client.post(REGISTER, json={"email": "a@example.com", "password": password})
    assert response.status_code == 422, response.text
    assert await users_in_db(db) == []


@pytest.mark.parametrize(
    "password",
    [
        "a" * 73,
        "é€" * 25,  # 50 characters but 125 UTF-8 bytes
        "é" * 37,  # 37 characters, 74 bytes
        "€" * 25,  # 25 characters, 75 bytes
    ],
)
async def test_register_refuses_password_over_72_bytes(client, db, password):
    assert len(password.encode()) > 72
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
        {"email": "a@example.com"},
        {"email": "a@example.com", "password": None},
        {"email": "a@example.com", "password": PASSWORD, "first_name": "x" * 151},
        {"email": "a@example.com", "password": PASSWORD, "last_name": "x" * 151},
    ],
)
async def test_register_refuses_invalid_input(client, db, payload):
    response = await client.post(REGISTER, json=payload)
    assert response.status_code == 422, response.text
    assert isinstance(response.json()["detail"], list)
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


# --- tokens -------------------------------------------------------------------------------


async def test_obtain_tokens_returns_access_and_refresh(client, factory, settings):
    user = await factory.user()
    response = await login(client, user.email)
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"access", "refresh"}
    assert decode_token(body["access"], "access", settings).user_id == user.id
    assert decode_token(body["refresh"], "refresh", settings).user_id == user.id

    me = await client.get(ME, headers=bearer(body["access"]))
    assert me.status_code == 200, me.text
    assert me.json()["id"] == user.id
    assert me.json()["email"] == user.email


async def test_login_with_differently_cased_email(client, factory):
    user = await factory.user(email="reader@example.com")
    token = await assert_can_login(client, "ReAdEr@EXAMPLE.com", PASSWORD)
    me = await client.get(ME, headers=bearer(token))
    assert me.json()["id"] == user.id


async def test_login_after_register_with_mixed_case_email(client):
    response = await client.post(
        REGISTER, json={"email": "Mixed.Case@Example.com", "password": PASSWORD}
    )
    assert response.status_code == 201, response.text
    await assert_can_login(client, "mixed.case@example.com", PASSWORD)
    await assert_can_login(client, "MIXED.CASE@EXAMPLE.COM", PASSWORD)


async def test_login_with_wrong_password_is_401(client, factory):
    user = await factory.user()
    response = await login(client, user.email, "wrong-password")
    assert response.status_code == 401, response.text
    body = response.json()
    assert body["code"] == "invalid_credentials"
    assert isinstance(body["detail"], str)
    assert "access" not in body


async def test_login_with_unknown_email_is_401(client, factory):
    await factory.user(email="known@example.com")
    response = await login(client, "unknown@example.com")
    assert response.status_code == 401, response.text
    assert response.json()["code"] == "invalid_credentials"


@pytest.mark.parametrize(
    "payload", [{}, {"email": "a@example.com"}, {"password": PASSWORD}, {"email": 1, "password": 2}]
)
async def test_login_with_malformed_body_is_422(client, payload):
    response = await client.post(TOKEN, json=payload)
    assert response.status_code == 422, response.text


async def test_refresh_gives_a_working_access_token(client, factory, settings):
    user = await factory.user()
    tokens = (await login(client, user.email)).json()
    response = await client.post(REFRESH, json={"refresh": tokens["refresh"]})
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"access"}
    assert decode_token(body["access"], "access", settings).user_id == user.id
    me = await client.get(ME, headers=bearer(body["access"]))
    assert me.status_code == 200, me.text
    assert me.json()["id"] == user.id


async def test_access_token_is_refused_by_refresh(client, factory):
    user = await factory.user()
    tokens = (await login(client, user.email)).json()
    response = await client.post(REFRESH, json={"refresh": tokens["access"]})
    assert response.status_code == 401, response.text
    assert response.json()["code"] == "token_not_valid"
    assert "access" not in response.json()


async def test_refresh_token_is_refused_as_bearer(client, factory):
    user = await factory.user()
    tokens = (await login(client, user.email)).json()
    response = await client.get(ME, headers=bearer(tokens["refresh"]))
    assert response.status_code == 401, response.text
    assert response.json()["code"] == "token_not_valid"
    assert response.headers["www-authenticate"].lower().startswith("bearer")


async def test_garbage_refresh_token_is_401(client):
    response = await client.post(REFRESH, json={"refresh": "not.a.token"})
    assert response.status_code == 401, response.text
    assert response.json()["code"] == "token_not_valid"


def _alg_none_token(user_id: int) -> str:
    return f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(claims_for(user_id))}."


@pytest.mark.parametrize(
    "forge",
    [
        pytest.param(lambda uid, key: _alg_none_token(uid), id="alg-none"),
        pytest.param(
            lambda uid, key: jwt.encode(claims_for(uid), "another-secret-key", algorithm="HS256"),
            id="wrong-signature",
        ),
        pytest.param(
            lambda uid, key: jwt.encode(claims_for(uid), key, algorithm="HS512"),
            id="other-algorithm",
        ),
        pytest.param(
            lambda uid, key: jwt.encode(
                claims_for(uid, exp=int(clock.now().timestamp()) - 10), key, algorithm="HS256"
            ),
            id="expired",
        ),
        pytest.param(
            lambda uid, key: jwt.encode(
                {k: v for k, v in claims_for(uid).items() if k != "exp"}, key, algorithm="HS256"
            ),
            id="no-exp",
        ),
        pytest.param(
            lambda uid, key: jwt.encode(
                {k: v for k, v in claims_for(uid).items() if k != "type"}, key, algorithm="HS256"
            ),
            id="no-type",
        ),
        pytest.param(
            lambda uid, key: jwt.encode(claims_for(uid, sub="abc"), key, algorithm="HS256"),
            id="non-numeric-sub",
        ),
        pytest.param(
            lambda uid, key: jwt.encode(claims_for(uid + 1000), key, algorithm="HS256"),
            id="unknown-user",
        ),
        pytest.param(lambda uid, key: "garbage", id="garbage"),
    ],
)
async def test_forged_or_invalid_access_tokens_are_401(client, factory, settings, forge):
    user = await factory.user(is_staff=True)
    # Control: a well-formed token built the same way is accepted.
    good = jwt.encode(claims_for(user.id), settings.SECRET_KEY, algorithm="HS256")
    assert (await client.get(ME, headers=bearer(good))).status_code == 200

    token = forge(user.id, settings.SECRET_KEY)
    response = await client.get(ME, headers=bearer(token))
    assert response.status_code == 401, response.text
    assert response.json()["code"] == "token_not_valid"
    assert "www-authenticate" in response.headers
    # Staff-only writes are refused too.
    response = await client.post(
        "/api/books/",
        json={
            "title": "T",
            "author": "A",
            "cover": "HARD",
            "inventory": 1,
            "daily_fee": "1.00",
        },
        headers=bearer(token),
    )
    assert response.status_code == 401, response.text


async def test_forged_refresh_token_is_401(client, factory, settings):
    user = await factory.user()
    forged = jwt.encode(claims_for(user.id, "refresh"), "another-secret-key", algorithm="HS256")
    response = await client.post(REFRESH, json={"refresh": forged})
    assert response.status_code == 401, response.text
    none_token = f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(claims_for(user.id, 'refresh'))}."
    response = await client.post(REFRESH, json={"refresh": none_token})
    assert response.status_code == 401, response.text


async def test_access_token_expires_after_access_minutes(client, factory, settings):
    user = await factory.user()
    issued = datetime(2026, 1, 10, 12, tzinfo=UTC)
    with clock.frozen(issued):
        token = create_token(user.id, "access", settings)
    lifetime = timedelta(minutes=settings.ACCESS_MINUTES)
    with clock.frozen(issued + lifetime - timedelta(minutes=1)):
        assert (await client.get(ME, headers=bearer(token))).status_code == 200
    with clock.frozen(issued + lifetime + timedelta(seconds=1)):
        response = await client.get(ME, headers=bearer(token))
        assert response.status_code == 401, response.text
        assert response.json()["code"] == "token_not_valid"
    # Issued in the past, used now: long expired.
    response = await client.get(ME, headers=bearer(token))
    assert response.status_code == 401, response.text


async def test_refresh_token_expires_after_refresh_days(client, factory, settings):
    user = await factory.user()
    issued = datetime(2026, 1, 10, 12, tzinfo=UTC)
    with clock.frozen(issued):
        refresh = (await login(client, user.email)).json()["refresh"]
    lifetime = timedelta(days=settings.REFRESH_DAYS)
    with clock.frozen(issued + lifetime - timedelta(minutes=1)):
        response = await client.post(REFRESH, json={"refresh": refresh})
        assert response.status_code == 200, response.text
    with clock.frozen(issued + lifetime + timedelta(seconds=1)):
        response = await client.post(REFRESH, json={"refresh": refresh})
        assert response.status_code == 401, response.text
        assert response.json()["code"] == "token_not_valid"


async def test_deactivated_user_cannot_obtain_tokens(client, factory):
    user = await factory.user(is_active=False)
    response = await login(client, user.email)
    assert response.status_code == 401, response.text
    assert response.json()["code"] == "invalid_credentials"


async def test_deactivated_users_tokens_stop_working(client, factory, db):
    user = await factory.user()
    tokens = (await login(client, user.email)).json()
    assert (await client.get(ME, headers=bearer(tokens["access"]))).status_code == 200

    async with db.sessionmaker() as session, session.begin():
        await session.execute(update(User).where(User.id == user.id).values(is_active=False))

    response = await client.get(ME, headers=bearer(tokens["access"]))
    assert response.status_code == 401, response.text
    assert response.json()["code"] == "token_not_valid"
    response = await client.post(REFRESH, json={"refresh": tokens["refresh"]})
    assert response.status_code == 401, response.text
    assert "access" not in response.json()


async def test_deactivated_staff_cannot_write_books(client, factory, db):
    staff = await factory.user(is_staff=True)
    headers = factory.auth(staff)
    async with db.sessionmaker() as session, session.begin():
        await session.execute(update(User).where(User.id == staff.id).values(is_active=False))
    book = {"title": "T", "author": "A", "cover": "HARD", "inventory": 1, "daily_fee": "1.00"}
    response = await client.post("/api/books/", json=book, headers=headers)
    assert response.status_code == 401, response.text


# --- bearer header ------------------------------------------------------------------------


async def test_authorize_header_alias_is_accepted(client, factory):
    user = await factory.user()
    token = await assert_can_login(client, user.email, PASSWORD)
    response = await client.get(ME, headers={"Authorize": f"Bearer {token}"})
    assert response.status_code == 200, response.text
    assert response.json()["id"] == user.id


async def test_authorize_alias_with_bad_token_is_401(client, factory):
    await factory.user()
    response = await client.get(ME, headers={"Authorize": "Bearer nonsense"})
    assert response.status_code == 401, response.text
    assert response.json()["code"] == "token_not_valid"


async def test_authorize_alias_with_other_scheme_is_not_a_credential(client, factory):
    user = await factory.user()
    token = await assert_can_login(client, user.email, PASSWORD)
    response = await client.get(ME, headers={"Authorize": f"Token {token}"})
    assert response.status_code == 401, response.text
    assert response.json()["code"] == "not_authenticated"


async def test_missing_token_is_401_with_www_authenticate(client):
    response = await client.get(ME)
    assert response.status_code == 401, response.text
    assert response.json()["code"] == "not_authenticated"
    assert isinstance(response.json()["detail"], str)
    assert response.headers["www-authenticate"].lower().startswith("bearer")


@pytest.mark.parametrize("header", ["Bearer", "Bearer ", "Basic dXNlcjpwYXNz", "token"])
async def test_malformed_authorization_header_is_401(client, header):
    response = await client.get(ME, headers={"Authorization": header})
    assert response.status_code == 401, response.text
    assert "code" in response.json()


# --- own profile --------------------------------------------------------------------------


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
    stored = await reload(db, user)
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
    stored = await reload(db, user)
    assert (stored.first_name, stored.last_name) == ("", "")


async def test_put_profile_requires_email(client, factory, db):
    user = await factory.user(first_name="Jane")
    response = await client.put(ME, json={"first_name": "X"}, headers=factory.auth(user))
    assert response.status_code == 422, response.text
    assert (await reload(db, user)).first_name == "Jane"


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
    assert response.status_code == 400, response.text
    assert response.json()["code"] == "email_taken"
    stored = await reload(db, user)
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
    stored = await reload(db, user)
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
    assert (await reload(db, user)).email == "renamed@example.com"
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
    assert (await reload(db, user)).hashed_password == user.hashed_password
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
    stored = await reload(db, user)
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
    stored = await reload(db, user)
    assert stored.is_staff is False
    assert stored.is_active is True


async def test_profile_update_keeps_staff_flag(client, factory, db):
    staff = await factory.user(is_staff=True)
    response = await client.patch(
        ME, json={"first_name": "Boss", "is_staff": False}, headers=factory.auth(staff)
    )
    assert response.status_code == 200, response.text
    assert (await reload(db, staff)).is_staff is True


@pytest.mark.parametrize("method", ["get", "put", "patch"])
async def test_profile_requires_authentication(client, method):
    response = await client.request(method.upper(), ME, json={"email": "a@example.com"})
    assert response.status_code == 401, response.text
    assert response.json()["code"] == "not_authenticated"
