"""Service routes, docs, URL handling and the HTTP-level behaviour of every response."""

from __future__ import annotations

import json
import re

import pytest

from library_service.models import Book, User
from tests.factories import BOOK_FIELDS, PASSWORD, count

# --- health and readiness -------------------------------------------------------------------


async def test_health(client):
    response = await client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_ready_checks_database_and_redis(client):
    response = await client.get("/ready")
    assert response.status_code == 200, response.text
    assert response.json() == {"status": "ok", "database": "ok", "redis": "ok"}


# --- documentation --------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/docs", "/api/docs/", "/api/docs"])
async def test_swagger_ui(client, path):
    response = await client.get(path)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/html")
    assert "swagger-ui" in response.text.lower()
    assert "/openapi.json" in response.text


async def test_redoc(client):
    response = await client.get("/redoc")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/html")
    assert "redoc" in response.text.lower()
    assert "/openapi.json" in response.text


@pytest.mark.parametrize("path", ["/openapi.json", "/api/schema/", "/api/schema"])
async def test_openapi_schema(client, path):
    response = await client.get(path)
    assert response.status_code == 200, response.text
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    for expected in ("/api/books/", "/api/books/{book_id}/", "/api/users/", "/api/users/token/"):
        assert expected in schema["paths"]


async def test_schema_aliases_match(client):
    canonical = (await client.get("/openapi.json")).json()
    alias = (await client.get("/api/schema/")).json()
    assert alias == canonical


async def test_openapi_declares_bearer_scheme_on_protected_routes(client):
    schema = (await client.get("/openapi.json")).json()
    schemes = schema["components"]["securitySchemes"]
    bearer_names = [
        name
        for name, scheme in schemes.items()
        if scheme.get("type") == "http" and scheme.get("scheme", "").lower() == "bearer"
    ]
    assert bearer_names, schemes
    name = bearer_names[0]
    # Swagger only sends the token to operations that declare the scheme.
    for path, method in [
        ("/api/users/me/", "get"),
        ("/api/books/", "post"),
        ("/api/books/{book_id}/", "delete"),
        ("/api/borrowings/", "post"),
    ]:
        security = schema["paths"][path][method].get("security", [])
        assert any(name in requirement for requirement in security), (path, method, security)


# --- trailing slash -------------------------------------------------------------------------


@pytest.mark.parametrize("slash", ["", "/"])
async def test_get_routes_with_and_without_trailing_slash(client, factory, slash):
    member = await factory.member()
    book = await factory.book()
    headers = factory.auth(member)
    for path in [
        "/api/books",
        f"/api/books/{book.id}",
        "/api/users/me",
        "/api/borrowings",
        "/api/payments",
    ]:
        response = await client.get(path + slash, headers=headers)
        assert response.status_code == 200, (path, response.status_code, response.text)
    response = await client.get(f"/api/books{slash}", params={"limit": 1, "search": "pride"})
    assert response.status_code == 200
    assert response.json()["count"] == 1
    assert len(response.json()["results"]) == 1


@pytest.mark.parametrize("slash", ["", "/"])
async def test_post_routes_with_and_without_trailing_slash(client, factory, db, slash):
    response = await client.post(
        f"/api/users{slash}", json={"email": "new@example.com", "password": PASSWORD}
    )
    assert response.status_code == 201, response.text
    assert await count(db, User) == 1

    response = await client.post(
        f"/api/users/token{slash}", json={"email": "new@example.com", "password": PASSWORD}
    )
    assert response.status_code == 200, response.text
    tokens = response.json()

    response = await client.post(
        f"/api/users/token/refresh{slash}", json={"refresh": tokens["refresh"]}
    )
    assert response.status_code == 200, response.text

    staff = factory.auth(await factory.staff())
    response = await client.post(f"/api/books{slash}", json=BOOK_FIELDS, headers=staff)
    assert response.status_code == 201, response.text
    book_id = response.json()["id"]
    assert await count(db, Book) == 1

    response = await client.patch(
        f"/api/books/{book_id}{slash}", json={"inventory": 4}, headers=staff
    )
    assert response.status_code == 200, response.text
    assert response.json()["inventory"] == 4
    response = await client.delete(f"/api/books/{book_id}{slash}", headers=staff)
    assert response.status_code == 204, response.text
    assert await count(db, Book) == 0


