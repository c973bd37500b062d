"""What the deployment files under infra/ refer to, read once for the infra tests.

The unit tests (tests/unit/infra) compare these references with the code (Settings,
topics, metric objects); the integration test (tests/integration/infra) compares them
with a live /metrics scrape. Both load this module, so "what Grafana uses" is computed
one way.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[3]
INFRA = ROOT / "infra"
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
ENV_EXAMPLE = ROOT / ".env.example"
ENTRYPOINT = INFRA / "docker" / "entrypoint.sh"
HEALTHCHECK = INFRA / "docker" / "healthcheck.py"
TOPICS_SCRIPT = INFRA / "kafka" / "create-topics.sh"
PROMETHEUS = INFRA / "prometheus" / "prometheus.yml"
RULES_DIR = INFRA / "prometheus" / "rules"
RULE_TESTS_DIR = INFRA / "prometheus" / "tests"
K8S_SCRAPE = INFRA / "k8s" / "prometheus" / "scrape-configs.yml"
GRAFANA_DASHBOARDS = INFRA / "grafana" / "dashboards"
GRAFANA_DATASOURCES = INFRA / "grafana" / "provisioning" / "datasources"
KUSTOMIZATION = INFRA / "kustomization.yaml"
RUNBOOK = INFRA / "RUNBOOK.md"
OPERATIONS = INFRA / "OPERATIONS.md"

# The roles of the one image (the list); each must be deployable everywhere.
ROLES = ("ingest", "scorer", "explainer", "web", "alerts-consumer", "migrate", "train")
LONG_RUNNING_ROLES = ("ingest", "scorer", "explainer", "web", "alerts-consumer")
# Metrics Prometheus itself provides (not exported by our code).
PROMETHEUS_BUILTIN = frozenset({"up"})
# Labels Prometheus adds to every scraped series, and the histogram bucket label.
BUILTIN_LABELS = frozenset({"job", "instance", "le"})

_METRIC = re.compile(r"\b(readmit_[a-zA-Z0-9_]+)")
_BY = re.compile(r"\b(?:by|without)\s*\(([^)]*)\)")
_SELECTOR = re.compile(r"\b([a-zA-Z_:][a-zA-Z0-9_:]*)\s*\{([^}]*)\}")
_MATCHER = re.compile(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)")


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def load_yaml_all(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


@dataclass(frozen=True)
class Expr:
    """One PromQL expression and where it was found (for readable failures)."""

    where: str
    promql: str

    def metrics(self) -> set[str]:
        return set(_METRIC.findall(self.promql))

    def grouping_labels(self) -> set[str]:
        labels: set[str] = set()
        for group in _BY.findall(self.promql):
            labels |= {label.strip() for label in group.split(",") if label.strip()}
        return labels

    def selector_labels(self) -> dict[str, set[str]]:
        """metric name -> label names its {...} matchers use."""
        out: dict[str, set[str]] = {}
        for name, body in _SELECTOR.findall(self.promql):
            out.setdefault(name, set()).update(_MATCHER.findall(body))
        return out


def rule_groups() -> list[dict[str, Any]]:
    groups: list[dict[str, Any]] = []
    for path in sorted(RULES_DIR.glob("*.yml")):
        groups.extend(load_yaml(path)["groups"])
    return groups


def alert_rules() -> list[dict[str, Any]]:
    return [rule for group in rule_groups() for rule in group["rules"] if "alert" in rule]


def dashboards() -> dict[str, dict[str, Any]]:
    return {p.name: json.loads(p.read_text()) for p in sorted(GRAFANA_DASHBOARDS.glob("*.json"))}


def iter_panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from iter_panels(panel.get("panels") or [])


@functools.cache
def all_expressions() -> list[Expr]:
    """Every PromQL expression of the alert rules and the Grafana dashboards."""
    exprs = [Expr(f"rule {r['alert']}", str(r["expr"])) for r in alert_rules()]
    for name, dash in dashboards().items():
        for panel in iter_panels(dash.get("panels") or []):
            for target in panel.get("targets") or []:
                if "expr" in target:
                    exprs.append(Expr(f"{name}: {panel.get('title')}", str(target["expr"])))
    return exprs


def scrape_job_names(scrape_configs: list[dict[str, Any]]) -> set[str]:
    return {str(job["job_name"]) for job in scrape_configs}


@functools.cache
def exported_sample_names() -> dict[str, set[str]]:
    """Sample names the code's metric objects export -> their label names.

    Derived from the metric objects in ingest/metrics.py and scorer/metrics.py (the
    contract modules), with the suffixes prometheus_client adds per metric type.
    """
    from prometheus_client.metrics import MetricWrapperBase

    import ingest.metrics
    import scorer.metrics

    suffixes = {
        "counter": ("_total",),
        "gauge": ("",),
        "histogram": ("_bucket", "_sum", "_count"),
        "summary": ("_sum", "_count", ""),
        "info": ("_info",),
    }
    out: dict[str, set[str]] = {}
    for module in (ingest.metrics, scorer.metrics):
        for obj in vars(module).values():
            if not isinstance(obj, MetricWrapperBase):
                continue
            labels = set(obj._labelnames)
            for family in obj.describe():
                for suffix in suffixes[family.type]:
                    extra = {"le"} if suffix == "_bucket" else set()
                    out[family.name + suffix] = labels | extra
    return out


@functools.cache
def compose() -> dict[str, Any]:
    return load_yaml(COMPOSE)


def compose_services() -> dict[str, dict[str, Any]]:
    return compose()["services"]


def service_role(service: dict[str, Any]) -> str | None:
    """The entrypoint role a readmit-image service runs (first word of its command)."""
    image = str(service.get("image", ""))
    command = service.get("command") or []
    if not image.startswith("readmit:") or not command:
        return None
    return str(command[0])


def entrypoint_roles() -> set[str]:
    """Role names the image's entrypoint accepts (its `case` labels)."""
    roles: set[str] = set()
    for line in ENTRYPOINT.read_text().splitlines():
        match = re.match(r"^\s{2}([a-z|\-]+)\)\s*$", line)
        if match:
            roles.update(part for part in match.group(1).split("|") if part)
    return roles


