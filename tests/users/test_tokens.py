"""Tokens and bearer authentication: obtaining, refreshing, expiring, forging."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from jose import jwt
from sqlalchemy import update

from library_service.core import clock
from library_service.models import User
from library_service.users.security import create_token, decode_token
from tests.factories import (
    BOOK_FIELDS,
    PASSWORD,
    assert_can_login,
    assert_error,
    login,
)

REGISTER = "/api/users/"
TOKEN = "/api/users/token/"
REFRESH = "/api/users/token/refresh/"
ME = "/api/users/me/"


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
    assert_error(response, 401, "invalid_credentials")
    assert "access" not in response.json()


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
    response = await client.post("/api/books/", json=BOOK_FIELDS, headers=bearer(token))
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
    response = await client.post("/api/books/", json=BOOK_FIELDS, headers=headers)
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


@pytest.mark.parametrize("header", ["Authorization", "Authorize"])
async def test_a_token_without_the_bearer_scheme_is_told_the_scheme_is_missing(
    client, factory, header
):
    user = await factory.user()
    token = await assert_can_login(client, user.email, PASSWORD)
    response = await client.get(ME, headers={header: token})
    assert_error(response, 401, "not_authenticated")
    assert response.json()["detail"] == (
        f"The {header} header lacks the Bearer scheme: send `Authorization: Bearer <access token>`."
    )
    bare = await client.get(ME, headers={header: "Bearer"})
    assert (
        bare.json()["detail"] == f"The {header} header names the Bearer scheme but holds no token."
    )
    nothing = await client.get(ME)
    assert nothing.json()["detail"] == "Authentication credentials were not provided."


@pytest.mark.parametrize("known", [True, False], ids=["known-email", "unknown-email"])
async def test_login_with_a_password_over_72_bytes_is_401(client, factory, known):
    """Registration refuses such passwords, so none can be right: a wrong password."""
    user = await factory.user()
    email = user.email if known else "nobody@example.com"
    response = await login(client, email, "a" * 73)
    assert_error(response, 401, "invalid_credentials")
    await assert_can_login(client, user.email, PASSWORD)
