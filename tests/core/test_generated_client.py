"""A typed client generated from /openapi.json drives the API: a schema change that breaks
generated clients fails here.

The generator (openapi-python-client) runs in an environment of its own, locked in
clients/python/, on the document the app serves; the client it writes registers a member,
logs in, borrows a book and lists the borrowings against a live server on loopback.
"""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from library_service.core import clock
from library_service.dev.embedded import free_port
from library_service.dev.local import serve_in_thread
from library_service.main import create_app
from tests.conftest import ROOT

GENERATOR = ROOT / "clients" / "python"
PACKAGE = "library_service_client"


@pytest.fixture(scope="module")
def client_package(settings, tmp_path_factory) -> Iterator[ModuleType]:
    folder: Path = tmp_path_factory.mktemp("generated")
    document = create_app(settings, configure_logs=False).openapi()
    (folder / "openapi.json").write_text(json.dumps(document))
    command = [
        str(ROOT / ".venv" / "bin" / "uv"),
        *("run", "--frozen", "--quiet", "--project", str(GENERATOR)),
        *("openapi-python-client", "generate", "--path", "openapi.json", "--meta", "none"),
    ]
    subprocess.run(command, cwd=folder, check=True, capture_output=True, timeout=300)  # noqa: S603
    sys.path.insert(0, str(folder))
    try:
        yield importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(folder))
        for name in [name for name in sys.modules if name.startswith(PACKAGE)]:
            del sys.modules[name]


@pytest.fixture
def api_url(settings, stripe_mock) -> Iterator[str]:
    port = free_port()
    stop = serve_in_thread(
        create_app(settings, configure_logs=False), port, name="client-api", lifespan="on"
    )
    # The generated client's calls go to the live server; the server's to Stripe stay faked.
    stripe_mock.route(host="127.0.0.1", port=port).pass_through()
    yield f"http://127.0.0.1:{port}"
    stop()


def _module(package: ModuleType, name: str) -> Any:
    return importlib.import_module(f"{package.__name__}.{name}")


async def test_a_generated_client_registers_logs_in_borrows_and_lists(
    client_package, api_url, factory
):
    book = await factory.book(title="Middlemarch", inventory=2)
    models = _module(client_package, "models")
    register = _module(client_package, "api.users.users_register")
    token = _module(client_package, "api.users.users_token")
    create = _module(client_package, "api.borrowings.borrowings_create")
    listing = _module(client_package, "api.borrowings.borrowings_list")

    anonymous = client_package.Client(base_url=api_url)
    member = await register.asyncio(
        client=anonymous,
        body=models.UserCreate(email="typed@example.com", password="typed-password"),
    )
    assert isinstance(member, models.UserRead)
    assert member.email == "typed@example.com"
    pair = await token.asyncio(
        client=anonymous,
        body=models.TokenRequest(email="typed@example.com", password="typed-password"),
    )
    assert isinstance(pair, models.TokenPair)

    signed_in = client_package.AuthenticatedClient(base_url=api_url, token=pair.access)
    due = clock.today(factory.settings.timezone) + timedelta(days=5)
    borrowing = await create.asyncio(
        client=signed_in, body=models.BorrowingCreate(book=book.id, expected_return_date=due)
    )
    assert isinstance(borrowing, models.BorrowingDetail)
    assert borrowing.book.title == "Middlemarch"
    assert borrowing.payments[0].money_to_pay == "7.50"
    assert borrowing.payments[0].status == models.PaymentStatus.PENDING

    page = await listing.asyncio(client=signed_in)
    assert page.count == 1
    assert [item.id for item in page.results] == [borrowing.id]

    unknown = await create.asyncio(
        client=signed_in, body=models.BorrowingCreate(book=10**6, expected_return_date=due)
    )
    assert isinstance(unknown, models.ErrorResponse)
    assert unknown.code == "book_not_found"