def kustomization() -> dict[str, Any]:
    return load_yaml(KUSTOMIZATION)


@functools.cache
def k8s_documents() -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for resource in kustomization()["resources"]:
        docs.extend(load_yaml_all(INFRA / resource))
    return docs


def k8s_kind(kind: str) -> list[dict[str, Any]]:
    return [d for d in k8s_documents() if d.get("kind") == kind]


def pod_spec(workload: dict[str, Any]) -> dict[str, Any]:
    return workload["spec"]["template"]["spec"]


def k8s_configmap() -> dict[str, str]:
    maps = [d for d in k8s_kind("ConfigMap") if d["metadata"]["name"] == "readmit-config"]
    assert len(maps) == 1, "exactly one ConfigMap readmit-config"
    return {str(k): str(v) for k, v in maps[0]["data"].items()}


def topics_script_defaults() -> dict[str, int]:
    """Logical topic -> default partitions, from `create NAME "${VAR:-N}" ...` lines."""
    out: dict[str, int] = {}
    for match in re.finditer(
        r'^create\s+(\S+)\s+"\$\{(\w+):-(\d+)\}"', TOPICS_SCRIPT.read_text(), re.M
    ):
        out[match.group(1)] = int(match.group(3))
    return out


def topics_script_variables() -> dict[str, str]:
    """Logical topic -> the environment variable that sets its partitions."""
    return {
        m.group(1): m.group(2)
        for m in re.finditer(
            r'^create\s+(\S+)\s+"\$\{(\w+):-\d+\}"', TOPICS_SCRIPT.read_text(), re.M
        )
    }


def runbook_anchors() -> set[str]:
    """GitHub-style anchors of the runbook's headings."""
    anchors: set[str] = set()
    for line in RUNBOOK.read_text().splitlines():
        if line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            slug = re.sub(r"[^a-z0-9 _-]", "", title).replace(" ", "-")
            anchors.add(slug)
    return anchors


def image_is_pinned(image: str) -> bool:
    """name:tag with a version-looking tag (a digit in it), never `latest`, or a digest."""
    if "@sha256:" in image:
        return True
    name, _, tag = image.rpartition(":")
    if not name or "/" in tag:
        return False
    return tag != "latest" and any(ch.isdigit() for ch in tag)


SECRET_NAME = re.compile(r"(TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL|PRIVATE|API_KEY|DATABASE_URL)")
# user:password@host inside a URL value
SECRET_IN_URL = re.compile(r"://[^/\s:@]+:[^/\s@]+@")
