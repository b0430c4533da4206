"""The `library-service` command: create-admin, seed-demo, migrate (against the test DB)."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from library_service.cli import app as cli
from library_service.core.config import get_settings
from library_service.models import Book, User
from library_service.users.security import verify_password


@pytest.fixture
def runner(settings, monkeypatch):
    """The command reads its settings from the environment, like in production."""
    monkeypatch.setenv("DATABASE_URL", settings.DATABASE_URL)
    monkeypatch.setenv("BCRYPT_ROUNDS", "4")
    get_settings.cache_clear()
    yield CliRunner()
    get_settings.cache_clear()


async def invoke(runner: CliRunner, *args: str):
    """Run the command in a thread: it runs its own event loop, as it does in a shell."""
    return await asyncio.to_thread(runner.invoke, cli, list(args))


async def create_admin(runner: CliRunner, email: str, password: str):
    return await invoke(runner, "create-admin", "--email", email, "--password", password)


async def query(db, statement):
    async with db.autocommit_sessionmaker() as session:
        return (await session.execute(statement)).all()


async def test_create_admin_creates_a_staff_user(runner, db, settings):
    result = await create_admin(runner, "Boss@Example.com", "long-enough-pw")
    assert result.exit_code == 0, result.output
    assert "Created staff user boss@example.com" in result.output
    [(user,)] = await query(db, select(User))
    assert user.email == "boss@example.com"
    assert user.is_staff
    assert user.is_active
    assert await verify_password("long-enough-pw", user.hashed_password, settings)


async def test_create_admin_promotes_an_existing_user_and_sets_the_password(runner, db, settings):
    assert (await create_admin(runner, "a@example.com", "first-password")).exit_code == 0
    result = await create_admin(runner, "A@example.com", "second-password")
    assert result.exit_code == 0, result.output
    assert "Updated" in result.output
    [(user,)] = await query(db, select(User))
    assert await verify_password("second-password", user.hashed_password, settings)


async def test_create_admin_prompts_for_the_password(runner, db, monkeypatch):
    answers = iter(["prompted-password", "prompted-password"])
    monkeypatch.setattr("getpass.getpass", lambda prompt="": next(answers))
    result = await invoke(runner, "create-admin", "--email", "p@example.com")
    assert result.exit_code == 0, result.output
    assert await query(db, select(func.count()).select_from(User)) == [(1,)]


async def test_create_admin_refuses_a_short_password(runner, db):
    result = await create_admin(runner, "x@example.com", "short")
    assert result.exit_code != 0
    assert "at least 8 bytes" in result.output
    assert await query(db, select(func.count()).select_from(User)) == [(0,)]


async def test_seed_demo_adds_realistic_books_once(runner, db):
    result = await invoke(runner, "seed-demo")
    assert result.exit_code == 0, result.output
    [(count, min_fee, max_fee, covers)] = await query(
        db,
        select(
            func.count(),
            func.min(Book.daily_fee),
            func.max(Book.daily_fee),
            func.count(Book.cover.distinct()),
        ),
    )
    assert 90 <= count <= 110
    assert min_fee >= 0.5
    assert max_fee <= 3
    assert covers == 2
    assert await query(db, select(Book.title).where(Book.author == "Jane Austen"))

    again = await invoke(runner, "seed-demo")
    assert "already has books" in again.output
    assert await query(db, select(func.count()).select_from(Book)) == [(count,)]


async def test_migrate_is_idempotent(runner):
    result = await invoke(runner, "migrate")
    assert result.exit_code == 0, result.output
    assert "up to date" in result.output


def test_migrations_are_found_in_the_working_directory_of_an_installed_package(
    tmp_path, monkeypatch
):
    """The image installs the package into site-packages and puts alembic.ini and
    migrations/ in its working directory (/app): that is where they are looked for then."""
    from library_service import cli

    monkeypatch.setattr(cli, "ROOT", tmp_path / "site-packages")
    monkeypatch.chdir(tmp_path)
    assert cli.alembic_ini() == tmp_path / "alembic.ini"
    monkeypatch.setattr(cli, "ROOT", cli.Path(__file__).resolve().parents[2])
    assert cli.alembic_ini() == cli.ROOT / "alembic.ini"
    assert cli.alembic_ini().exists()
