"""Deployment files of notes and history: the compose services validate offline against
the root docker-compose.yml, and the images run as a non-root user with a healthcheck."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def test_compose_snippet_validates_with_the_root_file():
    compose = shutil.which("docker-compose")
    assert compose, "Debian's docker-compose package validates compose files offline"
    out = subprocess.run(
        [compose, "-f", "docker-compose.yml", "-f", "services/notes/compose.notes-history.yml", "config"],
        cwd=ROOT, capture_output=True, text=True, check=False,
    )
    assert out.returncode == 0, out.stderr
    for name in ("notes:", "notes-worker:", "history:", "history-worker:"):
        assert f"\n  {name}" in out.stdout


def test_dockerfiles_are_multistage_non_root_with_healthcheck():
    for svc in ("notes", "history"):
        text = (ROOT / "services" / svc / "Dockerfile").read_text()
        assert text.count("FROM python:3.11-slim") == 2
        assert "USER 10001" in text and "HEALTHCHECK" in text and "urllib.request" in text
        assert f"eindr_{svc}.app:create_app" in text and "COPY libs/common" in text
