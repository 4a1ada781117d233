"""Monitoring: Prometheus configs and alert rules pass promtool, every dashboard parses and
queries only metrics the code exports (with PromQL promtool accepts), and every component
is scraped in compose and annotated for scraping in Kubernetes."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from deploy_helpers import (
    MONITORING,
    ROOT,
    build,
    compose,
    deployments,
    generator,
    metric_names,
)

# Series that come from Prometheus itself or the exporters next to PostgreSQL and Redis.
EXTERNAL_METRICS = {"up", "pg_up", "redis_up"}
PROMQL_WORDS = {
    "sum", "avg", "max", "min", "count", "rate", "irate", "increase", "by", "without", "on", "ignoring", "group_left",
    "histogram_quantile", "clamp_min", "label_replace", "absent", "and", "or", "unless", "avg_over_time",
    "max_over_time", "le", "bool", "offset",
}
DASHBOARDS = sorted((MONITORING / "grafana" / "dashboards").glob("*.json"))

# One xdist worker builds the overlays once (make test runs -n 2 --dist loadgroup).
pytestmark = pytest.mark.xdist_group("deploy-manifests")


def promtool() -> str:
    path = shutil.which("promtool")
    assert path, "promtool is missing: scripts/bootstrap.sh installs Debian's `prometheus` package, which ships it"
    return path


def run_promtool(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([promtool(), *args], capture_output=True, text=True, cwd=cwd, timeout=120, check=False)


def metrics_in(expr: str) -> set[str]:
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # label values are not metric names
    expr = re.sub(r"\{[^}]*\}", "", expr)  # nor are label names inside matchers
    expr = re.sub(r"\[[^\]]*\]", "", expr)
    names = set(re.findall(r"\b([a-zA-Z_:][a-zA-Z0-9_:]*)\b(?!\s*\()", expr))
    names -= PROMQL_WORDS
    # Labels named in by(...)/without(...) clauses.
    for clause in re.findall(r"\b(?:by|without|on|ignoring)\s*\(([^)]*)\)", expr):
        names -= {n.strip() for n in clause.split(",")}
    return {n for n in names if not re.fullmatch(r"\d+(\.\d+)?|e\d+", n)}


def test_monitoring_files_match_their_generator():
    """Scrape config, alert rules, adapter rules and the compose snippet are exactly what the
    generator makes from the component table. Dashboards are left out of this comparison:
    a metric added to a service appears on its dashboard at the next
    `python deploy/monitoring/generate.py`, and a new metric must not fail everyone's CI
    (renamed or removed metrics do fail: test_dashboard_parses_and_queries_existing_metrics)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("eindr_monitoring_generate", MONITORING / "generate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    files = module.render()
    for path, text in files.items():
        if path.suffix == ".json":
            assert path.exists(), f"{path.name} missing: run python deploy/monitoring/generate.py"
            continue
        assert path.read_text() == text, f"{path} is out of date: run python deploy/monitoring/generate.py"


def test_metrics_in_reads_promql():
    assert metrics_in('sum by (le, route) (rate(eindr_x_bucket{route!~"/a|/b"}[5m])) / clamp_min(up, 1e-9)') == {"eindr_x_bucket", "up"}


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.stem)
def test_dashboard_parses_and_queries_existing_metrics(path: Path, tmp_path: Path):
    board = json.loads(path.read_text())
    assert board["uid"] == path.stem and board["title"].startswith("Eindr / ")
    known = metric_names() | EXTERNAL_METRICS
    exprs = []
    ids = set()
    for panel in board["panels"]:
        assert panel["id"] not in ids
        ids.add(panel["id"])
        g = panel["gridPos"]
        assert 0 <= g["x"] and g["x"] + g["w"] <= 24, panel["title"]
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] == "prometheus"
        assert panel["targets"], panel["title"]
        for t in panel["targets"]:
            unknown = metrics_in(t["expr"]) - known
            assert not unknown, f"{path.name} / {panel['title']}: no component exports {sorted(unknown)}"
            exprs.append(t["expr"])
    assert exprs
    # PromQL syntax: promtool parses each query as a recording rule.
    rules = {"groups": [{"name": "dashboard", "rules": [
        {"record": f"dashboard:q{i}", "expr": e.replace("$__rate_interval", "5m")} for i, e in enumerate(exprs)]}]}
    (tmp_path / "q.yml").write_text(yaml.safe_dump(rules))
    proc = run_promtool("check", "rules", "q.yml", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_required_dashboards_exist():
    uids = {p.stem for p in DASHBOARDS}
    assert {"eindr-gateway", "eindr-scheduler", "eindr-inference", "eindr-voice-pipeline"} <= uids
    for c in generator().present():
        if c.kind == "api":
            assert f"eindr-service-{c.name}" in uids, c.name
    # Every domain metric of a service is on its dashboard.
    defined = metric_names()
    board = json.loads((MONITORING / "grafana/dashboards/eindr-service-notes.json").read_text())
    text = json.dumps(board)
    for m in ("eindr_notes_queue_depth", "eindr_notes_jobs_total", "eindr_notes_created_total"):
        assert m in defined and m in text


def test_grafana_provisioning_points_at_the_dashboards():
    ds = yaml.safe_load((MONITORING / "grafana/provisioning/datasources/prometheus.yml").read_text())
    assert [d["uid"] for d in ds["datasources"]] == ["prometheus"]
    prov = yaml.safe_load((MONITORING / "grafana/provisioning/dashboards/eindr.yml").read_text())
    path = prov["providers"][0]["options"]["path"]
    snippet = (MONITORING / "COMPOSE-SNIPPET.md").read_text()
    assert f"./deploy/monitoring/grafana/dashboards:{path}" in snippet


def test_alert_rules_pass_promtool_and_reference_real_metrics():
    rules_file = MONITORING / "prometheus" / "rules" / "eindr-alerts.yml"
    proc = run_promtool("check", "rules", str(rules_file), cwd=ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    doc = yaml.safe_load(rules_file.read_text())
    known = metric_names() | EXTERNAL_METRICS
    ops = (ROOT / "docs" / "operations.md").read_text()
    # GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens.
    anchors = {re.sub(r"\s", "-", re.sub(r"[^\w\s-]", "", h.strip().lower())) for h in re.findall(r"^#+ (.+)$", ops, re.MULTILINE)}
    names = set()
    for group in doc["groups"]:
        for rule in group["rules"]:
            names.add(rule["alert"])
            assert rule["labels"]["severity"] in ("warning", "critical"), rule["alert"]
            assert rule["annotations"]["summary"] and rule["annotations"]["description"], rule["alert"]
            anchor = rule["annotations"]["runbook_url"].split("#", 1)[1]
            assert anchor in anchors, f"{rule['alert']}: docs/operations.md has no heading for #{anchor}"
            unknown = metrics_in(rule["expr"]) - known
            assert not unknown, (rule["alert"], unknown)
    assert {"EindrReminderLatenessHigh", "EindrHighErrorRate", "EindrInferenceOverloaded", "EindrPostgresDown",
            "EindrRedisDown"} <= names


def test_alerts_fire_on_the_conditions_they_describe(tmp_path: Path):
    """promtool's rule unit tests: synthetic series in, expected alerts out."""
    # Annotations are templated text (checked above); these tests are about expr, for, labels.
    rules = yaml.safe_load((MONITORING / "prometheus/rules/eindr-alerts.yml").read_text())
    for group in rules["groups"]:
        for rule in group["rules"]:
            rule.pop("annotations", None)
    (tmp_path / "rules.yml").write_text(yaml.safe_dump(rules))
    tests = {
        "rule_files": ["rules.yml"],
        "evaluation_interval": "1m",
        "tests": [
            {
                # Every reminder fires 10-30 s late: p99 lateness > 5 s.
                "interval": "1m",
                "input_series": [
                    {"series": 'eindr_reminders_fire_lateness_seconds_bucket{le="5.0"}', "values": "0+0x20"},
                    {"series": 'eindr_reminders_fire_lateness_seconds_bucket{le="30.0"}', "values": "0+60x20"},
                    {"series": 'eindr_reminders_fire_lateness_seconds_bucket{le="+Inf"}', "values": "0+60x20"},
                ],
                "alert_rule_test": [{"eval_time": "15m", "alertname": "EindrReminderLatenessHigh",
                                     "exp_alerts": [{"exp_labels": {"severity": "critical"}}]}],
            },
            {
                # users answers 10% 5xx; ledger is healthy.
                "interval": "1m",
                "input_series": [
                    {"series": 'eindr_http_requests_total{service="users",route="/v1/users/me",status="200",method="GET"}', "values": "0+540x20"},
                    {"series": 'eindr_http_requests_total{service="users",route="/v1/users/me",status="500",method="GET"}', "values": "0+60x20"},
                    {"series": 'eindr_http_requests_total{service="ledger",route="/v1/ledger",status="200",method="GET"}', "values": "0+600x20"},
                ],
                "alert_rule_test": [
                    {"eval_time": "12m", "alertname": "EindrHighErrorRate",
                     "exp_alerts": [{"exp_labels": {"severity": "critical", "service": "users"}}]},
                ],
            },
            {
                # stt refuses with 503 (queue full); PostgreSQL and Redis exporters report down.
                "interval": "1m",
                "input_series": [
                    {"series": 'eindr_http_requests_total{service="stt",route="/v1/audio/transcriptions",status="503",method="POST"}', "values": "0+30x20"},
                    {"series": "pg_up", "values": "0x20"},
                    {"series": "redis_up", "values": "1x20"},
                ],
                "alert_rule_test": [
                    {"eval_time": "10m", "alertname": "EindrInferenceOverloaded",
                     "exp_alerts": [{"exp_labels": {"severity": "critical", "service": "stt"}}]},
                    {"eval_time": "5m", "alertname": "EindrPostgresDown", "exp_alerts": [{"exp_labels": {"severity": "critical"}}]},
                    {"eval_time": "5m", "alertname": "EindrRedisDown", "exp_alerts": []},
                ],
            },
        ],
    }
    (tmp_path / "tests.yml").write_text(yaml.safe_dump(tests, sort_keys=False))
    proc = run_promtool("test", "rules", "tests.yml", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_compose_prometheus_config_is_valid_and_scrapes_every_component(tmp_path: Path):
    cfg_text = (MONITORING / "prometheus/prometheus.yml").read_text()
    cfg = yaml.safe_load(cfg_text)
    # promtool resolves rule files relative to the config: check it as compose mounts it.
    (tmp_path / "rules").mkdir()
    shutil.copy(MONITORING / "prometheus/rules/eindr-alerts.yml", tmp_path / "rules")
    (tmp_path / "prometheus.yml").write_text(cfg_text.replace("/etc/prometheus/rules/", "rules/"))
    proc = run_promtool("check", "config", "prometheus.yml", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    job = next(j for j in cfg["scrape_configs"] if j["job_name"] == "eindr")
    targets = {t for sc in job["static_configs"] for t in sc["targets"]}
    for dep in deployments(build("base")):
        port = dep["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"]
        assert f"{dep['metadata']['name']}:{port}" in targets
    # The snippet mounts exactly this config and these rules into compose's Prometheus.
    snippet = (MONITORING / "COMPOSE-SNIPPET.md").read_text()
    assert "./deploy/monitoring/prometheus/prometheus.yml:/etc/prometheus/prometheus.yml" in snippet
    assert "./deploy/monitoring/prometheus/rules:/etc/prometheus/rules" in snippet
    # Compose services that already exist are scraped on the port they listen on.
    for name in compose()["services"]:
        if name in {t.split(":")[0] for t in targets}:
            assert any(t.startswith(name + ":") for t in targets)


def test_kubernetes_prometheus_config(tmp_path: Path):
    cfg = yaml.safe_load((MONITORING / "prometheus/prometheus-k8s.yml").read_text())
    job = next(j for j in cfg["scrape_configs"] if j["job_name"] == "eindr")
    namespaces = set(job["kubernetes_sd_configs"][0]["namespaces"]["names"])
    for overlay in ("dev", "prod"):
        ns = next(d for d in build(overlay) if d["kind"] == "Namespace")["metadata"]["name"]
        assert ns in namespaces
    targets = {r.get("target_label") for r in job["relabel_configs"]}
    # Dashboards/alerts use `component`; the Prometheus adapter maps namespace/pod to objects.
    assert {"component", "namespace", "pod", "__address__", "__metrics_path__"} <= targets
    for r in job["relabel_configs"]:
        re.compile(r.get("regex", "(.*)"))
    # Debian's promtool is built without Kubernetes discovery: check everything else.
    for j in cfg["scrape_configs"]:
        j.pop("kubernetes_sd_configs")
    (tmp_path / "rules").mkdir()
    shutil.copy(MONITORING / "prometheus/rules/eindr-alerts.yml", tmp_path / "rules")
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(cfg))
    proc = run_promtool("check", "config", "prometheus.yml", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_compose_snippet_merges_into_a_valid_compose_file_with_the_same_components(tmp_path: Path):
    """What deploy/monitoring/COMPOSE-SNIPPET.md asks the lead to add, added to today's
    docker-compose.yml: `docker-compose config` accepts it, and compose then deploys exactly
    the Kubernetes components and the monitoring stack."""
    snippet = (MONITORING / "COMPOSE-SNIPPET.md").read_text()
    blocks = re.findall(r"```yaml\n(.*?)```", snippet, re.DOTALL)
    monitoring_services, volumes, apps = blocks[0], blocks[1], blocks[2]
    text = (ROOT / "docker-compose.yml").read_text()
    existing = set(compose()["services"])
    chunks = re.split(r"\n(?=  [a-z][a-z0-9-]*:\n)", "\n" + apps)
    wanted = [ch.strip("\n") + "\n" for ch in chunks if ch.strip() and ch.strip().split(":")[0] not in existing]
    mon = [ch.strip("\n") + "\n" for ch in re.split(r"\n(?=  [a-z][a-z0-9-]*:\n)", "\n" + monitoring_services)
           if ch.strip() and ch.strip().split(":")[0] not in existing]
    assert re.search(r"^services:\n", text, re.MULTILINE) and re.search(r"^volumes:\n", text, re.MULTILINE)
    text = re.sub(r"^services:\n", lambda m: "services:\n" + "\n".join(mon + wanted) + "\n", text, count=1, flags=re.MULTILINE)
    have_volumes = set((compose().get("volumes") or {}).keys())
    extra_volumes = "".join(line + "\n" for line in volumes.splitlines() if line.strip().rstrip(":") not in have_volumes)
    text = re.sub(r"^volumes:\n", lambda m: "volumes:\n" + extra_volumes, text, count=1, flags=re.MULTILINE)
    merged = tmp_path / "docker-compose.yml"
    merged.write_text(text)
    proc = subprocess.run(["docker-compose", "-f", str(merged), "--project-directory", str(ROOT), "config", "-q"],
                          capture_output=True, text=True, timeout=120, check=False, env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path),
                                                                            "EINDR_FRIENDS_HASH_PEPPER": "x" * 32,
                                                                            "EINDR_CALENDAR_ENCRYPTION_KEYS": "k"})
    assert proc.returncode == 0, proc.stderr
    exe = Path(sys.executable).with_name("check-jsonschema")
    proc = subprocess.run([str(exe), "--builtin-schema", "vendor.compose-spec", str(merged)],
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    services = yaml.safe_load(merged.read_text())["services"]
    built = {n for n, s in services.items() if "build" in s}
    assert built == {d["metadata"]["name"] for d in deployments(build("base"))}
    assert {"prometheus", "grafana", "redis-exporter", "postgres-exporter"} <= set(services)
