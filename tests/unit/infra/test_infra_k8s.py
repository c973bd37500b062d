"""Kubernetes manifests (infra/kustomization.yaml): every role, probes, resources,
PodDisruptionBudgets, the KEDA ScaledObject, ConfigMap/Secret references, pinned images."""

from __future__ import annotations

import shutil
import subprocess
from typing import Any

import infra_references as refs
import pytest

from readmit_core.events import FEATURES_TOPIC
from readmit_core.settings import Settings

SETTINGS_ENV = {f"READMIT_{name.upper()}" for name in Settings.model_fields}
DEFAULTS = Settings()
APP_IMAGE = "readmit"


def app_containers(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        c for c in refs.pod_spec(doc)["containers"] if str(c["image"]).split(":")[0] == APP_IMAGE
    ]


def workloads() -> list[dict[str, Any]]:
    return [d for d in refs.k8s_documents() if d["kind"] in ("Deployment", "Job")]


def role_of(doc: dict[str, Any]) -> str | None:
    containers = app_containers(doc)
    return str(containers[0]["args"][0]) if containers else None


def by_role(kind: str) -> dict[str, dict[str, Any]]:
    return {role_of(d) or "": d for d in refs.k8s_kind(kind) if role_of(d)}


def test_every_role_has_a_workload() -> None:
    deployments = by_role("Deployment")
    jobs = by_role("Job")
    for role in refs.LONG_RUNNING_ROLES:
        assert role in deployments, f"no Deployment runs {role}"
    for role in set(refs.ROLES) - set(refs.LONG_RUNNING_ROLES):
        assert role in jobs, f"no Job runs {role}"
    known = refs.entrypoint_roles()
    for doc in workloads():
        role = role_of(doc)
        assert role is None or role in known, f"{doc['metadata']['name']}: role {role}"


def test_deployments_have_probes() -> None:
    for name, doc in by_role("Deployment").items():
        for container in refs.pod_spec(doc)["containers"]:
            assert container.get("livenessProbe"), f"{name}: no liveness probe"
            assert container.get("readinessProbe"), f"{name}: no readiness probe"


