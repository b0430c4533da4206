"""The OpenAPI document as a client generator reads it: short stable operation ids, only the
error answers an operation can give, and request examples that work as they are."""

from __future__ import annotations

from typing import Any

import pytest

from library_service.dev.local import first_run_setup

OPERATION_IDS = {
    ("post", "/api/users/"): "users_register",
    ("post", "/api/users/token/"): "users_token",
    ("post", "/api/users/token/refresh/"): "users_token_refresh",
    ("get", "/api/users/"): "users_list",
    ("get", "/api/users/{user_id}/"): "users_read",
    ("patch", "/api/users/{user_id}/"): "users_update",
    ("get", "/api/users/me/"): "users_me_read",
    ("put", "/api/users/me/"): "users_me_replace",
    ("patch", "/api/users/me/"): "users_me_update",
    ("get", "/api/books/"): "books_list",
    ("post", "/api/books/"): "books_create",
    ("get", "/api/books/{book_id}/"): "books_read",
    ("put", "/api/books/{book_id}/"): "books_replace",
    ("patch", "/api/books/{book_id}/"): "books_update",
    ("delete", "/api/books/{book_id}/"): "books_delete",
    ("get", "/api/borrowings/"): "borrowings_list",
    ("post", "/api/borrowings/"): "borrowings_create",
    ("get", "/api/borrowings/{borrowing_id}/"): "borrowings_read",
    ("post", "/api/borrowings/{borrowing_id}/extend/"): "borrowings_extend",
    ("post", "/api/borrowings/{borrowing_id}/return/"): "borrowings_return",
    ("get", "/api/holds/"): "holds_list",
    ("post", "/api/holds/"): "holds_create",
    ("get", "/api/holds/{hold_id}/"): "holds_read",
    ("post", "/api/holds/{hold_id}/cancel/"): "holds_cancel",
    ("get", "/api/payments/"): "payments_list",
    ("get", "/api/payments/{payment_id}/"): "payments_read",
    ("post", "/api/payments/{payment_id}/renew/"): "payments_renew",
    ("post", "/api/payments/{payment_id}/cash/"): "payments_cash",
    ("post", "/api/payments/{payment_id}/waive/"): "payments_waive",
    ("get", "/api/payments/totals/"): "payments_totals",
    ("get", "/api/payments/success/"): "payments_success",
    ("get", "/api/payments/cancel/"): "payments_cancel",
    ("post", "/api/payments/webhook/"): "payments_webhook",
    ("get", "/health"): "service_health",
    ("get", "/ready"): "service_ready",
}


@pytest.fixture
async def document(client) -> dict[str, Any]:
    response = await client.get("/openapi.json")
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


def _operations(document: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (method, path): operation
        for path, methods in document["paths"].items()
        for method, operation in methods.items()
    }


async def test_every_operation_has_its_short_stable_id(document):
    found = {key: op["operationId"] for key, op in _operations(document).items()}
    assert {key: found.get(key) for key in OPERATION_IDS} == OPERATION_IDS
    assert len(set(found.values())) == len(found)  # unique, as generators need


@pytest.mark.parametrize(
    ("method", "path", "documented"),
    [
        ("get", "/api/books/", {"200", "422", "503"}),
        ("get", "/api/books/{book_id}/", {"200", "404", "422", "503"}),
        ("delete", "/api/books/{book_id}/", {"204", "400", "401", "403", "404", "422", "503"}),
        ("get", "/api/borrowings/", {"200", "401", "422", "503"}),
        (
            "post",
            "/api/borrowings/",
            {"201", "400", "401", "403", "404", "409", "413", "422", "503"},
        ),
        ("post", "/api/users/token/", {"200", "401", "413", "422", "429", "503"}),
        ("get", "/api/payments/cancel/", {"200", "303", "404", "422", "503"}),
        ("get", "/health", {"200"}),
    ],
)
async def test_operations_list_only_the_answers_they_can_give(document, method, path, documented):
    assert set(_operations(document)[(method, path)]["responses"]) == documented


def _example(document: dict[str, Any], schema: str) -> dict[str, Any]:
    example: dict[str, Any] = document["components"]["schemas"][schema]["examples"][0]
    return example


async def test_request_examples_work_as_they_are_on_the_demo_data(
    client, document, settings, sandbox
):
    """What a visitor to /docs of `make run` does: log in with the example, then send each
    example body as it is."""
    await first_run_setup(settings)  # the demo books and accounts of the local run
    token = await client.post("/api/users/token/", json=_example(document, "TokenRequest"))
    assert token.status_code == 200, token.text
    member = {"Authorization": f"Bearer {token.json()['access']}"}
    staff_login = {"email": "admin@library.example.com", "password": "admin-password"}
    staff_token = (await client.post("/api/users/token/", json=staff_login)).json()["access"]
    staff = {"Authorization": f"Bearer {staff_token}"}

    registered = await client.post("/api/users/", json=_example(document, "UserCreate"))
    assert registered.status_code == 201, registered.text
    borrowed = await client.post(
        "/api/borrowings/", json=_example(document, "BorrowingCreate"), headers=member
    )
    assert borrowed.status_code == 201, borrowed.text
    extended = await client.post(
        f"/api/borrowings/{borrowed.json()['id']}/extend/",
        json=_example(document, "BorrowingExtend"),
        headers=member,
    )
    assert extended.status_code == 200, extended.text
    held = await client.post("/api/holds/", json=_example(document, "HoldCreate"), headers=member)
    assert held.status_code == 201, held.text
    created = await client.post("/api/books/", json=_example(document, "BookCreate"), headers=staff)
    assert created.status_code == 201, created.text
    book_url = f"/api/books/{created.json()['id']}/"
    patched = await client.patch(book_url, json=_example(document, "BookPatch"), headers=staff)
    assert patched.status_code == 200, patched.text
    for schema, method in [("UserPatch", "PATCH"), ("UserUpdate", "PUT")]:
        answer = await client.request(
            method, "/api/users/me/", json=_example(document, schema), headers=member
        )
        assert answer.status_code == 200, answer.text
