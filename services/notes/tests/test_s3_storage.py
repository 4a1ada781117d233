"""Audio in an S3-compatible bucket through boto3: the notes API and worker configured with
EINDR_NOTES_STORAGE=s3 against moto's S3 server (a standalone S3-protocol server, as MinIO
would be), with the real STT server."""

from __future__ import annotations

from collections.abc import Iterator

import boto3
import httpx
import pytest
from eindr_common.testing import auth_headers, new_uid
from eindr_notes import domain

BUCKET = "eindr-notes-test"
CREDS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}


@pytest.fixture(scope="session")
def s3_url() -> Iterator[str]:
    from eindr_common.localstack import free_port
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    url = f"http://127.0.0.1:{port}"
    boto3.client("s3", endpoint_url=url, **{k.lower(): v for k, v in CREDS.items() if k != "AWS_DEFAULT_REGION"},
                 region_name="us-east-1").create_bucket(Bucket=BUCKET)
    yield url
    server.stop()


@pytest.fixture(scope="session")
def s3_stack(start_service, s3_url, redis_url, stt_url, intent_url):
    env = {
        **CREDS,
        "EINDR_REDIS_URL": redis_url.rsplit("/", 1)[0] + "/2",
        "EINDR_STT_URL": stt_url,
        "EINDR_INTENT_URL": intent_url,
        "EINDR_NOTES_STORAGE": "s3",
        "EINDR_NOTES_S3_BUCKET": BUCKET,
        "EINDR_NOTES_S3_ENDPOINT_URL": s3_url,
        "EINDR_NOTES_S3_REGION": "us-east-1",
    }
    api = start_service("notes-s3", "eindr_notes.app:create_app", env=env)
    start_service("notes-s3-worker", "eindr_notes.worker:create_app", env=env)
    return api


def _objects(s3_url: str, prefix: str) -> list[str]:
    s3 = boto3.client("s3", endpoint_url=s3_url, aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1")
    return [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents", [])]


def test_audio_lives_in_the_bucket_and_leaves_with_the_note(client, s3_stack, s3_url, speech, poll):
    uid = new_uid()
    h = auth_headers(uid, "notes")
    audio = speech("Pick up the dry cleaning on Friday")
    r = client.post(s3_stack.url + "/v1/notes", files={"audio": ("a.wav", audio, "audio/wav")}, headers=h)
    assert r.status_code == 201, r.text
    note = r.json()
    key = f"notes-audio/{domain.storage_prefix(uid)}{note['id']}.wav"
    assert _objects(s3_url, "notes-audio/" + domain.storage_prefix(uid)) == [key]
    done = poll(lambda: client.get(f"{s3_stack.url}/v1/notes/{note['id']}", headers=auth_headers(uid, "notes")).json(),
                lambda n: n["status"] != "pending")
    assert done["status"] == "transcribed" and "cleaning" in done["transcript"].lower(), done
    # The URL is the bucket's own presigned URL: it serves the bytes with no Eindr token.
    assert done["audio"]["url"].startswith(s3_url + "/" + BUCKET + "/")
    fetched = httpx.get(done["audio"]["url"])
    assert fetched.status_code == 200 and fetched.content == audio
    assert client.delete(f"{s3_stack.url}/v1/notes/{note['id']}", headers=auth_headers(uid, "notes")).status_code == 204
    assert _objects(s3_url, "notes-audio/" + domain.storage_prefix(uid)) == []
    assert client.get(s3_stack.url + "/readyz").json()["checks"]["storage"] == "ok"
