"""docker-compose.yml and the README's "Deployment" table must describe the same deployment."""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml
from support.paths import ROOT


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def readme_deployment_table() -> dict[str, str]:
    """Service name -> host port ("" when none is published) from the README table."""
    text = (ROOT / "README.md").read_text()
    section = re.search(r"^## Deployment\n(.*?)(?=^## )", text, re.S | re.M)
    assert section, "README.md has no '## Deployment' section"
    rows: dict[str, str] = {}
    for line in section.group(1).splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) < 3 or not cells[0].startswith("`"):
            continue
        port = cells[2]
        rows[cells[0].strip("`")] = port if port.isdigit() else ""
    assert rows, "the Deployment section has no table of services"
    return rows


def host_ports(service: dict[str, Any]) -> set[str]:
    ports = set()
    for entry in service.get("ports", []):
        if isinstance(entry, dict):
            ports.add(str(entry["published"]))
        else:
            parts = str(entry).split(":")
            ports.add(parts[-2] if len(parts) > 1 else parts[0])
    return ports


def test_readme_and_compose_name_the_same_services(compose: dict[str, Any]) -> None:
    assert set(readme_deployment_table()) == set(compose["services"])


def test_readme_ports_are_published(compose: dict[str, Any]) -> None:
    for name, port in readme_deployment_table().items():
        published = host_ports(compose["services"][name])
        assert published == ({port} if port else set()), name


