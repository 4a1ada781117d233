"""Where audio lives: a local directory (a volume) by default, any S3-compatible bucket
through boto3 when ``EINDR_NOTES_STORAGE=s3``. Keys come from ``domain.storage_key``."""

from __future__ import annotations

import asyncio
import os
import shutil
import time
import uuid
from pathlib import Path
from typing import Protocol
from urllib.parse import urlencode

from . import domain
from .settings import NotesSettings


class Storage(Protocol):
    async def put(self, key: str, data: bytes, content_type: str) -> None: ...
    async def get(self, key: str) -> bytes: ...
    async def delete(self, key: str) -> None: ...
    async def delete_prefix(self, prefix: str) -> int: ...
    async def check(self) -> None: ...
    def signed_url(self, note_id: str, key: str, content_type: str) -> tuple[str, int]: ...


class LocalStorage:
    """Files under ``root``; signed URLs point at this service's ``/v1/notes/{id}/audio``
    with an HMAC over (note id, key, expiry)."""

    def __init__(self, root: Path, secret: str, ttl_s: int, public_base_url: str = "") -> None:
        self.root = root.resolve()
        self.secret = secret
        self.ttl_s = ttl_s
        self.base = public_base_url.rstrip("/")
        self.root.mkdir(parents=True, exist_ok=True)

    def path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if self.root not in path.parents:
            raise ValueError("storage key escapes the storage root")
        return path

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        def write() -> None:
            path = self.path(key)
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
            with open(tmp, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)

        await asyncio.to_thread(write)

    async def get(self, key: str) -> bytes:
        return await asyncio.to_thread(self.path(key).read_bytes)

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self.path(key).unlink, missing_ok=True)

    async def delete_prefix(self, prefix: str) -> int:
        directory = self.path(prefix.rstrip("/"))

        def remove() -> int:
            if not directory.exists():
                return 0
            n = sum(1 for p in directory.rglob("*") if p.is_file())
            shutil.rmtree(directory, ignore_errors=True)
            return n

        return await asyncio.to_thread(remove)

    async def check(self) -> None:
        if not os.access(self.root, os.W_OK):
            raise OSError(f"{self.root} is not writable")

    def signed_url(self, note_id: str, key: str, content_type: str) -> tuple[str, int]:
        expires = int(time.time()) + self.ttl_s
        sig = domain.audio_signature(self.secret, note_id, key, expires)
        return f"{self.base}/v1/notes/{note_id}/audio?" + urlencode({"expires": expires, "signature": sig}), expires


class S3Storage:
    """Any S3-compatible bucket (AWS, MinIO, R2, …). Credentials come from boto3's usual
    chain (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, instance role, …)."""

    def __init__(self, bucket: str, prefix: str, ttl_s: int, endpoint_url: str | None, region: str | None) -> None:
        import boto3
        from botocore.config import Config

        self.bucket = bucket
        self.prefix = prefix
        self.ttl_s = ttl_s
        self.client = boto3.client(
            "s3",
            endpoint_url=endpoint_url,
            region_name=region,
            config=Config(
                retries={"max_attempts": 3, "mode": "standard"},
                connect_timeout=3,
                read_timeout=30,
                # Self-hosted S3 (MinIO, …) behind a custom endpoint wants path-style URLs.
                s3={"addressing_style": "path" if endpoint_url else "auto"},
                signature_version="s3v4",
            ),
        )

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        await asyncio.to_thread(
            self.client.put_object, Bucket=self.bucket, Key=self.prefix + key, Body=data, ContentType=content_type
        )

    async def get(self, key: str) -> bytes:
        def read() -> bytes:
            try:
                obj = self.client.get_object(Bucket=self.bucket, Key=self.prefix + key)
            except self.client.exceptions.NoSuchKey as exc:
                raise FileNotFoundError(key) from exc
            return obj["Body"].read()

        return await asyncio.to_thread(read)

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self.client.delete_object, Bucket=self.bucket, Key=self.prefix + key)

    async def delete_prefix(self, prefix: str) -> int:
        def remove() -> int:
            n = 0
            paginator = self.client.get_paginator("list_objects_v2")
            for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix + prefix):
                keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
                if keys:
                    self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": keys, "Quiet": True})
                    n += len(keys)
            return n

        return await asyncio.to_thread(remove)

    async def check(self) -> None:
        await asyncio.to_thread(self.client.head_bucket, Bucket=self.bucket)

    def signed_url(self, note_id: str, key: str, content_type: str) -> tuple[str, int]:
        url = self.client.generate_presigned_url(
            "get_object",
            Params={"Bucket": self.bucket, "Key": self.prefix + key, "ResponseContentType": content_type},
            ExpiresIn=self.ttl_s,
        )
        return url, int(time.time()) + self.ttl_s


def create_storage(settings: NotesSettings) -> Storage:
    if settings.notes_storage == "s3":
        if not settings.notes_s3_bucket:
            raise ValueError("EINDR_NOTES_STORAGE=s3 needs EINDR_NOTES_S3_BUCKET")
        return S3Storage(
            settings.notes_s3_bucket,
            settings.notes_s3_prefix,
            settings.notes_signed_url_ttl_s,
            settings.notes_s3_endpoint_url,
            settings.notes_s3_region,
        )
    return LocalStorage(
        settings.notes_storage_dir,
        settings.internal_token_secret,
        settings.notes_signed_url_ttl_s,
        settings.notes_public_base_url,
    )
