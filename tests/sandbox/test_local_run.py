"""The local run (`make run`): the sandbox Stripe on its fixed port across restarts, the
demo data, and the banner's demo logins."""

from __future__ import annotations

import socket
from contextlib import ExitStack
from email.message import EmailMessage
from pathlib import Path
from urllib.parse import urlencode

import aiosmtplib
import httpx
import pytest
from sqlalchemy import func, select, update

from library_service.books.schemas import BookCreate
from library_service.core.config import Settings, get_settings
from library_service.dev import local
from library_service.dev.embedded import free_port
from library_service.dev.seed import DEMO_BOOKS, demo_books
from library_service.models import Book, User
from library_service.users.security import hash_password
from tests.sandbox.test_sandbox_stripe import KEY, flatten, session_params

# -- the sandbox Stripe of `make run` ------------------------------------------------------------


@pytest.fixture
def local_sandbox(settings, tmp_path, monkeypatch):
    """start_sandbox_stripe as `make run` calls it, on a free port, its file in tmp_path.
    It publishes its address through the environment, restored afterwards."""
    port = free_port()
    sessions_file = tmp_path / "sessions.jsonl"
    monkeypatch.setattr(local, "SANDBOX_SESSIONS_FILE", sessions_file)
    for name in ("STRIPE_API_BASE", "STRIPE_WEBHOOK_SECRET"):
        monkeypatch.setenv(name, "")
    run_settings = settings.model_copy(
        update={"STRIPE_SECRET_KEY": "", "STRIPE_WEBHOOK_SECRET": "", "SANDBOX_STRIPE_PORT": port}
    )

    def start(stack: ExitStack) -> Settings:
        return local.start_sandbox_stripe(stack, run_settings, api_port=8000)

    yield start, port, sessions_file
    get_settings.cache_clear()


async def test_the_sandbox_keeps_its_port_and_sessions_across_restarts(local_sandbox):
    start, port, sessions_file = local_sandbox
    with ExitStack() as stack:
        started = start(stack)
        assert f"http://127.0.0.1:{port}" == started.STRIPE_API_BASE
        assert started.STRIPE_WEBHOOK_SECRET == local.SANDBOX_WEBHOOK_SECRET
        async with httpx.AsyncClient(base_url=started.STRIPE_API_BASE) as http:
            response = await http.post(
                "/v1/checkout/sessions",
                content=urlencode(flatten(session_params())),
                headers={**KEY, "Content-Type": "application/x-www-form-urlencoded"},
            )
            created = response.json()
    assert created["url"].startswith(f"http://127.0.0.1:{port}/c/pay/")
    assert sessions_file.exists()

    with ExitStack() as stack:  # the next `make run`
        start(stack)
        async with httpx.AsyncClient() as http:
            page = await http.get(created["url"])
            retrieved = await http.get(
                f"http://127.0.0.1:{port}/v1/checkout/sessions/{created['id']}", headers=KEY
            )
    assert page.status_code == 200
    assert '<button class="pay">' in page.text
    assert retrieved.json()["status"] == "open"


# uvicorn's thread ends with SystemExit when it cannot bind: that is the case under test.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_taken_port_is_reported_with_the_setting_to_change(local_sandbox):
    start, port, _ = local_sandbox
    with socket.socket() as taken, ExitStack() as stack:
        taken.bind(("127.0.0.1", port))
        taken.listen()
        with pytest.raises(RuntimeError, match="SANDBOX_STRIPE_PORT"):
            start(stack)


def test_the_sandbox_port_defaults_to_a_fixed_one():
    assert Settings(_env_file=None).SANDBOX_STRIPE_PORT == 8010  # type: ignore[call-arg]


# -- the local mailbox of `make run` --------------------------------------------------------------


