"""docker-compose.yml and .env.example: every role, health checks, pinned images, no secrets
inline, ports and names consistent with readmit_core.settings and readmit_core.events."""

from __future__ import annotations

import re
import shutil
import subprocess
from typing import Any

import infra_references as refs
import pytest

from readmit_core.events import ALL_TOPICS, FEATURES_TOPIC
from readmit_core.settings import Settings

SETTINGS_ENV = {f"READMIT_{name.upper()}" for name in Settings.model_fields}
DEFAULTS = Settings()


@pytest.fixture(scope="module")
def services() -> dict[str, dict[str, Any]]:
    return refs.compose_services()


def env_of(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {str(k): str(v) for k, v in env.items()}


def env_example() -> dict[str, str]:
    out = {}
    for line in refs.ENV_EXAMPLE.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            out[key.strip()] = value.strip()
    return out


def readmit_services(services: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {n: s for n, s in services.items() if refs.service_role(s) is not None}


def test_every_role_runs_in_compose(services: dict[str, dict[str, Any]]) -> None:
    roles = {refs.service_role(s) for s in services.values()}
    missing = set(refs.ROLES) - roles
    assert not missing, f"roles without a compose service: {missing}"


def test_compose_commands_are_roles_the_entrypoint_knows(
    services: dict[str, dict[str, Any]],
) -> None:
    known = refs.entrypoint_roles()
    assert set(refs.ROLES) <= known, f"entrypoint lacks roles {set(refs.ROLES) - known}"
    for name, service in readmit_services(services).items():
        assert refs.service_role(service) in known, f"{name}: unknown role"


def test_two_scorers_and_the_infrastructure(services: dict[str, dict[str, Any]]) -> None:
    scorers = [n for n, s in services.items() if refs.service_role(s) == "scorer"]
    assert len(scorers) >= 2, "the issue asks for 2 scorer replicas"
    images = {str(s.get("image", "")).split(":")[0] for s in services.values()}
    for needed in ("apache/kafka", "postgres", "redis", "prom/prometheus", "grafana/grafana"):
        assert needed in images, f"no {needed} service"


def test_kafka_runs_in_kraft_mode_without_zookeeper(services: dict[str, dict[str, Any]]) -> None:
    kafka = services["kafka"]
    env = env_of(kafka)
    assert "controller" in env["KAFKA_PROCESS_ROLES"]
    assert "KAFKA_CONTROLLER_QUORUM_VOTERS" in env
    assert not any("zookeeper" in str(s.get("image", "")) for s in services.values())
    assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false", "topics come from topic-init"


def test_long_running_services_have_health_checks(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        if service.get("restart") == "no":
            continue
        check = service.get("healthcheck") or {}
        assert check.get("test"), f"{name} has no health check"
        assert not check.get("disable"), f"{name} disables its health check"


def test_dependencies_wait_for_health_or_completion(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        deps = service.get("depends_on") or {}
        assert isinstance(deps, dict), f"{name}: depends_on needs conditions, not a list"
        for dep, spec in deps.items():
            condition = spec.get("condition")
            target = services[dep]
            if condition == "service_healthy":
                assert target.get("healthcheck", {}).get("test"), f"{dep} cannot become healthy"
            elif condition == "service_completed_successfully":
                assert target.get("restart") == "no", f"{dep} is not a one-shot job"
            else:
                pytest.fail(f"{name} -> {dep}: condition {condition!r}")


def test_scorers_wait_for_topics_and_a_model(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        if refs.service_role(service) != "scorer":
            continue
        deps = service["depends_on"]
        assert deps["topic-init"]["condition"] == "service_completed_successfully", name
        assert deps["model-init"]["condition"] == "service_completed_successfully", name


def test_images_are_pinned(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        image = str(service.get("image", ""))
        assert refs.image_is_pinned(image), f"{name}: image {image!r} is not pinned"


def test_no_secrets_inline(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        for key, value in env_of(service).items():
            assert not refs.SECRET_NAME.search(key), f"{name}: secret {key} set inline"
            assert not refs.SECRET_IN_URL.search(value), f"{name}: credentials in {key}"
    text = refs.COMPOSE.read_text()
    assert not refs.SECRET_IN_URL.search(text), "credentials in a URL in docker-compose.yml"


def test_secrets_come_from_env_files(services: dict[str, dict[str, Any]]) -> None:
    for name, service in readmit_services(services).items():
        files = [f["path"] if isinstance(f, dict) else f for f in service.get("env_file", [])]
        assert ".env.example" in files, f"{name} does not read .env.example"
        assert ".env" in files, f"{name} cannot be given real secrets through .env"
    example = env_example()
    for key in ("READMIT_INGEST_TOKENS", "READMIT_API_TOKEN", "READMIT_DJANGO_SECRET_KEY"):
        assert "change-me" in example[key], f".env.example {key} must be a placeholder"
    for key, value in example.items():
        if refs.SECRET_NAME.search(key):
            assert "change-me" in value, f".env.example {key} looks like a real secret"


def test_real_env_files_are_never_committed_or_built_in() -> None:
    gitignore = (refs.ROOT / ".gitignore").read_text().splitlines()
    assert ".env" in gitignore
    dockerignore = (refs.ROOT / ".dockerignore").read_text().splitlines()
    assert ".env" in dockerignore
    assert ".env.*" in dockerignore


def test_readmit_env_names_are_settings_fields(services: dict[str, dict[str, Any]]) -> None:
    used = set(env_example())
    for service in services.values():
        used |= set(env_of(service))
    unknown = {k for k in used if k.startswith("READMIT_")} - SETTINGS_ENV
    assert not unknown, f"not fields of readmit_core.settings.Settings: {sorted(unknown)}"


def test_published_ports_match_settings_defaults(services: dict[str, dict[str, Any]]) -> None:
    expected = {"ingest": DEFAULTS.ingest_port, "web": DEFAULTS.web_port}
    for name, service in readmit_services(services).items():
        role = refs.service_role(service)
        for key in ("READMIT_INGEST_PORT", "READMIT_WEB_PORT", "READMIT_SCORER_METRICS_PORT"):
            assert key not in env_of(service), f"{name} moves {key}: keep the defaults"
        if role in expected:
            container_ports = {int(str(p).rsplit(":", 1)[-1]) for p in service["ports"]}
            assert container_ports == {expected[role]}, f"{name} ports {service['ports']}"
        if role == "scorer":
            assert [int(p) for p in service["expose"]] == [DEFAULTS.scorer_metrics_port]


def test_ops_page_scrapes_every_scorer(services: dict[str, dict[str, Any]]) -> None:
    scorers = {n for n, s in services.items() if refs.service_role(s) == "scorer"}
    urls = env_of(services["web"])["READMIT_SCORER_METRICS_URLS"].split(",")
    hosts = {re.sub(r"^http://([^:/]+):(\d+)/metrics$", r"\1", u) for u in urls}
    ports = {int(re.sub(r"^http://[^:/]+:(\d+)/metrics$", r"\1", u)) for u in urls}
    assert hosts == scorers
    assert ports == {DEFAULTS.scorer_metrics_port}


def test_topic_init_creates_the_application_topics(services: dict[str, dict[str, Any]]) -> None:
    assert set(refs.topics_script_defaults()) == set(ALL_TOPICS)
    init = services["topic-init"]
    assert str(init["image"]).startswith("apache/kafka:")
    init_env = env_of(init)
    app_env = env_of(services["ingest"])
    assert init_env["READMIT_TOPIC_PREFIX"] == app_env["READMIT_TOPIC_PREFIX"]
    features_var = refs.topics_script_variables()[FEATURES_TOPIC]
    assert app_env["READMIT_TOPIC_PARTITIONS"] == init_env[features_var]


def test_named_volumes_are_declared(services: dict[str, dict[str, Any]]) -> None:
    declared = set(refs.compose().get("volumes") or {})
    for name, service in services.items():
        for volume in service.get("volumes") or []:
            source = str(volume).split(":", 1)[0]
            if not source.startswith((".", "/")):
                assert source in declared, f"{name}: volume {source} not declared"
    assert {"kafka-data", "postgres-data", "redis-data", "models"} <= declared


def test_scorers_and_web_mount_the_models_read_only(services: dict[str, dict[str, Any]]) -> None:
    for name, service in readmit_services(services).items():
        mounts = [str(v) for v in service.get("volumes") or [] if str(v).startswith("models:")]
        if refs.service_role(service) in ("scorer", "web"):
            assert mounts == ["models:/models:ro"], name
        if refs.service_role(service) == "train":
            assert mounts == ["models:/models"], "train writes the registry"


def test_mounted_config_files_exist(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        for volume in service.get("volumes") or []:
            source = str(volume).split(":", 1)[0]
            if source.startswith("./"):
                assert (refs.ROOT / source).exists(), f"{name}: {source} missing"


def _compose_plugin() -> bool:
    if not shutil.which("docker"):
        return False
    probe = subprocess.run(["docker", "compose", "version"], capture_output=True, timeout=30)
    return probe.returncode == 0


@pytest.mark.skipif(not _compose_plugin(), reason="docker compose plugin not installed")
def test_docker_compose_config_accepts_the_file() -> None:
    result = subprocess.run(
        ["docker", "compose", "-f", str(refs.COMPOSE), "config", "--quiet"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=refs.ROOT,
    )
    assert result.returncode == 0, result.stderr


def _secrets_of(service: dict[str, Any]) -> set[str]:
    return {s if isinstance(s, str) else s["source"] for s in service.get("secrets") or []}


def test_the_model_signing_key_reaches_model_init_alone(
    services: dict[str, dict[str, Any]],
) -> None:
    """Whoever holds the private key can sign a pickle every scorer runs: only the trainer."""
    holders = {n for n, s in services.items() if "readmit_model_signing_key" in _secrets_of(s)}
    assert holders == {"model-init"}
    assert refs.service_role(services["model-init"]) == "train"
    for name, service in services.items():
        assert "READMIT_MODEL_SIGNING_KEY" not in env_of(service), name
    assert "READMIT_MODEL_SIGNING_KEY" not in env_example(), "every service reads .env.example"
    assert "change-me" in env_example()["READMIT_MODEL_VERIFY_KEY"]  # the public half: all
    declared = refs.compose()["secrets"]
    assert declared["readmit_model_signing_key"]["file"].startswith("./secrets/")


def test_the_metrics_token_is_one_file_for_ingest_and_prometheus(
    services: dict[str, dict[str, Any]],
) -> None:
    holders = {n for n, s in services.items() if "readmit_metrics_token" in _secrets_of(s)}
    assert holders == {"ingest", "prometheus"}
    assert "READMIT_METRICS_TOKEN" not in env_example()
    (job,) = [j for j in refs.load_yaml(refs.PROMETHEUS)["scrape_configs"] if "ingest" in str(j)]
    assert job["authorization"] == {
        "type": "Bearer",
        "credentials_file": "/run/secrets/readmit_metrics_token",
    }
    assert refs.compose()["secrets"]["readmit_metrics_token"]["file"].startswith("./secrets/")


def test_the_entrypoint_exports_mounted_secrets_and_trusts_no_forwarded_for() -> None:
    text = refs.ENTRYPOINT.read_text()
    assert "/run/secrets/readmit_*" in text
    assert "tr '[:lower:]' '[:upper:]'" in text
    # daphne --proxy-headers takes the client-written, leftmost X-Forwarded-For entry
    assert "--proxy-headers" not in text.replace("No --proxy-headers", "")


def test_secret_files_are_never_committed_or_built_in() -> None:
    assert "secrets/" in (refs.ROOT / ".gitignore").read_text().splitlines()
    assert "secrets/" in (refs.ROOT / ".dockerignore").read_text().splitlines()


def test_login_lockout_settings_are_configured_for_the_web() -> None:
    example = env_example()
    for key in ("LOGIN_FAILURE_LIMIT", "LOGIN_LOCKOUT_MINUTES", "LOGIN_PROXY_HOPS"):
        assert f"READMIT_{key}" in example, key
    assert Settings(**{"login_failure_limit": example["READMIT_LOGIN_FAILURE_LIMIT"]})
    assert example["READMIT_LOGIN_PROXY_HOPS"] == "0"  # browsers reach the web port directly
