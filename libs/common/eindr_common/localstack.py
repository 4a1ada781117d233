"""Start the real backing services on a bare machine: PostgreSQL 16 + pgvector from the
``pgserver`` wheel and a local ``redis-server``. Used by ``make run`` and by the tests."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


LOCAL_MAX_CONNECTIONS = 500


def start_postgres(data_dir: Path) -> tuple[object, str]:
    """Returns (server handle, database URL of a database named ``eindr``)."""
    import pgserver

    data_dir.mkdir(parents=True, exist_ok=True)
    server = pgserver.get_server(str(data_dir), cleanup_mode="stop")
    # One local server carries every component's pool (and, in a test process, every
    # service that process has started): initdb's default of 100 connections ran out.
    if int(server.psql("SHOW max_connections").split()[2]) < LOCAL_MAX_CONNECTIONS:
        server.psql(f"ALTER SYSTEM SET max_connections = {LOCAL_MAX_CONNECTIONS}")
        server.cleanup()  # a restart applies it; the setting stays in the data directory
        server = pgserver.get_server(str(data_dir), cleanup_mode="stop")
    exists = server.psql("SELECT 1 FROM pg_database WHERE datname = 'eindr'")
    if "(1 row)" not in exists:
        server.psql("CREATE DATABASE eindr")
    uri = server.get_uri("eindr")
    return server, uri


def redis_server_binary() -> str:
    binary = shutil.which("redis-server") or ("/usr/bin/redis-server" if Path("/usr/bin/redis-server").exists() else None)
    if binary is None:
        raise RuntimeError(
            "redis-server is not installed. On Debian/Ubuntu: `sudo apt-get install redis-server`; "
            "on macOS: `brew install redis`; or set EINDR_REDIS_URL to a running Redis."
        )
    return binary


def start_redis(data_dir: Path, port: int | None = None) -> tuple[subprocess.Popen, str]:
    data_dir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    proc = subprocess.Popen(  # own session: a terminal Ctrl-C is for our supervisor to handle
        [redis_server_binary(), "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(data_dir), "--daemonize", "no", "--loglevel", "warning"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2) as sock:
                sock.sendall(b"PING\r\n")
                if sock.recv(16).startswith(b"+PONG"):
                    return proc, f"redis://127.0.0.1:{port}/0"
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError(f"redis-server did not start on port {port}")


def wait_http(url: str, timeout_s: float = 30.0, proc: subprocess.Popen | None = None) -> None:
    import httpx

    deadline = time.monotonic() + timeout_s
    last: Exception | None = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before {url} answered")
        try:
            if httpx.get(url, timeout=1).status_code < 500:
                return
        except httpx.HTTPError as exc:
            last = exc
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {timeout_s}s: {last}")


def python_env(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EINDR_")}
    # Logs reach their file as they are written, even from a process that is killed.
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env