def test_probes_and_ports_match_settings_defaults() -> None:
    expected = {
        "ingest": DEFAULTS.ingest_port,
        "scorer": DEFAULTS.scorer_metrics_port,
        "web": DEFAULTS.web_port,
    }
    for role, port in expected.items():
        container = app_containers(by_role("Deployment")[role])[0]
        assert [p["containerPort"] for p in container["ports"]] == [port], role
    ingest = app_containers(by_role("Deployment")["ingest"])[0]
    assert ingest["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert ingest["readinessProbe"]["httpGet"]["path"] == "/readyz"
    config = refs.k8s_configmap()
    assert int(config["READMIT_INGEST_PORT"]) == DEFAULTS.ingest_port
    assert int(config["READMIT_WEB_PORT"]) == DEFAULTS.web_port
    assert int(config["READMIT_SCORER_METRICS_PORT"]) == DEFAULTS.scorer_metrics_port


def test_every_container_has_requests_and_limits() -> None:
    for doc in workloads():
        for container in refs.pod_spec(doc)["containers"]:
            resources = container.get("resources") or {}
            for section in ("requests", "limits"):
                for key in ("cpu", "memory"):
                    assert resources.get(section, {}).get(key), (
                        f"{doc['metadata']['name']}: no {section}.{key}"
                    )


def test_pods_run_unprivileged() -> None:
    for doc in workloads():
        spec = refs.pod_spec(doc)
        assert spec["securityContext"]["runAsNonRoot"] is True, doc["metadata"]["name"]
        for container in spec["containers"]:
            ctx = container["securityContext"]
            assert ctx["allowPrivilegeEscalation"] is False
            assert ctx["capabilities"]["drop"] == ["ALL"]
        for container in app_containers(doc):
            assert container["securityContext"]["readOnlyRootFilesystem"] is True


def test_every_deployment_has_a_pod_disruption_budget() -> None:
    budgets = [
        pdb["spec"]["selector"]["matchLabels"] for pdb in refs.k8s_kind("PodDisruptionBudget")
    ]
    for doc in refs.k8s_kind("Deployment"):
        labels = doc["spec"]["template"]["metadata"]["labels"]
        matching = [b for b in budgets if all(labels.get(k) == v for k, v in b.items())]
        assert len(matching) == 1, f"{doc['metadata']['name']}: {len(matching)} PDBs"


def test_images_are_pinned() -> None:
    for doc in workloads():
        for container in refs.pod_spec(doc)["containers"]:
            assert refs.image_is_pinned(str(container["image"])), container["image"]
    for image in refs.kustomization()["images"]:
        tag = str(image["newTag"])
        assert tag != "latest"
        assert any(ch.isdigit() for ch in tag)


def test_config_and_secrets_come_from_configmap_and_secret() -> None:
    assert not refs.k8s_kind("Secret"), "no Secret manifests in git; create it from .env"
    for doc in workloads():
        for container in app_containers(doc):
            sources = container.get("envFrom") or []
            assert {"configMapRef": {"name": "readmit-config"}} in sources
            assert {"secretRef": {"name": "readmit-secrets"}} in sources
            for env in container.get("env") or []:
                assert "value" not in env or not refs.SECRET_NAME.search(env["name"])


def test_configmap_holds_only_non_secret_settings() -> None:
    config = refs.k8s_configmap()
    assert set(config) <= SETTINGS_ENV, set(config) - SETTINGS_ENV
    for key, value in config.items():
        assert not refs.SECRET_NAME.search(key), f"{key} belongs in the Secret"
        assert not refs.SECRET_IN_URL.search(value), f"credentials in {key}"


def test_env_names_used_in_manifests_are_settings_fields() -> None:
    for doc in workloads():
        for container in refs.pod_spec(doc)["containers"]:
            for env in container.get("env") or []:
                if env["name"].startswith("READMIT_"):
                    assert env["name"] in SETTINGS_ENV, env["name"]
                ref = (env.get("valueFrom") or {}).get("configMapKeyRef")
                if ref:
                    assert ref["key"] in refs.k8s_configmap(), ref["key"]


def test_keda_scales_scorers_on_the_scorer_groups_lag() -> None:
    objects = refs.k8s_kind("ScaledObject")
    assert len(objects) == 1
    scaled = objects[0]["spec"]
    scorer = by_role("Deployment")["scorer"]
    assert scaled["scaleTargetRef"]["name"] == scorer["metadata"]["name"]
    (trigger,) = scaled["triggers"]
    assert trigger["type"] == "kafka"
    meta = trigger["metadata"]
    config = refs.k8s_configmap()
    assert meta["consumerGroup"] == config["READMIT_SCORER_GROUP"] == DEFAULTS.scorer_group
    prefixed = Settings(topic_prefix=config["READMIT_TOPIC_PREFIX"]).topic(FEATURES_TOPIC)
    assert meta["topic"] == prefixed
    assert meta["bootstrapServers"] == config["READMIT_KAFKA_BOOTSTRAP"]
    assert int(meta["lagThreshold"]) > 0
    assert scaled["minReplicaCount"] >= 2, "keep two scorers for availability"


def test_keda_max_replicas_equal_the_features_partitions() -> None:
    (job,) = [d for d in refs.k8s_kind("Job") if d["metadata"]["name"] == "readmit-topics"]
    env = {e["name"]: e.get("value") for e in refs.pod_spec(job)["containers"][0]["env"]}
    features_var = refs.topics_script_variables()[FEATURES_TOPIC]
    partitions = int(env[features_var])
    (scaled,) = refs.k8s_kind("ScaledObject")
    assert scaled["spec"]["maxReplicaCount"] == partitions
    assert int(refs.k8s_configmap()["READMIT_TOPIC_PARTITIONS"]) == partitions


def test_models_are_read_only_except_for_training() -> None:
    for doc in workloads():
        role = role_of(doc)
        for container in app_containers(doc):
            mounts = [m for m in container.get("volumeMounts") or [] if m["mountPath"] == "/models"]
            if role in ("scorer", "web"):
                assert mounts, role
                assert mounts[0].get("readOnly") is True, role
            if role == "train":
                assert mounts, role
                assert not mounts[0].get("readOnly"), "train writes the registry"


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl not installed")
def test_kustomize_renders_the_deployment() -> None:
    result = subprocess.run(
        ["kubectl", "kustomize", str(refs.INFRA)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    import yaml

    rendered = [d for d in yaml.safe_load_all(result.stdout) if d]
    kinds = {d["kind"] for d in rendered}
    assert {"Deployment", "Job", "PodDisruptionBudget", "ScaledObject", "ConfigMap"} <= kinds
    for doc in rendered:
        assert doc["metadata"].get("namespace", "readmit") == "readmit"


def test_topics_job_sets_the_scripts_partition_variables() -> None:
    (job,) = [d for d in refs.k8s_kind("Job") if d["metadata"]["name"] == "readmit-topics"]
    (container,) = refs.pod_spec(job)["containers"]
    assert refs.image_is_pinned(container["image"])
    assert str(container["image"]).startswith("apache/kafka:")
    names = {e["name"] for e in container["env"]}
    assert set(refs.topics_script_variables().values()) <= names
    generators = {g["name"]: g for g in refs.kustomization()["configMapGenerator"]}
    (source,) = generators["readmit-topics-script"]["files"]
    assert (refs.INFRA / source.split("=", 1)[1]).resolve() == refs.TOPICS_SCRIPT.resolve()


def test_ops_job_template_promotes_with_the_registry_writable() -> None:
    (job,) = refs.load_yaml_all(refs.INFRA / "k8s" / "ops" / "promote-job.yaml")
    assert job["kind"] == "Job"
    (container,) = refs.pod_spec(job)["containers"]
    assert refs.image_is_pinned(container["image"])
    assert container["args"][:3] == ["readmit", "models", "promote"]
    assert container["args"][0] in refs.entrypoint_roles()
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    assert not mounts["/models"].get("readOnly")
    assert {"secretRef": {"name": "readmit-secrets"}} in container["envFrom"]
    assert container["resources"]["limits"]["memory"]


def test_operations_doc_states_the_shipped_partition_counts() -> None:
    compose_env = refs.compose_services()["topic-init"]["environment"]
    (job,) = [d for d in refs.k8s_kind("Job") if d["metadata"]["name"] == "readmit-topics"]
    k8s_env = {e["name"]: e.get("value") for e in refs.pod_spec(job)["containers"][0]["env"]}
    doc = refs.OPERATIONS.read_text()
    prefix = refs.k8s_configmap()["READMIT_TOPIC_PREFIX"]
    for topic, variable in refs.topics_script_variables().items():
        row = f"| `{prefix}{topic}` | {compose_env[variable]} | {k8s_env[variable]} |"
        assert row in doc, f"OPERATIONS.md lacks the row {row}"


def _secret_refs(doc: dict[str, Any]) -> set[str]:
    return {
        s["secretRef"]["name"]
        for c in app_containers(doc)
        for s in c.get("envFrom", [])
        if "secretRef" in s
    }


def test_the_model_signing_key_secret_reaches_the_train_job_alone() -> None:
    holders = {role_of(d) for d in workloads() if "readmit-model-signing" in _secret_refs(d)}
    assert holders == {"train"}


def test_login_lockout_and_metrics_auth_are_configured() -> None:
    config = refs.k8s_configmap()
    assert int(config["READMIT_LOGIN_FAILURE_LIMIT"]) >= 1
    assert int(config["READMIT_LOGIN_LOCKOUT_MINUTES"]) >= 0
    assert config["READMIT_LOGIN_PROXY_HOPS"] == "1"  # behind the Ingress controller
    (job,) = [j for j in refs.load_yaml(refs.K8S_SCRAPE) if j["job_name"] == "readmit-ingest"]
    assert job["authorization"]["type"] == "Bearer"
    assert job["authorization"]["credentials_file"].endswith("/readmit-metrics-token/token")
    runbook = refs.RUNBOOK.read_text()
    for secret in ("readmit-secrets", "readmit-model-signing", "readmit-metrics-token"):
        assert f"create secret generic {secret}" in runbook
    for key in ("METRICS_TOKEN", "MODEL_VERIFY_KEY", "ACCESS_TOKEN_SECRET"):
        assert key in runbook
