"""Helpers of the deploy tests: build overlays with real kustomize, read compose, find the
metrics the code exports."""

from __future__ import annotations

import functools
import importlib.util
import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
MONITORING = ROOT / "deploy" / "monitoring"

# Built by their own images, not ours (compose services without a `build:` are infrastructure).
METRIC_DEF = re.compile(r"\b(Counter|Histogram|Gauge|Summary|Info|Enum)\(\s*[\"'](eindr_[a-z0-9_]+)[\"']", re.DOTALL)
SUFFIXES = {
    "Counter": ["_total", "_created"],
    "Histogram": ["_bucket", "_sum", "_count", "_created"],
    "Summary": ["_sum", "_count", "_created"],
    "Gauge": [""],
    "Info": ["_info"],
    "Enum": [""],
}


@functools.cache
def kustomize_cmd() -> list[str]:
    """Real kustomize (v4+: Components, `labels`): the standalone binary when installed,
    else the one built into kubectl (1.21+ embeds kustomize v4/v5)."""
    if shutil.which("kustomize"):
        return ["kustomize", "build"]
    kubectl = shutil.which("kubectl")
    if kubectl:
        out = subprocess.run([kubectl, "version", "--client"], capture_output=True, text=True, timeout=60, check=False).stdout
        m = re.search(r"Kustomize Version: v(\d+)", out)
        if m and int(m.group(1)) >= 4:
            return [kubectl, "kustomize"]
        raise RuntimeError(f"kubectl's embedded kustomize is too old (need v4+): {out.strip()!r}")
    raise RuntimeError("neither kustomize (v4+) nor kubectl (1.21+) is installed: see deploy/INTEGRATION.md")


def docs_of(text: str) -> list[dict]:
    return [d for d in yaml.safe_load_all(text) if d]


@functools.cache
def _build(target: str) -> str:
    path = K8S / "base" if target == "base" else K8S / "overlays" / target
    proc = subprocess.run([*kustomize_cmd(), str(path)], capture_output=True, text=True, timeout=300, check=False)
    if proc.returncode != 0:
        raise AssertionError(f"kustomize build {path} failed:\n{proc.stderr}")
    return proc.stdout


def build(target: str) -> list[dict]:
    """The rendered documents of `base`, `dev` or `prod` (fresh dicts on every call)."""
    return docs_of(_build(target))


def deployments(docs: list[dict]) -> list[dict]:
    return [d for d in docs if d["kind"] == "Deployment"]


@functools.cache
def generator():
    spec = importlib.util.spec_from_file_location("eindr_deploy_generate", K8S / "generate.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve string annotations through it
    spec.loader.exec_module(module)
    return module


def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def compose_components() -> set[str]:
    """Compose services built from this repository (the rest are images: postgres, redis, ...)."""
    return {name for name, svc in compose()["services"].items() if "build" in svc}


@functools.cache
def metric_definitions() -> dict[str, str]:
    """Metric family name -> type, for every metric the components define in code."""
    out: dict[str, str] = {}
    for top in ("gateway", "services", "inference", "libs"):
        for path in (ROOT / top).rglob("*.py"):
            parts = set(path.relative_to(ROOT).parts)
            if parts & {"tests", "build", ".venv"} or any(p.endswith(".egg-info") for p in parts):
                continue
            for kind, name in METRIC_DEF.findall(path.read_text(errors="replace")):
                out[name] = kind
    return out


def metric_names() -> set[str]:
    """Every series name Prometheus sees from our code (families plus their suffixes)."""
    names: set[str] = set()
    for family, kind in metric_definitions().items():
        base = family[: -len("_total")] if kind == "Counter" and family.endswith("_total") else family
        for suffix in SUFFIXES[kind]:
            names.add(base + suffix)
        names.add(family)
    return names


@functools.cache
def k8s_validator(kind: str, api_version: str, version: str):
    """A jsonschema validator for one kind from kubernetes-validate's bundled (strict)
    schemas, built once: kubernetes_validate.validate() re-reads the schemas per document."""
    import jsonschema
    from kubernetes_validate import utils
    from referencing import Registry, Resource

    schema_version = [v for v in utils.all_versions() if utils.major_minor(v) <= utils.major_minor(version)][-1]
    api = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    folder = f"kubernetes-json-schema/v{schema_version}-local-strict"
    schema = utils.schema_contents(f"{folder}/{kind.lower()}-{api}.json", version)
    definitions = utils.schema_contents(f"{folder}/_definitions.json", version)
    registry = Resource.from_contents(definitions) @ (Resource.from_contents(schema) @ Registry())
    return jsonschema.validators.Draft202012Validator(schema, registry=registry)
