"""The files an operator starts from: docker-compose.sandbox.yml runs the stack with the
sandbox Stripe, .env.sample lists every variable, the README documents settings and codes."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from library_service.core.config import Settings
from library_service.dev import fake_stripe

ROOT = Path(__file__).resolve().parents[2]
APP_SERVICES = ("migrate", "api", "worker")


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / name).read_text())
    return data


def merged_environment(service: str) -> dict[str, str]:
    """A service's environment as `docker compose -f base -f sandbox` merges it."""
    base = load("docker-compose.yml")["services"][service].get("environment", {})
    override = load("docker-compose.sandbox.yml")["services"][service].get("environment", {})
    return {**base, **override}


def interpolate(value: str) -> str:
    """Compose's `${NAME:-default}` with nothing set: the default."""
    return re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", value)


def sandbox_command() -> list[str]:
    command = load("docker-compose.sandbox.yml")["services"]["stripe-sandbox"]["command"]
    return [interpolate(part) for part in command]


# -- docker-compose.sandbox.yml ----------------------------------------------------------------


@pytest.mark.parametrize("service", APP_SERVICES)
def test_the_sandbox_override_runs_the_app_in_development_against_the_sandbox(service):
    environment = merged_environment(service)
    assert environment["ENVIRONMENT"] == "development"
    assert environment["STRIPE_SECRET_KEY"].startswith("sk_test_")
    assert environment["STRIPE_API_BASE"] == "http://stripe-sandbox:8010"
    sandbox = load("docker-compose.sandbox.yml")["services"]["stripe-sandbox"]
    assert environment["STRIPE_WEBHOOK_SECRET"] == sandbox["environment"]["STRIPE_WEBHOOK_SECRET"]
    # The database and Redis stay the base file's services.
    assert environment["DATABASE_URL"].startswith("postgresql://library:")
    assert environment["REDIS_URL"] == "redis://redis:6379/0"
    Settings(_env_file=None, **environment)  # type: ignore[arg-type]  # accepted as it is


def test_without_the_override_the_stack_is_production():
    for service in APP_SERVICES:
        environment = load("docker-compose.yml")["services"][service]["environment"]
        assert environment["ENVIRONMENT"] == "production"


def test_the_sandbox_service_serves_what_the_app_expects(monkeypatch, tmp_path):
    served: dict[str, Any] = {}
    monkeypatch.setattr("uvicorn.run", lambda app, **options: served.update(options, app=app))
    monkeypatch.setenv("STRIPE_WEBHOOK_SECRET", "whsec_sandbox_compose")
    command = sandbox_command()
    assert command[:3] == ["python", "-m", "library_service.dev.fake_stripe"]
    arguments = [part.replace("/var/lib/stripe-sandbox", str(tmp_path)) for part in command[3:]]

    fake_stripe.main(arguments)

    assert served["host"] == "0.0.0.0"  # noqa: S104 - in its container
    assert served["port"] == 8010  # the port of STRIPE_API_BASE
    routes = {route.path for route in served["app"].routes}
    assert "/v1/checkout/sessions" in routes
    assert "/c/pay/{session_id}" in routes
    assert (tmp_path / "sessions.jsonl").exists()
    options = dict(part.removeprefix("--").split("=", 1) for part in command[3:])
    assert options["webhook-url"] == "http://api:8000/api/payments/webhook/"
    assert options["public-url"] == "http://127.0.0.1:8010"


def test_the_sandbox_keeps_its_sessions_on_a_volume_and_publishes_its_port():
    compose = load("docker-compose.sandbox.yml")
    sandbox = compose["services"]["stripe-sandbox"]
    options = dict(part.removeprefix("--").split("=", 1) for part in sandbox_command()[3:])
    volume, mount = sandbox["volumes"][0].split(":")
    assert volume in compose["volumes"]
    assert Path(options["sessions-file"]).parent == Path(mount)
    assert [interpolate(port) for port in sandbox["ports"]] == ["8010:8010"]


# -- .env.sample and the README ------------------------------------------------------------------


def sample_variables() -> set[str]:
    text = (ROOT / ".env.sample").read_text()
    return set(re.findall(r"^([A-Z][A-Z0-9_]*)=", text, flags=re.MULTILINE))


def test_env_sample_lists_every_setting_and_what_compose_and_uvicorn_read():
    compose_variables = set()
    for name in ("docker-compose.yml", "docker-compose.sandbox.yml"):
        compose_variables |= set(re.findall(r"\$\{(\w+)", (ROOT / name).read_text()))
    expected = set(Settings.model_fields) | compose_variables | {"FORWARDED_ALLOW_IPS"}
    assert expected - sample_variables() == set()
    assert {"POSTGRES_PASSWORD", "SANDBOX_STRIPE_PORT"} <= compose_variables


def test_readme_documents_every_setting():
    readme = (ROOT / "README.md").read_text()
    missing = [name for name in Settings.model_fields if f"`{name}`" not in readme]
    assert missing == []


@pytest.mark.parametrize("code", ["not_authenticated", "unknown_session"])
def test_readme_error_table_has_the_code(code):
    readme = (ROOT / "README.md").read_text()
    table = readme[readme.index("| code | when |") :]
    table = table[: table.index("\n\n")]
    assert f"`{code}`" in table
