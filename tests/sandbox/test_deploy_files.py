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


def test_the_config_map_and_secret_make_production_settings():
    found = resources()
    environment = found[("ConfigMap", "library-service")]["data"] | {
        key: value
        for key, value in found[("Secret", "library-service")]["stringData"].items()
        if key != "MIGRATION_DATABASE_URL"
    }
    settings = Settings(_env_file=None, **environment)  # type: ignore[arg-type]
    assert settings.is_production
    assert settings.DATABASE_POOLER == "pgbouncer"


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