# --- errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/api/nope/", "/api/nope", "/nope", "/api/books/1/extra/"])
async def test_unknown_route_is_json_404(client, path):
    response = await client.get(path)
    assert response.status_code == 404, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"detail", "code"}
    assert body["code"] == "not_found"
    assert isinstance(body["detail"], str)


@pytest.mark.parametrize(
    ("method", "path"),
    [("PUT", "/api/borrowings/"), ("DELETE", "/api/books/"), ("GET", "/api/users/token/")],
)
async def test_wrong_method_is_405(client, method, path):
    response = await client.request(method, path)
    assert response.status_code == 405, response.text
    body = response.json()
    assert body["code"] == "method_not_allowed"
    assert isinstance(body["detail"], str)
    assert "allow" in response.headers


@pytest.mark.parametrize(
    "content",
    [
        b'{"email": "a@example.com", "password": ',
        b"{'email': 'a@example.com'}",
        b"not json at all",
        b'{"email": "a@example.com", "password": "password123"',
    ],
)
async def test_malformed_json_is_422(client, db, content):
    response = await client.post(
        "/api/users/", content=content, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422, response.text
    assert isinstance(response.json()["detail"], list)
    assert await count(db, User) == 0


async def test_invalid_utf8_json_is_422(client, db):
    response = await client.post(
        "/api/users/",
        content=b'{"email": "a@example.com", "password": "pass\xff\xfeword"}',
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 422, response.text
    assert isinstance(response.json()["detail"], list)
    assert await count(db, User) == 0


@pytest.mark.parametrize("content", [b"[]", b'"text"', b"42", b"null"])
async def test_json_that_is_not_an_object_is_422(client, db, content):
    response = await client.post(
        "/api/users/", content=content, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422, response.text
    assert await count(db, User) == 0


async def test_missing_body_is_422(client, db):
    response = await client.post("/api/users/")
    assert response.status_code == 422, response.text
    assert await count(db, User) == 0


# --- headers --------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/health", "/api/books/", "/api/nope/", "/api/users/me/"])
async def test_every_response_has_request_id_and_security_headers(client, path):
    response = await client.get(path)
    request_id = response.headers.get("x-request-id")
    assert request_id
    assert re.fullmatch(r"[0-9a-f]{32}", request_id)
    assert response.headers["x-content-type-options"] == "nosniff"


async def test_request_ids_differ_between_requests(client):
    first = (await client.get("/health")).headers["x-request-id"]
    second = (await client.get("/health")).headers["x-request-id"]
    assert first != second


async def test_incoming_request_id_is_echoed(client):
    response = await client.get("/api/books/", headers={"X-Request-ID": "trace-abc-123"})
    assert response.headers["x-request-id"] == "trace-abc-123"
    assert response.headers.get_list("x-request-id") == ["trace-abc-123"]


# --- body size ------------------------------------------------------------------------------


def _body_of_size(size: int) -> bytes:
    base = json.dumps({"email": "big@example.com", "password": "password123"}).encode()
    assert len(base) <= size
    return base[:-1] + b" " * (size - len(base)) + b"}"


async def test_body_over_the_limit_is_413(client, db, settings):
    content = _body_of_size(settings.MAX_BODY_BYTES + 1)
    response = await client.post(
        "/api/users/", content=content, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 413, response.text
    assert response.json()["code"] == "request_too_large"
    assert isinstance(response.json()["detail"], str)
    assert await count(db, User) == 0


async def test_body_at_the_limit_is_accepted(client, db, settings):
    content = _body_of_size(settings.MAX_BODY_BYTES)
    assert len(content) == settings.MAX_BODY_BYTES
    response = await client.post(
        "/api/users/", content=content, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 201, response.text
    assert await count(db, User) == 1


async def test_streamed_body_over_the_limit_is_413(client, db, settings):
    """Without Content-Length (chunked upload) the limit is enforced while reading."""
    content = _body_of_size(settings.MAX_BODY_BYTES + 1)

    async def chunks():
        for start in range(0, len(content), 4096):
            yield content[start : start + 4096]

    response = await client.post(
        "/api/users/", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert "content-length" not in response.request.headers
    assert response.status_code == 413, response.text
    assert response.json()["code"] == "request_too_large"
    assert await count(db, User) == 0
