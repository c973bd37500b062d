"""Prometheus config, alert rules and the Grafana dashboard refer only to what the code exports.

Metric names come from the metric objects in ingest/metrics.py and scorer/metrics.py;
tests/integration/infra checks the same references against a live /metrics scrape.
promtool (Debian package `prometheus`) validates syntax and runs the rule unit tests
when installed; those tests skip otherwise.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import infra_references as refs
import pytest

from readmit_core.settings import Settings

DEFAULTS = Settings()
EXPORTED = refs.exported_sample_names()
PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool not installed (apt-get install prometheus)"
)


def test_there_are_expressions_to_check() -> None:
    exprs = refs.all_expressions()
    assert len(exprs) >= 20
    assert all(e.promql.strip() for e in exprs)


@pytest.mark.parametrize("expr", refs.all_expressions(), ids=lambda e: e.where)
def test_expressions_use_only_exported_metrics(expr: refs.Expr) -> None:
    unknown = expr.metrics() - set(EXPORTED)
    assert not unknown, f"{expr.where}: metrics the code does not export: {unknown}"


@pytest.mark.parametrize("expr", refs.all_expressions(), ids=lambda e: e.where)
def test_expressions_group_and_filter_by_existing_labels(expr: refs.Expr) -> None:
    labels = set(refs.BUILTIN_LABELS)
    for metric in expr.metrics():
        labels |= EXPORTED.get(metric, set())
    missing = expr.grouping_labels() - labels
    assert not missing, f"{expr.where}: groups by labels no metric has: {missing}"
    for metric, used in expr.selector_labels().items():
        if metric.startswith("readmit_"):
            extra = used - EXPORTED.get(metric, set()) - refs.BUILTIN_LABELS
            assert not extra, f"{expr.where}: {metric} has no label(s) {extra}"


def test_up_selectors_name_real_scrape_jobs() -> None:
    compose_jobs = refs.scrape_job_names(refs.load_yaml(refs.PROMETHEUS)["scrape_configs"])
    k8s_jobs = refs.scrape_job_names(refs.load_yaml(refs.K8S_SCRAPE))
    for expr in refs.all_expressions():
        for job in re.findall(r'job="([^"]+)"', expr.promql):
            assert job in compose_jobs, f"{expr.where}: job {job} not scraped by compose"
            assert job in k8s_jobs, f"{expr.where}: job {job} not scraped in Kubernetes"


def test_scrape_targets_use_the_settings_ports() -> None:
    config = refs.load_yaml(refs.PROMETHEUS)
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    expected = {
        "readmit-ingest": DEFAULTS.ingest_port,
        "readmit-scorer": DEFAULTS.scorer_metrics_port,
    }
    services = refs.compose_services()
    for name, port in expected.items():
        targets = [t for sc in jobs[name]["static_configs"] for t in sc["targets"]]
        assert targets, name
        for target in targets:
            host, _, target_port = target.rpartition(":")
            assert int(target_port) == port, target
            assert host in services, f"{target}: no compose service {host}"
    scorer_hosts = {
        t.rpartition(":")[0]
        for sc in jobs["readmit-scorer"]["static_configs"]
        for t in sc["targets"]
    }
    compose_scorers = {n for n, s in services.items() if refs.service_role(s) == "scorer"}
    assert scorer_hosts == compose_scorers, "Prometheus must scrape every scorer"


def test_rule_files_are_loaded_by_the_config() -> None:
    config = refs.load_yaml(refs.PROMETHEUS)
    loaded: set[Path] = set()
    for pattern in config["rule_files"]:
        loaded |= set(refs.PROMETHEUS.parent.glob(pattern))
    assert set(refs.RULES_DIR.glob("*.yml")) <= loaded


def test_the_required_alerts_exist() -> None:
    names = {r["alert"]: r for r in refs.alert_rules()}
    # lag above N for M minutes, DLQ growth, ingest 5xx rate, scorer down (the issue's list)
    assert "readmit_scorer_consumer_lag" in names["ReadmitConsumerLagHigh"]["expr"]
    assert names["ReadmitConsumerLagHigh"]["for"] not in ("0m", "0s")
    assert "readmit_scorer_dead_letters_total" in names["ReadmitDeadLettersGrowing"]["expr"]
    assert 'status=~"5.."' in names["ReadmitIngest5xxRate"]["expr"]
    assert 'up{job="readmit-scorer"}' in names["ReadmitScorerDown"]["expr"]


def test_every_alert_has_severity_summary_and_a_runbook_section() -> None:
    anchors = refs.runbook_anchors()
    for rule in refs.alert_rules():
        assert rule["labels"]["severity"] in ("page", "warning"), rule["alert"]
        annotations = rule["annotations"]
        assert annotations.get("summary"), rule["alert"]
        runbook = annotations["runbook"]
        path, _, anchor = runbook.partition("#")
        assert path == "infra/RUNBOOK.md", rule["alert"]
        assert anchor in anchors, f"{rule['alert']}: RUNBOOK.md has no section #{anchor}"
        assert anchor == rule["alert"].lower(), "anchor is the alert name"


def test_dashboard_uses_the_provisioned_datasource() -> None:
    provisioned = {
        ds["uid"]
        for path in refs.GRAFANA_DATASOURCES.glob("*.yml")
        for ds in refs.load_yaml(path)["datasources"]
    }
    for name, dash in refs.dashboards().items():
        for panel in refs.iter_panels(dash["panels"]):
            uid = (panel.get("datasource") or {}).get("uid")
            if panel["type"] != "row":
                assert uid in provisioned, f"{name}: {panel['title']} datasource {uid}"


def test_dashboard_panels_are_unique_and_placed() -> None:
    for name, dash in refs.dashboards().items():
        assert dash["uid"], name
        assert dash["title"], name
        ids = [p["id"] for p in refs.iter_panels(dash["panels"])]
        assert len(ids) == len(set(ids)), f"{name}: duplicate panel ids"
        for panel in refs.iter_panels(dash["panels"]):
            grid = panel["gridPos"]
            assert grid["x"] >= 0, panel["title"]
            assert grid["x"] + grid["w"] <= 24, panel["title"]


def _dashboard_exprs() -> list[str]:
    return [e.promql for e in refs.all_expressions() if not e.where.startswith("rule ")]


@pytest.mark.parametrize(
    ("what", "pattern"),
    [
        ("lag per partition", r"by \(topic, partition\) \(readmit_scorer_consumer_lag\)"),
        ("throughput", r"rate\(readmit_scorer_events_scored_total"),
        ("end-to-end latency", r"histogram_quantile\(.*readmit_end_to_end_seconds_bucket"),
        ("dead letters", r"readmit_scorer_dead_letters_total"),
        ("model version", r"readmit_model_info"),
    ],
)
def test_dashboard_shows_what_the_issue_asks(what: str, pattern: str) -> None:
    assert any(re.search(pattern, e) for e in _dashboard_exprs()), f"no {what} panel"


def _promtool(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL is not None
    return subprocess.run([PROMTOOL, *args], capture_output=True, text=True, timeout=120, cwd=cwd)


@needs_promtool
def test_promtool_accepts_config_and_rules(tmp_path: Path) -> None:
    # promtool opens credential files: a copy whose token file exists (compose mounts it)
    token = tmp_path / "metrics-token"
    token.write_text("t" * 32)
    config = refs.PROMETHEUS.read_text().replace("/run/secrets/readmit_metrics_token", str(token))
    (tmp_path / "prometheus.yml").write_text(config)
    (tmp_path / "rules").symlink_to(refs.RULES_DIR)
    result = _promtool("check", "config", "prometheus.yml", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    rules = [str(p) for p in sorted(refs.RULES_DIR.glob("*.yml"))]
    result = _promtool("check", "rules", *rules, cwd=refs.ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


@needs_promtool
def test_alert_rules_fire_on_synthetic_series() -> None:
    tests = [str(p) for p in sorted(refs.RULE_TESTS_DIR.glob("*.yml"))]
    assert tests
    result = _promtool("test", "rules", *tests, cwd=refs.ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_has_a_rule_unit_test() -> None:
    tested: set[str] = set()
    for path in refs.RULE_TESTS_DIR.glob("*.yml"):
        doc: dict[str, Any] = refs.load_yaml(path)
        for case in doc["tests"]:
            for check in case.get("alert_rule_test") or []:
                if check.get("exp_alerts"):
                    tested.add(check["alertname"])
    untested = {r["alert"] for r in refs.alert_rules()} - tested
    assert not untested, f"alerts no promtool test sees firing: {sorted(untested)}"
