"""Kubernetes manifests: every overlay builds with real kustomize, validates against the
Kubernetes schemas offline, and keeps the promises the docs make (hardened pods, probes,
sizes, secrets by reference only, network policies that match what each service calls,
inference scaling on its own queue depth, GPU placement, the same components as compose)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import kubernetes_validate
import kubernetes_validate.utils
import pytest
import yaml
from deploy_helpers import (
    K8S,
    ROOT,
    build,
    compose_components,
    deployments,
    docs_of,
    generator,
    k8s_validator,
    metric_names,
)

# One xdist worker builds the overlays once (make test runs -n 2 --dist loadgroup).
pytestmark = pytest.mark.xdist_group("deploy-manifests")

K8S_VERSION = "1.30.0"  # the oldest minor we support; the preStop sleep action needs >= 1.30
K8S_LATEST = kubernetes_validate.utils.latest_version()  # and the newest the package knows
OVERLAYS = ["dev", "prod"]
SECRETISH = re.compile(r"SECRET|PASSWORD|DATABASE_URL|REDIS_URL|TOKEN|PEPPER|DSN|_KEY|KEYS|CREDENTIALS", re.IGNORECASE)


@pytest.fixture(scope="module", params=["base", *OVERLAYS])
def rendered(request) -> tuple[str, list[dict]]:
    return request.param, build(request.param)


def test_generated_files_match_the_component_table():
    # Hand edits to generated YAML, or a component added to the repo without re-running
    # `python deploy/k8s/generate.py`, fail here with the diff.
    assert generator().main(["--check"]) == 0


def test_every_component_in_the_repository_is_deployed():
    gen = generator()
    present = {c.name for c in gen.present()}
    sources = {p.parent.relative_to(ROOT).as_posix() for p in ROOT.glob("*/*/pyproject.toml")} | {"gateway"}
    sources = {s for s in sources if s.split("/")[0] in ("services", "inference", "gateway")}
    covered = {c.src for c in gen.COMPONENTS if c.name in present}
    assert sources <= covered, f"components without Kubernetes manifests: {sorted(sources - covered)}"


def test_overlays_validate_against_kubernetes_schemas(rendered):
    name, docs = rendered
    assert docs, name
    kinds = set()
    for doc in docs:
        kinds.add(doc["kind"])
        if doc["apiVersion"].startswith("external-secrets.io/"):
            # A CRD: not in the Kubernetes schemas; its required structure is checked here.
            spec = doc["spec"]
            assert doc["kind"] == "ExternalSecret"
            assert spec["secretStoreRef"]["kind"] in ("SecretStore", "ClusterSecretStore") and spec["secretStoreRef"]["name"]
            assert spec["target"]["name"] == doc["metadata"]["name"]
            assert spec["data"] and all(d["secretKey"] and d["remoteRef"]["key"] for d in spec["data"])
            continue
        for version in (K8S_VERSION, K8S_LATEST):
            errors = list(k8s_validator(doc["kind"], doc["apiVersion"], version).iter_errors(doc))
            for exc in errors[:1]:
                path = ".".join(str(p) for p in exc.path)
                pytest.fail(f"{name} (k8s {version}): {doc['kind']}/{doc['metadata']['name']} at {path}: {exc.message}")
    assert {"Deployment", "Service", "ServiceAccount", "PodDisruptionBudget", "HorizontalPodAutoscaler", "Ingress"} <= kinds


def test_every_pod_is_hardened_probed_and_sized(rendered):
    name, docs = rendered
    for dep in deployments(docs):
        where = f"{name}: Deployment/{dep['metadata']['name']}"
        pod = dep["spec"]["template"]["spec"]
        assert pod["automountServiceAccountToken"] is False, where
        assert pod["securityContext"]["runAsNonRoot"] is True, where
        assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault", where
        volumes = {v["name"]: v for v in pod.get("volumes", [])}
        for c in pod.get("initContainers", []) + pod["containers"]:
            sc = c["securityContext"]
            assert sc["runAsNonRoot"] is True, (where, c["name"])
            assert sc["readOnlyRootFilesystem"] is True, (where, c["name"])
            assert sc["allowPrivilegeEscalation"] is False, (where, c["name"])
            assert sc["capabilities"]["drop"] == ["ALL"] and "add" not in sc["capabilities"], (where, c["name"])
            for kind in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(c["resources"][kind]), (where, c["name"], kind)
            # Writable paths are emptyDirs (or declared volumes), never the image.
            for m in c.get("volumeMounts", []):
                assert m["name"] in volumes, (where, m)
            assert any(m["mountPath"] == "/tmp" and "emptyDir" in volumes[m["name"]] for m in c["volumeMounts"]), where
        main = pod["containers"][0]
        port = main["ports"][0]
        assert main["livenessProbe"]["httpGet"]["path"] == "/healthz", where
        ready = main["readinessProbe"]["httpGet"]["path"]
        if ready != "/readyz":
            # Only a worker whose health server has no /readyz (yet) may be probed elsewhere.
            comp = next(c for c in generator().COMPONENTS if c.name == dep["metadata"]["name"])
            module = ROOT / comp.src / (comp.command[2].replace(".", "/") + ".py")
            assert comp.kind == "worker" and ready == "/healthz" and "/readyz" not in module.read_text(), where
        assert main["startupProbe"]["httpGet"]["path"] == "/healthz", where
        for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
            assert main[probe]["httpGet"]["port"] == port["name"], (where, probe)
        ann = dep["spec"]["template"]["metadata"]["annotations"]
        assert ann["prometheus.io/scrape"] == "true" and int(ann["prometheus.io/port"]) == port["containerPort"], where


def test_memory_requests_cover_the_measured_rss():
    # docs/operations.md "Sizing": RSS measured with deploy/tools/measure_rss.py after warm-up
    # (peak). A request below it would let the scheduler overpack nodes; a limit below it
    # would OOM-kill the pod.
    measured_peak_mib = {"gateway": 109, "auth": 111, "users": 105, "reminders": 113, "notes": 111,
                         "notes-worker": 123, "ledger": 115, "friends": 107, "stt": 423, "intent": 653, "tts": 243,
                         "calendar": 136, "history": 123, "history-worker": 122, "audit": 104, "assistant": 108,
                         "reminders-worker": 110, "calendar-worker": 129,
                         "chat": 2756}
    units = {"Mi": 1, "Gi": 1024}
    for dep in deployments(build("base")):
        name = dep["metadata"]["name"]
        if name not in measured_peak_mib:
            continue
        res = dep["spec"]["template"]["spec"]["containers"][0]["resources"]
        req, lim = (int(res[k]["memory"][:-2]) * units[res[k]["memory"][-2:]] for k in ("requests", "limits"))
        assert req >= measured_peak_mib[name], (name, req)
        assert lim >= 2 * measured_peak_mib[name] or lim - measured_peak_mib[name] >= 1024, (name, lim)


def test_each_deployment_has_its_service_account_service_and_pdb(rendered):
    name, docs = rendered
    by_kind: dict[str, dict[str, dict]] = {}
    for d in docs:
        by_kind.setdefault(d["kind"], {})[d["metadata"]["name"]] = d
    for dep in deployments(docs):
        n = dep["metadata"]["name"]
        labels = dep["spec"]["template"]["metadata"]["labels"]
        assert dep["spec"]["template"]["spec"]["serviceAccountName"] in by_kind["ServiceAccount"], (name, n)
        svc = by_kind["Service"][n]
        assert all(labels.get(k) == v for k, v in svc["spec"]["selector"].items()), (name, n)
        assert svc["spec"]["ports"][0]["port"] == dep["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"]
        pdb = by_kind["PodDisruptionBudget"][n]
        assert all(labels.get(k) == v for k, v in pdb["spec"]["selector"]["matchLabels"].items()), (name, n)
        assert dep["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0, (name, n)


def test_autoscaled_deployments_leave_the_replica_count_to_their_hpa():
    for overlay in ("base", "prod"):
        docs = build(overlay)
        hpa_targets = {d["spec"]["scaleTargetRef"]["name"] for d in docs if d["kind"] == "HorizontalPodAutoscaler"}
        for dep in deployments(docs):
            n = dep["metadata"]["name"]
            assert ("replicas" in dep["spec"]) == (n not in hpa_targets), (overlay, n)


def test_migrations_run_before_the_new_version_serves():
    gen = generator()
    for dep in deployments(build("base")):
        n = dep["metadata"]["name"]
        comp = next(c for c in gen.COMPONENTS if c.name == n)
        init = dep["spec"]["template"]["spec"].get("initContainers", [])
        migrations_dir = ROOT / comp.src / "migrations"
        if not migrations_dir.is_dir():
            assert not init, n
            continue
        assert init and init[0]["name"] == "migrate", f"{n} owns migrations but runs none before serving"
        cmd = init[0]["command"]
        assert cmd[:3] == ["python", "-m", "eindr_common.migrations"], n
        assert init[0]["image"] == dep["spec"]["template"]["spec"]["containers"][0]["image"], n
        dockerfile = ROOT / comp.src / "Dockerfile"
        if dockerfile.exists():
            # The path the init step migrates is where the image copies the scripts.
            m = re.search(rf"COPY\s+{re.escape(comp.src)}/migrations\s+(\S+)", dockerfile.read_text())
            assert m and m.group(1).rstrip("/") == cmd[3], (n, cmd)


def test_containers_match_their_dockerfiles():
    gen = generator()
    for dep in deployments(build("base")):
        n = dep["metadata"]["name"]
        comp = next(c for c in gen.COMPONENTS if c.name == n)
        dockerfile = ROOT / comp.src / "Dockerfile"
        if not dockerfile.exists():
            continue
        text = dockerfile.read_text()
        container = dep["spec"]["template"]["spec"]["containers"][0]
        if comp.kind != "worker":
            exposed = {int(p) for p in re.findall(r"^EXPOSE\s+(\d+)", text, re.MULTILINE)}
            assert container["ports"][0]["containerPort"] in exposed, (n, exposed)
        else:
            # A worker runs its own command in its service's image; the module must exist.
            module = container["command"][2] if container["command"][:2] == ["python", "-m"] else container["command"][1].split(":")[0]
            assert (ROOT / comp.src / (module.replace(".", "/") + ".py")).exists(), (n, module)
        assert "useradd --uid 10001" in text, n  # runAsUser 10001 is the image's own user


def test_compose_and_kubernetes_deploy_the_same_components():
    compose = compose_components()
    k8s = {d["metadata"]["name"] for d in deployments(build("base"))}
    assert compose - k8s == set(), f"in docker-compose.yml but not in deploy/k8s/base: {sorted(compose - k8s)}"
    assert k8s - compose == set(), f"in deploy/k8s/base but not in docker-compose.yml: {sorted(k8s - compose)}"


def test_docker_compose_file_is_valid():
    proc = subprocess.run(["docker-compose", "-f", str(ROOT / "docker-compose.yml"), "config", "-q"],
                          capture_output=True, text=True, cwd=ROOT, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    # And against the Compose Specification's JSON schema (check-jsonschema's vendored copy).
    exe = Path(sys.executable).with_name("check-jsonschema")
    assert exe.exists(), "check-jsonschema is missing: add check-jsonschema to requirements-dev.txt"
    proc = subprocess.run([str(exe), "--builtin-schema", "vendor.compose-spec", str(ROOT / "docker-compose.yml")],
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_services_are_wired_to_what_their_settings_call():
    """Every `<service>_url` a component's settings define is set in its Deployment to that
    service's in-cluster address, and the table's call graph (which drives the network
    policies) lists it: a new dependency fails here before it is blocked in production."""
    gen = generator()
    comps = {c.name: c for c in gen.present()}
    deps = {d["metadata"]["name"]: d for d in deployments(build("base"))}
    pattern = re.compile(r"^\s+([a-z]+)_url\s*:\s*str\b", re.MULTILINE)
    for c in comps.values():
        if c.name == "gateway":
            continue
        text = "".join(p.read_text() for p in (ROOT / c.src).glob("eindr_*/settings.py"))
        text += "".join(p.read_text() for p in (ROOT / c.src).glob("eindr_*/config.py"))
        wanted = {m for m in pattern.findall(text) if m in comps}
        assert wanted <= set(c.calls), (c.name, sorted(wanted - set(c.calls)))
        env = {e["name"]: e.get("value") for e in deps[c.name]["spec"]["template"]["spec"]["containers"][0]["env"]}
        for target in wanted:
            assert env[f"EINDR_{target.upper()}_URL"] == f"http://{target}:{comps[target].port}", (c.name, target)


def test_gateway_reaches_every_deployed_service_it_routes_to():
    from eindr_gateway.config import DEFAULT_SERVICE_URLS

    deps = {d["metadata"]["name"]: d for d in deployments(build("base"))}
    env = {e["name"]: e.get("value") for e in deps["gateway"]["spec"]["template"]["spec"]["containers"][0]["env"]}
    urls = json.loads(env["EINDR_GATEWAY_SERVICE_URLS"])
    for service, local in DEFAULT_SERVICE_URLS.items():
        if service in deps:
            port = local.rsplit(":", 1)[1]
            assert urls[service] == f"http://{service}:{port}", service


def test_network_policies_deny_by_default_and_allow_only_the_call_graph():
    docs = build("prod")
    pols = {d["metadata"]["name"]: d for d in docs if d["kind"] == "NetworkPolicy"}
    deny = pols["default-deny-all"]["spec"]
    assert deny["podSelector"] == {} and set(deny["policyTypes"]) == {"Ingress", "Egress"} and "ingress" not in deny
    deps = {d["metadata"]["name"]: d for d in deployments(docs)}
    kinds = {n: d["metadata"]["labels"]["app.kubernetes.io/component"] for n, d in deps.items()}

    def peers(rules: list[dict]) -> set[tuple[str, int]]:
        out = set()
        for r in rules:
            for p in r.get("to", r.get("from", [])):
                name = p.get("podSelector", {}).get("matchLabels", {}).get("app.kubernetes.io/name")
                if name and "namespaceSelector" not in p:
                    out |= {(name, port["port"]) for port in r["ports"]}
        return out

    for n, dep in deps.items():
        pol = pols[n]["spec"]
        assert pol["podSelector"]["matchLabels"] == {"app.kubernetes.io/name": n}
        # Egress inside the namespace: exactly the services this pod is configured to call.
        env = dep["spec"]["template"]["spec"]["containers"][0]["env"]
        called: set[tuple[str, int]] = set()
        for e in env:
            value = e.get("value") or ""
            if e["name"] == "EINDR_GATEWAY_SERVICE_URLS":
                targets = json.loads(value).values()
            else:
                targets = [value]
            for t in targets:
                m = re.fullmatch(r"http://([a-z-]+):(\d+)", t)
                if m:
                    called.add((m.group(1), int(m.group(2))))
        assert peers(pol["egress"]) == called, n
        # Each call is also admitted by the callee's ingress.
        for target, port in called:
            assert (n, port) in peers(pols[target]["spec"]["ingress"]), (n, target)
        # Only the gateway is reachable from the ingress controller.
        from_ingress = any(
            p.get("namespaceSelector", {}).get("matchLabels", {}).get("kubernetes.io/metadata.name") == "ingress-nginx"
            for r in pol["ingress"] for p in r["from"])
        assert from_ingress == (n == "gateway"), n
        # Inference servers reach nothing but DNS (no database, Redis, or internet).
        if kinds[n] == "inference":
            assert pol["egress"] == [], n
    # Every pod resolves names.
    assert pols["allow-dns"]["spec"]["podSelector"] == {}


def test_ingress_enforces_https_and_the_gateway_body_limit():
    from eindr_gateway.config import DEFAULT_BODY_LIMITS

    for overlay in OVERLAYS:
        ing = next(d for d in build(overlay) if d["kind"] == "Ingress")
        ann = ing["metadata"]["annotations"]
        assert ann["nginx.ingress.kubernetes.io/force-ssl-redirect"] == "true"
        assert ing["spec"]["tls"][0]["hosts"] == [ing["spec"]["rules"][0]["host"]]
        assert ing["spec"]["tls"][0]["secretName"]
        size = ann["nginx.ingress.kubernetes.io/proxy-body-size"]
        assert size.endswith("m") and int(size[:-1]) * 1024 * 1024 == max(DEFAULT_BODY_LIMITS.values())
        assert ann["nginx.ingress.kubernetes.io/proxy-request-buffering"] == "off"  # uploads stream to the gateway
        backend = ing["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["name"]
        assert backend == "gateway"
    hsts = yaml.safe_load((K8S / "ingress-nginx" / "controller-configmap.yaml").read_text())["data"]
    assert hsts["hsts"] == "true" and int(hsts["hsts-max-age"]) >= 31536000


def test_secrets_are_referenced_never_committed(rendered):
    name, docs = rendered
    assert not [d for d in docs if d["kind"] == "Secret"], "a Secret with values would be in the repository"
    for dep in deployments(docs):
        pod = dep["spec"]["template"]["spec"]
        for c in pod.get("initContainers", []) + pod["containers"]:
            for e in c.get("env", []):
                if SECRETISH.search(e["name"]) and e["name"] not in ("EINDR_FCM_CREDENTIALS_FILE",):
                    assert "value" not in e and "secretKeyRef" in e["valueFrom"], (name, dep["metadata"]["name"], e["name"])
    for d in docs:
        if d["kind"] == "ConfigMap":
            for key in d.get("data", {}):
                assert not SECRETISH.search(key), (name, d["metadata"]["name"], key)


def test_prod_materialises_every_referenced_secret_through_external_secrets():
    docs = build("prod")
    external = {d["metadata"]["name"]: {x["secretKey"] for x in d["spec"]["data"]} for d in docs if d["kind"] == "ExternalSecret"}
    for dep in deployments(docs):
        for c in dep["spec"]["template"]["spec"].get("initContainers", []) + dep["spec"]["template"]["spec"]["containers"]:
            for e in c.get("env", []):
                ref = e.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    assert ref["key"] in external.get(ref["name"], set()), (dep["metadata"]["name"], ref)


def test_inference_scales_on_its_own_queue_depth():
    docs = build("base")
    hpas = {d["metadata"]["name"]: d for d in docs if d["kind"] == "HorizontalPodAutoscaler"}
    adapter = yaml.safe_load((ROOT / "deploy/monitoring/prometheus-adapter/values.yaml").read_text())["rules"]
    custom = {r["name"]["as"] for r in adapter["custom"]}
    external = {r["name"]["as"] for r in adapter["external"]}
    defined = metric_names()
    for dep in deployments(docs):
        n = dep["metadata"]["name"]
        if dep["metadata"]["labels"]["app.kubernetes.io/component"] != "inference":
            continue
        metrics = hpas[n]["spec"]["metrics"]
        pods = [m["pods"]["metric"]["name"] for m in metrics if m["type"] == "Pods"]
        assert pods == [f"eindr_{n}_queue_depth"], n
        assert pods[0] in defined, f"{pods[0]} is not exported by inference/{n}"
        assert pods[0] in custom, f"the Prometheus adapter does not serve {pods[0]}"
        assert all(m["type"] != "Resource" for m in metrics), n  # CPU is the wrong signal on a GPU
    for h in hpas.values():
        for m in h["spec"]["metrics"]:
            if m["type"] == "External":
                assert m["external"]["metric"]["name"] in external and m["external"]["metric"]["name"] in defined
    # Every adapter rule queries a metric the code exports.
    for r in adapter["custom"] + adapter["external"]:
        assert re.match(r"(eindr_[a-z0-9_]+)", r["seriesQuery"]).group(1) in defined, r


def test_gpu_component_places_inference_on_gpu_nodes():
    prod = {d["metadata"]["name"]: d for d in deployments(build("prod"))}
    dev = {d["metadata"]["name"]: d for d in deployments(build("dev"))}
    gpu_names = [c.name for c in generator().present() if c.gpu]
    assert gpu_names
    for n in gpu_names:
        pod = prod[n]["spec"]["template"]["spec"]
        c = pod["containers"][0]
        assert c["resources"]["limits"]["nvidia.com/gpu"] == "1" and c["resources"]["limits"]["memory"]
        assert pod["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
        assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod["tolerations"]
        assert c["image"].endswith("-cuda"), c["image"]
        assert "nvidia.com/gpu" not in dev[n]["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]
    # Chat on a GPU: host RSS measured at 1516 MiB (deploy/tools/measure_gpu_chat.py, H200).
    chat = prod["chat"]["spec"]["template"]["spec"]["containers"][0]["resources"]
    assert chat["requests"]["memory"] == "2Gi" and chat["limits"]["memory"] == "3Gi"
    # Every GPU-built image has a "gpu" stage in its Dockerfile.
    for n in gpu_names:
        comp = next(c for c in generator().COMPONENTS if c.name == n)
        assert re.search(r"^FROM .* AS gpu$", (ROOT / comp.src / "Dockerfile").read_text(), re.MULTILINE), n


def test_overlays_pin_every_image_they_deploy():
    for overlay in OVERLAYS:
        for dep in deployments(build(overlay)):
            for c in dep["spec"]["template"]["spec"].get("initContainers", []) + dep["spec"]["template"]["spec"]["containers"]:
                assert re.fullmatch(r"ghcr\.io/eindr/[a-z-]+:[\w.-]+", c["image"]), (overlay, c["image"])


def test_namespaces_enforce_the_restricted_pod_security_standard():
    for overlay in OVERLAYS:
        ns = [d for d in build(overlay) if d["kind"] == "Namespace"]
        assert len(ns) == 1
        assert ns[0]["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
        assert all(d["metadata"].get("namespace") == ns[0]["metadata"]["name"]
                   for d in build(overlay) if d["kind"] not in ("Namespace",))


def test_schema_validation_rejects_what_kubernetes_would():
    # The validator is strict: an unknown field, a wrong type and a missing required field fail.
    dep = deployments(build("base"))[0]
    bad = json.loads(json.dumps(dep))
    bad["spec"]["template"]["spec"]["containers"][0]["securityContext"]["readOnlyRootFileSystem"] = True  # typo
    bad["spec"]["replicas"] = "two"
    del bad["spec"]["selector"]
    validator = k8s_validator("Deployment", "apps/v1", K8S_VERSION)
    assert not list(validator.iter_errors(dep))
    messages = " | ".join(e.message for e in validator.iter_errors(bad))
    assert "readOnlyRootFileSystem" in messages and "'two'" in messages and "selector" in messages


def test_docs_of_reads_multi_document_yaml():
    assert [d["kind"] for d in docs_of("kind: A\n---\n---\nkind: B\n")] == ["A", "B"]


def test_fcm_credentials_are_mounted_only_where_push_is_on():
    # EINDR_FCM_CREDENTIALS_FILE set without its file crashes the reminders worker (found by
    # test_pod_sandbox): dev leaves push off; prod requires the Secret.
    prod = {d["metadata"]["name"]: d for d in deployments(build("prod"))}
    dev = {d["metadata"]["name"]: d for d in deployments(build("dev"))}
    external = {d["metadata"]["name"]: d for d in build("prod") if d["kind"] == "ExternalSecret"}
    for n in ("reminders", "reminders-worker"):
        if n not in prod:
            continue
        pod = prod[n]["spec"]["template"]["spec"]
        env = {e["name"]: e.get("value") for e in pod["containers"][0]["env"]}
        path = env["EINDR_FCM_CREDENTIALS_FILE"]
        vol = next(v for v in pod["volumes"] if v["name"] == "fcm")
        assert vol["secret"]["secretName"] == "eindr-reminders-fcm" and not vol["secret"].get("optional")
        mount = next(m for m in pod["containers"][0]["volumeMounts"] if m["name"] == "fcm")
        assert path == mount["mountPath"] + "/credentials.json"
        assert [d["secretKey"] for d in external["eindr-reminders-fcm"]["spec"]["data"]] == ["credentials.json"]
        dev_env = {e["name"] for e in dev[n]["spec"]["template"]["spec"]["containers"][0]["env"]}
        assert "EINDR_FCM_CREDENTIALS_FILE" not in dev_env


def test_every_component_reports_its_release_and_environment_to_sentry():
    # sentry-sdk takes the release from SENTRY_RELEASE; eindr_common passes EINDR_ENV as the
    # environment. CI sets eindr-release to the deployed commit (test_ci).
    for overlay, env_name in (("dev", "test"), ("prod", "production")):
        docs = build(overlay)
        maps = {d["metadata"]["name"]: d["data"] for d in docs if d["kind"] == "ConfigMap"}
        for dep in deployments(docs):
            c = dep["spec"]["template"]["spec"]["containers"][0]
            env = {e["name"]: e for e in c["env"]}
            release = env["SENTRY_RELEASE"]["valueFrom"]["configMapKeyRef"]
            assert release["name"].startswith("eindr-release") and release["key"] in maps[release["name"]]
            common = c["envFrom"][0]["configMapRef"]["name"]
            assert maps[common]["EINDR_ENV"] == env_name, (overlay, dep["metadata"]["name"])
            assert env["EINDR_SENTRY_DSN"]["valueFrom"]["secretKeyRef"]["name"] == "eindr-sentry"