async def test_the_local_run_catches_mail_keeps_it_and_shows_it(settings, tmp_path, monkeypatch):
    """With no SMTP_HOST, `make run` starts a real SMTP server whose e-mails land in its
    folder and on its page, which the banner links."""
    monkeypatch.setattr(local, "MAILBOX_DIR", tmp_path)
    for name in ("SMTP_HOST", "SMTP_PORT", "SMTP_STARTTLS"):
        monkeypatch.setenv(name, "")
    for name in ("SANDBOX_SMTP_PORT", "SANDBOX_MAILBOX_PORT"):
        monkeypatch.setenv(name, "0")
    run_settings = settings.model_copy(
        update={"SMTP_HOST": "", "SANDBOX_SMTP_PORT": 0, "SANDBOX_MAILBOX_PORT": 0}
    )
    try:
        with ExitStack() as stack:
            started = local.start_mailbox(stack, run_settings)
            message = EmailMessage()
            message["From"], message["To"] = "desk@example.com", "reader@example.com"
            message["Subject"] = "Your hold is ready"
            message.set_content("«Emma» is put aside for you.")
            await aiosmtplib.send(
                message, hostname=started.SMTP_HOST, port=int(started.SMTP_PORT), start_tls=False
            )
            [kept] = list(tmp_path.glob("*.eml"))
            assert "Your hold is ready" in kept.read_text()
            page = f"http://127.0.0.1:{started.SANDBOX_MAILBOX_PORT}/"
            async with httpx.AsyncClient() as http:
                assert "Your hold is ready" in (await http.get(page)).text
            assert local._describe_mail(started) == f"local mailbox: {page}"
    finally:
        get_settings.cache_clear()


# -- demo data and the banner --------------------------------------------------------------------


def test_every_demo_book_has_a_valid_distinct_isbn():
    isbns = [isbn for _, _, _, isbn in DEMO_BOOKS]
    assert len(set(isbns)) == len(isbns) == len(DEMO_BOOKS)
    for book in demo_books():
        fields = {"cover": book.cover, "inventory": book.inventory, "daily_fee": book.daily_fee}
        checked = BookCreate(title=book.title, author=book.author, isbn=book.isbn, **fields)
        assert checked.isbn == book.isbn
        assert len(book.isbn or "") == 13


async def test_first_run_seeds_books_and_accounts_and_lists_the_logins(settings, db, client):
    logins = await local.first_run_setup(settings)

    assert logins == list(local.DEMO_ACCOUNTS)
    async with db.autocommit_sessionmaker() as session:
        books = await session.scalar(select(func.count()).select_from(Book))
        staff = await session.scalar(select(User.is_staff).where(User.email == logins[0][1]))
    assert books == len(DEMO_BOOKS)
    assert staff is True
    # The ISBN search can be tried on the demo catalogue.
    title, _, _, isbn = DEMO_BOOKS[7]
    found = await client.get("/api/books/", params={"search": isbn})
    assert [book["title"] for book in found.json()["results"]] == [title]


async def test_later_runs_list_the_demo_logins_while_their_passwords_work(settings, db):
    await local.first_run_setup(settings)
    (_, admin, _), (_, reader, _) = local.DEMO_ACCOUNTS

    assert await local.first_run_setup(settings) == list(local.DEMO_ACCOUNTS)

    changed = await hash_password("a-password-of-their-own", settings)
    await _set_user(db, reader, hashed_password=changed)
    assert await local.first_run_setup(settings) == [local.DEMO_ACCOUNTS[0]]

    await _set_user(db, admin, is_active=False)
    assert await local.first_run_setup(settings) == []


async def test_the_demo_logins_show_the_accounts_current_role(settings, db):
    await local.first_run_setup(settings)
    _, admin, password = local.DEMO_ACCOUNTS[0]
    await _set_user(db, admin, is_staff=False)
    logins = await local.first_run_setup(settings)
    assert ("member", admin, password) in logins


def test_banner_prints_the_logins_it_is_given(settings, capsys):
    local.print_banner(settings, host="127.0.0.1", port=8000, demo_accounts=[])
    assert "Demo accounts" not in capsys.readouterr().out

    demo = list(local.DEMO_ACCOUNTS)
    local.print_banner(settings, host="0.0.0.0", port=8000, demo_accounts=demo)  # noqa: S104
    out = capsys.readouterr().out
    assert "Docs     http://127.0.0.1:8000/docs" in out
    for role, email, password in demo:
        assert f"{role:<7} {email} / {password}" in out


async def _set_user(db, email: str, **values: object) -> None:
    async with db.sessionmaker() as session, session.begin():
        await session.execute(update(User).where(User.email == email).values(**values))


def test_the_sessions_file_is_in_the_local_data_folder():
    from library_service.dev.embedded import DATA_DIR

    assert Path(local.SANDBOX_SESSIONS_FILE).is_relative_to(DATA_DIR)
