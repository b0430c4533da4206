"""Property-based fuzzing of every operation in /openapi.json (schemathesis): whatever the
input, no 5xx, and every answer matches the documented status codes, content types and
schemas. It runs against a live server on loopback, as a client would see it."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from typing import Any

import httpx
import jsonschema_rs
import pytest
import schemathesis
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from library_service.dev.embedded import free_port
from library_service.dev.fake_stripe import SandboxStripe
from library_service.dev.local import serve_in_thread
from library_service.main import create_app

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "20"))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.fixture(scope="module")
def live_server(settings) -> Iterator[str]:
    sandbox_port, api_port = free_port(), free_port()
    stop_sandbox = serve_in_thread(
        SandboxStripe(public_url=f"http://127.0.0.1:{sandbox_port}").app,
        sandbox_port,
        name="fuzz-sandbox",
    )
    app_settings = settings.model_copy(
        update={"STRIPE_API_BASE": f"http://127.0.0.1:{sandbox_port}", "TELEGRAM_BOT_TOKEN": ""}
    )
    stop_api = serve_in_thread(
        create_app(app_settings, configure_logs=False), api_port, name="fuzz-api", lifespan="on"
    )
    yield f"http://127.0.0.1:{api_port}"
    stop_api()
    stop_sandbox()


@pytest.fixture(scope="module")
def api_schema(live_server):
    return schemathesis.openapi.from_url(f"{live_server}/openapi.json")


@pytest.fixture
def http(live_server) -> Iterator[httpx.Client]:
    """One kept-alive connection for a test's many requests (a new one each costs time)."""
    with httpx.Client(base_url=live_server) as client:
        yield client


@pytest.fixture
async def staff_headers(factory) -> dict[str, str]:
    """Fuzz as staff, so the write endpoints run past authentication; with some data."""
    staff = await factory.staff()
    member = await factory.member()
    book = await factory.book(inventory=3)
    await factory.book(title="Emma", inventory=0)
    del member, book
    return factory.auth(staff)


def test_every_operation_honours_the_schema(api_schema, staff_headers):
    # One Hypothesis run per operation (schemathesis' lazy pytest loader does not work with
    # this pytest, so the operations are walked here).
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 20
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def fuzz(case):
            case.call_and_validate(headers=staff_headers, checks=CHECKS)

        try:
            fuzz()
        except Exception as exc:
            raise AssertionError(f"{operation.label}: {exc}") from exc


# What Python's json module parses but RFC 8259 JSON has not (and FastAPI's 422 could not
# echo back): the body serializer writes them as NaN, Infinity, "\ud800"...
UNREPRESENTABLE = st.sampled_from(
    [
        float("nan"),
        float("inf"),
        float("-inf"),
        "\ud800",
        "x\udfffy",
        ["\udbff"],
        {"nested": float("nan")},
    ]
)


def test_unrepresentable_json_in_any_field_is_refused(api_schema, live_server, staff_headers, http):
    """Every operation that takes a JSON body, with one of its fields (or a field it does not
    know) set to a value JSON cannot carry: a 422, never a 5xx."""
    operations = [
        result.ok()
        for result in api_schema.get_all_operations()
        if result.ok().body and result.ok().path != "/api/payments/webhook/"
    ]
    assert len(operations) >= 9
    for operation in operations:

        @given(case=operation.as_strategy(), data=st.data())
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def fuzz(case, data):
            body = case.body if isinstance(case.body, dict) else {}
            field = data.draw(st.sampled_from([*sorted(body), "unknown_field"]))
            request = case.as_transport_kwargs(base_url=live_server, headers=staff_headers)
            request.pop("json", None)
            # A generated header value with edge whitespace ("0 ") is one HTTP cannot carry:
            # the client refuses to send it.
            assume(all(value == value.strip() for value in request["headers"].values()))
            # json.dumps writes NaN and lone surrogates; requests' own encoder would refuse.
            content = json.dumps({**body, field: data.draw(UNREPRESENTABLE)}).encode()
            response = http.request(
                request["method"],
                request["url"],
                params=request.get("params"),
                headers={**request["headers"], "Content-Type": "application/json"},
                content=content,
            )
            assert response.status_code == 422, (content, response.text)
            assert response.json()["detail"][0]["type"] == "json_invalid"

        try:
            fuzz()
        except Exception as exc:
            raise AssertionError(f"{operation.label}: {exc}") from exc


# -- JSON's own types, and ids past any digit limit ------------------------------------------


@pytest.fixture(scope="module")
def openapi(live_server) -> dict[str, Any]:
    document: dict[str, Any] = httpx.get(f"{live_server}/openapi.json").json()
    return document


def _operations(openapi: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in openapi["paths"].items():
        for method, operation in item.items():
            yield method.upper(), path, operation


def _resolve(openapi: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        name = schema["$ref"].removeprefix("#/components/schemas/")
        schema = openapi["components"]["schemas"][name]
    return schema


def _json_body(openapi: dict[str, Any], operation: dict[str, Any]) -> dict[str, Any] | None:
    content = operation.get("requestBody", {}).get("content", {})
    if "application/json" not in content:
        return None
    return _resolve(openapi, content["application/json"]["schema"])


# What lax validation would read as something else: `true` as the id 1, "1" as 1 or as a
# boolean, a numeric string as a Unix time.
LOOKALIKES = [True, "1", "1.50"]


def test_booleans_and_numeric_strings_in_any_body_field(openapi, http, staff_headers):
    """Every field of every JSON body, set to a boolean or a numeric string: a 422 whenever
    the value is not of the field's documented type, never a 5xx."""
    probed = 0
    for method, path, operation in _operations(openapi):
        body_schema = _json_body(openapi, operation)
        if body_schema is None or path == "/api/payments/webhook/":
            continue
        example = body_schema.get("examples", [{}])[0]
        url = re.sub(r"\{[^}]+\}", "1", path)  # any id will do: the body is checked first
        for field, field_schema in body_schema["properties"].items():
            fits = jsonschema_rs.validator_for(
                {"allOf": [field_schema], "components": openapi["components"]},
                validate_formats=True,
            )
            for value in LOOKALIKES:
                body = {**example, field: value}
                response = http.request(method, url, json=body, headers=staff_headers)
                probed += 1
                assert response.status_code < 500, (method, path, field, value)
                if not fits.is_valid(value):
                    assert response.status_code == 422, (method, path, field, value)
                    located = [error["loc"][-1] for error in response.json()["detail"]]
                    assert field in located, (method, path, field, value, located)
    assert probed >= 3 * 20


OVERLONG_IDS = ["9" * 11, "1" + "0" * 4300, "9" * 10_000]


def test_over_long_digit_strings_in_every_path_id(openapi, http, staff_headers):
    """A path id of more digits than any id column (or Python's int()) takes: 404 or 422."""
    probed = 0
    for method, path, operation in _operations(openapi):
        names = [p["name"] for p in operation.get("parameters", []) if p["in"] == "path"]
        example = (_json_body(openapi, operation) or {}).get("examples", [None])[0]
        for name in names:
            for digits in OVERLONG_IDS:
                url = re.sub(r"\{[^}]+\}", "1", path.replace(f"{{{name}}}", digits))
                response = http.request(method, url, json=example, headers=staff_headers)
                probed += 1
                assert response.status_code in {404, 422}, (method, path, len(digits))
    assert probed >= 3 * 13
