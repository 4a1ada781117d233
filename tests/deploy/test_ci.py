"""The CI/CD workflow: tests every component, builds an image for every image the
Kubernetes overlays deploy (from that component's Dockerfile and stage), and the staging
deploy pins every image of the dev overlay."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from deploy_helpers import ROOT, build, deployments, generator

WORKFLOW = ROOT / ".github" / "workflows" / "ci.yml"

# One xdist worker builds the overlays once (make test runs -n 2 --dist loadgroup).
pytestmark = pytest.mark.xdist_group("deploy-manifests")


def check_jsonschema(*args: str) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).with_name("check-jsonschema")
    assert exe.exists(), "check-jsonschema is missing: add check-jsonschema to requirements-dev.txt"
    return subprocess.run([str(exe), *args], capture_output=True, text=True, timeout=120, check=False)


def workflow() -> dict:
    return yaml.safe_load(WORKFLOW.read_text())


def test_workflow_matches_the_github_actions_schema():
    # check-jsonschema's vendored SchemaStore schema for workflows (offline), plus its rule
    # that every job sets timeout-minutes (a hung job otherwise holds a runner for 6 h).
    for schema in ("vendor.github-workflows", "custom.github-workflows-require-timeout"):
        proc = check_jsonschema("--builtin-schema", schema, str(WORKFLOW))
        assert proc.returncode == 0, proc.stdout + proc.stderr


def test_workflow_has_the_pipeline_stages_in_order():
    jobs = workflow()["jobs"]
    assert list(jobs) == ["lint", "test", "test-coqui", "images", "deploy-staging", "smoke"]
    assert set(jobs["images"]["needs"]) == {"lint", "test", "test-coqui"}
    assert any(step.get("run") == "make test-coqui" for step in jobs["test-coqui"]["steps"])
    assert jobs["deploy-staging"]["needs"] == "images" and jobs["smoke"]["needs"] == "deploy-staging"
    assert "refs/heads/main" in jobs["deploy-staging"]["if"]
    lint = "\n".join(s.get("run", "") for s in jobs["lint"]["steps"])
    assert "ruff check ." in lint and "mypy" in lint


def test_every_component_is_tested():
    matrix = set(workflow()["jobs"]["test"]["strategy"]["matrix"]["component"])
    sources = {c.src for c in generator().present()} | {"libs/common", "tests"}
    assert sources <= matrix, sorted(sources - matrix)
    assert all((ROOT / m).is_dir() for m in matrix), [m for m in matrix if not (ROOT / m).is_dir()]


def test_every_deployed_image_is_built_from_its_component():
    include = workflow()["jobs"]["images"]["strategy"]["matrix"]["include"]
    built = {(f"ghcr.io/eindr/{i['component']}", i.get("suffix", "")): i for i in include}
    comps = {c.name: c for c in generator().COMPONENTS}
    for dep in deployments(build("prod")):
        image = dep["spec"]["template"]["spec"]["containers"][0]["image"]
        name, tag = image.split(":")
        suffix = "-cuda" if tag.endswith("-cuda") else ""
        assert (name, suffix) in built, image
        entry = built[(name, suffix)]
        src = comps[dep["metadata"]["name"]].src
        assert entry["dockerfile"] == f"{src}/Dockerfile", (image, entry)
        if src.startswith("inference/"):
            assert entry["target"] == ("gpu" if suffix else "cpu"), entry


def test_staging_deploy_pins_every_image_of_the_dev_overlay():
    steps = workflow()["jobs"]["deploy-staging"]["steps"]
    script = next(s["run"] for s in steps if "kustomize edit set image" in s.get("run", ""))
    listed = set(re.search(r"for img in ([a-z -]+); do", script).group(1).split())
    overlay = yaml.safe_load((ROOT / "deploy/k8s/overlays/dev/kustomization.yaml").read_text())
    assert listed == {i["name"].removeprefix("eindr/") for i in overlay["images"]}
    assert "eindr-release" in script  # Sentry release = the deployed commit
    used = {c["image"].split(":")[0].removeprefix("ghcr.io/eindr/") for d in deployments(build("dev"))
            for c in d["spec"]["template"]["spec"]["containers"]}
    assert used <= listed


def test_smoke_test_goes_through_the_gateway():
    steps = workflow()["jobs"]["smoke"]["steps"]
    text = "\n".join(s.get("run", "") for s in steps)
    for check in ("/healthz", "/readyz", "/openapi.json", "strict-transport-security", "problem+json", "/v1/users/me"):
        assert check in text.lower() or check in text, check
