"""The files for running several processes: the compose file scales behind its proxy, and
the Kubernetes set validates offline (kubernetes-validate) and says what the README says."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from library_service.core.config import Settings

ROOT = Path(__file__).resolve().parents[2]
KUBERNETES = ROOT / "deploy" / "kubernetes"
MANIFESTS = sorted(KUBERNETES.glob("*.yaml"))
VALIDATE = str(Path(sys.executable).with_name("kubernetes-validate"))


def resources() -> dict[tuple[str, str], dict[str, Any]]:
    found = {}
    for path in MANIFESTS:
        for document in yaml.safe_load_all(path.read_text()):
            found[(document["kind"], document["metadata"]["name"])] = document
    return found


def test_every_manifest_is_valid_kubernetes():
    result = subprocess.run(  # noqa: S603 - offline, the schemas ship with the package
        [VALIDATE, "--strict", "--quiet", *map(str, MANIFESTS)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def container(kind: str, name: str) -> dict[str, Any]:
    spec = resources()[(kind, name)]["spec"]["template"]["spec"]
    [only] = spec["containers"]
    return dict(only)


def test_the_api_is_ready_on_ready_alive_on_health_and_drains_within_its_grace():
    api = container("Deployment", "library-api")
    assert api["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert api["livenessProbe"]["httpGet"]["path"] == "/health"
    assert api["resources"]["requests"]
    grace = resources()[("Deployment", "library-api")]["spec"]["template"]["spec"][
        "terminationGracePeriodSeconds"
    ]
    config = resources()[("ConfigMap", "library-service")]["data"]
    assert grace > float(config["SHUTDOWN_DRAIN_SECONDS"]) + 20  # drain + in-flight requests


def test_the_worker_is_alive_while_it_beats_and_every_deployment_has_a_budget():
    worker = container("Deployment", "library-worker")
    assert worker["livenessProbe"]["exec"]["command"] == ["library-service", "worker", "--check"]
    assert worker["resources"]["requests"]
    budgets = {name for kind, name in resources() if kind == "PodDisruptionBudget"}
    assert budgets == {"library-api", "library-worker"}
    job = container("Job", "library-service-migrate")
    assert job["command"] == ["library-service", "migrate"]


def environment_of(container: dict[str, Any], found: dict[Any, Any]) -> dict[str, str]:
    """A container's variables as Kubernetes sets them: `envFrom` in order, then `env`."""
    data = {
        "configMapRef": lambda name: found[("ConfigMap", name)]["data"],
        "secretRef": lambda name: found[("Secret", name)]["stringData"],
    }
    environment: dict[str, str] = {}
    for source in container.get("envFrom", []):
        [(kind, ref)] = source.items()
        environment |= data[kind](ref["name"])
    for variable in container.get("env", []):
        if "value" in variable:
            environment[variable["name"]] = variable["value"]
        else:
            key = variable["valueFrom"]["secretKeyRef"]
            environment[variable["name"]] = data["secretRef"](key["name"])[key["key"]]
    return environment


def settings_of(kind: str, name: str) -> Settings:
    found = resources()
    [container] = found[(kind, name)]["spec"]["template"]["spec"]["containers"]
    environment = environment_of(container, found)
    environment.pop("MIGRATION_DATABASE_URL", None)  # the Secret's, for the Job's env only
    return Settings(_env_file=None, **environment)  # type: ignore[arg-type]


def test_every_process_starts_with_production_settings():
    """What each container is given makes settings the production checks accept (a missing
    variable stops the process at start)."""
    for kind, name in [
        ("Deployment", "library-api"),
        ("Deployment", "library-worker"),
        ("Job", "library-service-migrate"),
    ]:
        assert settings_of(kind, name).is_production, name
    assert settings_of("Deployment", "library-api").DATABASE_POOLER == "pgbouncer"
    migrate = settings_of("Job", "library-service-migrate")
    secret = resources()[("Secret", "library-service")]["stringData"]
    assert secret["MIGRATION_DATABASE_URL"] == migrate.DATABASE_URL  # PostgreSQL itself
    assert migrate.DATABASE_POOLER == "none"


@pytest.fixture
def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return data["services"]


def test_compose_scales_the_api_behind_its_proxy(compose):
    assert "ports" not in compose["api"]  # N containers cannot publish one port
    assert compose["proxy"]["ports"] == ["8000:8000"]
    haproxy = (ROOT / "deploy" / "compose" / "haproxy.cfg").read_text()
    assert "option httpchk GET /ready" in haproxy
    assert "server-template api" in haproxy
    assert "ports" not in compose["worker"]
