"""The hardened pod settings work with the real processes, not just on paper.

Each selected component runs exactly as its Deployment runs it — the container command (or
the image's CMD from its Dockerfile), the environment the manifests give it (ConfigMap
literals and plain values; secrets replaced by test values) — inside a bubblewrap sandbox
that reproduces the pod's restrictions: uid/gid 10001, a read-only root filesystem, and a
fresh writable /tmp only (the emptyDir). Migrations run first as the `migrate` init
container does. The test passes when the liveness and readiness endpoints the probes call
answer 200: a component that writes outside /tmp, needs root, or misses a setting fails.
Real PostgreSQL and Redis come from the eindr_common test plugin."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import threading
import time
from pathlib import Path

import httpx
import pytest
from deploy_helpers import ROOT, build, deployments, generator
from eindr_common.localstack import free_port

SECRET = "sandbox-internal-token-secret-0123456789abcdef"
# Every component of the dev overlay (what staging runs), workers and inference included.
CASES = [c.name for c in generator().present()]
SANDBOX_UID = 10001
# All components start once, in one xdist worker (make test runs -n 2 --dist loadgroup).
pytestmark = pytest.mark.xdist_group("deploy-sandbox")
FERNET_KEY = "c2FuZGJveC1jYWxlbmRhci1rZXktMDEyMzQ1Njc4OWE="  # urlsafe base64 of 32 bytes


def tcp_database_url(url: str) -> str:
    from urllib.parse import parse_qs, urlsplit

    parts = urlsplit(url)
    hosts = [h for h in parse_qs(parts.query).get("host", []) if h.startswith("/")]
    if not hosts:
        return url
    port = int(parts.port or 5432)
    socket_path = f"{hosts[0]}/.s.PGSQL.{port}"
    loop = asyncio.new_event_loop()

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_unix_connection(socket_path)
        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    server = loop.run_until_complete(asyncio.start_server(handle, "127.0.0.1", 0))
    tcp_port = server.sockets[0].getsockname()[1]
    threading.Thread(target=loop.run_forever, daemon=True, name="pg-forwarder").start()
    user = parts.username or "postgres"
    return f"postgresql://{user}@127.0.0.1:{tcp_port}{parts.path}"


def bwrap() -> str:
    path = shutil.which("bwrap")
    assert path, "bubblewrap is missing: scripts/bootstrap.sh installs Debian's `bubblewrap` package"
    return path


def image_cmd(dockerfile: Path) -> list[str]:
    cmds = re.findall(r"^CMD\s+(\[.*\])\s*$", dockerfile.read_text(), re.MULTILINE)
    return json.loads(cmds[-1])


def image_env(dockerfile: Path, stage: str = "cpu") -> dict[str, str]:
    """ENV of the stage the CPU Deployment runs (multi-stage inference images: `cpu`)."""
    text = dockerfile.read_text()
    m = re.search(rf"^FROM \S+ AS {stage}$(.*?)(?=^FROM |\Z)", text, re.MULTILINE | re.DOTALL)
    body = (m.group(1) if m else text).replace("\\\n", " ")
    env: dict[str, str] = {}
    for line in re.findall(r"^ENV\s+(.+)$", body, re.MULTILINE):
        env.update(dict(re.findall(r"(\w+)=(\S+)", line)))
    env.pop("PATH", None)  # the image's venv; here the test's .venv is used by absolute path
    return env


def configmap_literals() -> dict[str, str]:
    for d in build("dev"):
        if d["kind"] == "ConfigMap" and d["metadata"]["name"].startswith("eindr-common"):
            return dict(d["data"])
    raise AssertionError("no eindr-common ConfigMap")


def sandboxed(cmd: list[str], ro_binds: list[Path]) -> list[str]:
    args = [bwrap(), "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp",
            "--unshare-user", "--uid", str(SANDBOX_UID), "--gid", str(SANDBOX_UID), "--die-with-parent"]
    # The checkout itself (its code and .venv, the image's contents) stays visible even
    # when it lives under /tmp, which the pod's own writable /tmp would otherwise hide.
    args += ["--ro-bind", str(ROOT), str(ROOT)]
    for p in ro_binds:  # test-made files the pod would get from its image or a volume
        args += ["--ro-bind", str(p), str(p)]
    return args + ["--", *cmd]


def with_venv(cmd: list[str]) -> list[str]:
    venv_bin = ROOT / ".venv" / "bin"
    head = venv_bin / cmd[0]
    return [str(head) if head.exists() else cmd[0], *cmd[1:]]


@pytest.fixture(scope="module")
def sandbox_runs(postgres_url, redis_url, tmp_path_factory):
    gen = generator()
    comps = {c.name: c for c in gen.present()}
    deps = {d["metadata"]["name"]: d for d in deployments(build("dev"))}
    common = configmap_literals()
    outside = tmp_path_factory.mktemp("sandbox")
    binds: list[Path] = []
    # pgserver listens only on a Unix socket in a folder the sandbox's user may not enter;
    # a pod reaches its database over TCP, so the sandbox does too, through a forwarder.
    postgres_url = tcp_database_url(postgres_url)
    extra: dict[str, dict[str, str]] = {}
    if "stt" in CASES:
        # The image bakes Whisper base into /opt/models/whisper-base (EINDR_STT_MODEL).
        from eindr_stt.engine import packaged_model_dir

        model = packaged_model_dir(outside / "whisper")
        extra["stt"] = {"EINDR_STT_MODEL": str(model)}
        binds.append(model)
    if "chat" in CASES:
        # The chat-model volume: a tiny Bloom with the same layout as bloom-560m.
        from eindr_chat.checkpoints import build_bloom_checkpoint

        ckpt = build_bloom_checkpoint(outside / "bloom")
        extra["chat"] = {"EINDR_CHAT_MODEL": str(ckpt)}
        binds.append(ckpt)

    runs: dict[str, dict] = {}
    for name in CASES:
        if name not in comps:
            continue
        comp = comps[name]
        pod = deps[name]["spec"]["template"]["spec"]
        container = pod["containers"][0]
        dockerfile = ROOT / comp.src / "Dockerfile"
        env = {k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")}
        env.update(image_env(dockerfile) if dockerfile.exists() else {})
        env.update(common)
        secrets = {"EINDR_INTERNAL_TOKEN_SECRET": SECRET, "EINDR_DATABASE_URL": postgres_url, "EINDR_REDIS_URL": redis_url,
                   "EINDR_FRIENDS_HASH_PEPPER": "sandbox-friends-pepper-0123456789abcdef",
                   "EINDR_CALENDAR_ENCRYPTION_KEYS": FERNET_KEY}
        for e in container["env"]:
            if "value" in e:
                env[e["name"]] = e["value"]
            elif e["name"] in secrets:
                env[e["name"]] = secrets[e["name"]]
        env.update(extra.get(name, {}))
        if env.get("EINDR_NOTES_STORAGE_DIR"):
            # The notes-audio volume (a PVC in dev): writable, here under the sandbox's /tmp.
            env["EINDR_NOTES_STORAGE_DIR"] = "/tmp/notes-audio"
        env.pop("FIREBASE_AUTH_EMULATOR_HOST", None)
        port = free_port()
        if container.get("command"):
            cmd = list(container["command"])
        elif dockerfile.exists():
            cmd = image_cmd(dockerfile)
        else:
            # No image yet: the CMD every component's Dockerfile uses.
            package = next((ROOT / comp.src).glob("eindr_*/app.py")).parent.name
            cmd = ["uvicorn", f"{package}.app:create_app", "--factory", "--host", "0.0.0.0", "--port", str(comp.port),
                   "--no-access-log"]
        if "--port" in cmd:
            cmd[cmd.index("--port") + 1] = str(port)
        if name == "reminders-worker":
            env["EINDR_REMINDERS_WORKER_METRICS_PORT"] = str(port)
        if name == "calendar-worker":
            env["EINDR_CALENDAR_WORKER_METRICS_PORT"] = str(port)
        log = open(outside / f"{name}.log", "wb")  # noqa: SIM115 (the process writes to it until teardown)
        # The `migrate` init container first, in the same sandbox, to completion.
        failed = None
        for init in pod.get("initContainers", []):
            mig_dir = ROOT / comp.src / "migrations"  # the image's /app/migrations
            done = subprocess.run(sandboxed(with_venv(init["command"][:-1]) + [str(mig_dir)], binds),
                                  env=dict(env), stdout=log, stderr=subprocess.STDOUT, timeout=300, check=False)
            if done.returncode != 0:
                failed = f"migrate init step failed:\n{(outside / f'{name}.log').read_text()[-3000:]}"
        if failed:
            runs[name] = {"error": failed}
            continue
        proc = subprocess.Popen(sandboxed(with_venv(cmd), binds), env=env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
        runs[name] = {"proc": proc, "port": port, "container": container, "log": outside / f"{name}.log",
                      # The startup probe's allowance, at least 5 minutes: every component starts
                      # at once here on a 2-core machine shared with other tests.
                      "startup_s": max(comp.startup_s, 300)}
    yield runs
    started = [run for run in runs.values() if "proc" in run]
    for run in started:
        run["proc"].terminate()
    for run in started:
        try:
            run["proc"].wait(15)
        except subprocess.TimeoutExpired:
            run["proc"].kill()


def wait_ok(run: dict, path: str) -> httpx.Response:
    deadline = time.monotonic() + run["startup_s"]
    last: object = None
    while time.monotonic() < deadline:
        if run["proc"].poll() is not None:
            pytest.fail(f"exited with {run['proc'].returncode}:\n{run['log'].read_text()[-4000:]}")
        try:
            r = httpx.get(f"http://127.0.0.1:{run['port']}{path}", timeout=5)
            if r.status_code == 200:
                return r
            last = f"{r.status_code} {r.text[:500]}"
        except httpx.HTTPError as exc:
            last = exc
        time.sleep(0.5)
    pytest.fail(f"{path} never answered 200 within the startup probe's allowance: {last}\n{run['log'].read_text()[-4000:]}")


@pytest.mark.parametrize("name", CASES)
def test_component_serves_its_probes_as_a_hardened_pod(sandbox_runs, name):
    run = sandbox_runs[name]
    if "error" in run:
        pytest.fail(run["error"])
    c = run["container"]
    assert c["securityContext"]["readOnlyRootFilesystem"] and c["securityContext"]["runAsUser"] == SANDBOX_UID
    wait_ok(run, c["livenessProbe"]["httpGet"]["path"])
    wait_ok(run, c["readinessProbe"]["httpGet"]["path"])
    metrics = wait_ok(run, "/metrics").text
    assert "eindr_" in metrics
    log = run["log"].read_text(errors="replace")
    assert "Read-only file system" not in log and "Permission denied" not in log, log[-3000:]