def test_workers_are_built_here_and_replicated(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name in ("worker", "api"):
        assert services[name]["build"]["dockerfile"] == "deploy/Dockerfile"
        assert services[name]["environment"]["KAFKA_BOOTSTRAP"] == "kafka:9092"
        assert "clearing.worker" in services[name]["command"]
    assert services["worker"]["deploy"]["replicas"] == 2
    assert (ROOT / "deploy" / "Dockerfile").is_file()


def test_single_node_kafka_settings(compose: dict[str, Any]) -> None:
    env = compose["services"]["kafka"]["environment"]
    assert compose["services"]["kafka"]["image"].startswith("apache/kafka:4.")
    assert str(env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"]) == "false"
    assert str(env["KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR"]) == "1"
    assert str(env["KAFKA_TRANSACTION_STATE_LOG_MIN_ISR"]) == "1"


def test_mounted_files_exist(compose: dict[str, Any]) -> None:
    for service in compose["services"].values():
        for volume in service.get("volumes", []):
            source = str(volume).split(":")[0]
            if source.startswith("./"):
                assert (ROOT / source).exists(), source


def test_published_ports_are_bound_to_loopback_by_default(compose: dict[str, Any]) -> None:
    published = 0
    for name, service in compose["services"].items():
        for entry in service.get("ports", []):
            address = str(entry).rsplit(":", 2)[0]
            assert address == "${CLEARING_PUBLISH_ADDR:-127.0.0.1}", (name, entry)
            published += 1
    assert published == 4


def test_kafka_takes_scram_logins_only(compose: dict[str, Any]) -> None:
    kafka = compose["services"]["kafka"]
    env = kafka["environment"]
    entrypoint = (ROOT / "deploy" / "compose" / "kafka-entrypoint.sh").read_text()
    assert "/opt/clearing/kafka-entrypoint.sh" in kafka["entrypoint"]
    for text in (entrypoint, str(env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"])):
        assert "INTERNAL:SASL_PLAINTEXT,EXTERNAL:SASL_PLAINTEXT" in text
    assert "CONTROLLER://localhost:9093" in entrypoint  # never reachable from outside
    assert "PLAINTEXT://" not in entrypoint.replace("SASL_PLAINTEXT", "")
    assert "allow.everyone.if.no.acl.found=false" in entrypoint
    assert "StandardAuthorizer" in entrypoint
    assert "sasl.enabled.mechanisms=SCRAM-SHA-512" in entrypoint
    for name in ("worker", "api"):
        service = compose["services"][name]
        assert service["environment"]["KAFKA_USERNAME"] == "workers"
        assert service["environment"]["KAFKA_PASSWORD_FILE"].startswith("/run/secrets/")


SECRET_WORDS = re.compile(r"password|secret|scram|_url", re.I)


def test_no_password_or_secret_in_the_file(compose: dict[str, Any]) -> None:
    """Every value of a variable that names a password, secret or URL is a /run/secrets path
    or names one; no URL carries a userinfo part; every secret comes from a file."""
    for name, service in compose["services"].items():
        env = service.get("environment", {})
        for key, value in env.items():
            value = str(value)
            assert not re.search(r"://[^/@\s]*:[^/@\s]*@", value), (name, key)
            if SECRET_WORDS.search(key) and key.endswith(("PASSWORD", "SECRET", "URL")):
                raise AssertionError(f"{name}: {key} holds a secret itself; use {key}_FILE")
            if key.endswith(("_FILE", "__FILE")) and SECRET_WORDS.search(key):
                assert value.startswith("/run/secrets/"), (name, key)
        for secret in service.get("secrets", []):
            assert secret in compose["secrets"], (name, secret)
    for secret in compose["secrets"].values():
        assert set(secret) == {"file"} and secret["file"].startswith("${CLEARING_SECRETS_DIR")
    raw = (ROOT / "docker-compose.yml").read_text()
    for literal in ("POSTGRES_PASSWORD:", "GF_SECURITY_ADMIN_PASSWORD:", "clearing:clearing@"):
        assert literal not in raw


METRICS_TOKEN = "/run/secrets/metrics_token"


def test_prometheus_scrapes_with_a_viewer_token_from_a_secret(compose: dict[str, Any]) -> None:
    """/metrics needs an operator's or a viewer's token: every scrape job sends the secret's, and
    a one-shot service registers that same file's token as a viewer's before Prometheus starts."""
    config = yaml.safe_load((ROOT / "deploy" / "prometheus.yml").read_text())
    for job in config["scrape_configs"]:
        assert job["authorization"] == {"type": "Bearer", "credentials_file": METRICS_TOKEN}
    services = compose["services"]
    prometheus, setup = services["prometheus"], services["credentials-setup"]
    assert "metrics_token" in prometheus["secrets"] and "metrics_token" in setup["secrets"]
    assert compose["secrets"]["metrics_token"]["file"].endswith("/metrics.token")
    assert prometheus["depends_on"]["credentials-setup"] == {
        "condition": "service_completed_successfully"
    }
    command = setup["command"]
    assert command[:3] == ["clearing", "credentials", "add"]
    assert command[command.index("--kind") + 1] == "viewer"
    assert command[command.index("--token-file") + 1] == METRICS_TOKEN
    assert "--replace" in command  # a restart registers the (same or rotated) file again


def test_the_secrets_script_makes_a_token_the_setup_service_registers(
    compose: dict[str, Any], tmp_path
) -> None:
    import os
    import stat
    import subprocess

    from clearing import auth
    from clearing.cli import main
    from clearing.store.db import make_engine

    secrets_dir = tmp_path / "secrets"
    script = ROOT / "deploy" / "compose" / "secrets.sh"
    subprocess.run(["bash", str(script), str(secrets_dir)], check=True, capture_output=True)
    token = (secrets_dir / "metrics.token").read_text().strip()
    subprocess.run(["bash", str(script), str(secrets_dir)], check=True, capture_output=True)
    assert (secrets_dir / "metrics.token").read_text().strip() == token  # kept, not remade
    assert auth.GIVEN_TOKEN.fullmatch(token)
    assert stat.S_IMODE(secrets_dir.stat().st_mode) == 0o700
    db = f"sqlite:///{tmp_path / 'ledger.sqlite'}"
    command = compose["services"]["credentials-setup"]["command"]
    argv = [str(secrets_dir / "metrics.token") if a == METRICS_TOKEN else a for a in command]
    umask = os.umask(0o022)
    os.umask(umask)
    try:
        assert main([*argv[1:], "--db", db]) == 0
    finally:
        os.umask(umask)  # the command makes its files private
    engine = make_engine(db)
    try:
        assert auth.authenticate(engine, token) == auth.Principal("viewer", "prometheus")
    finally:
        engine.dispose()
