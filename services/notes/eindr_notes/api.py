"""HTTP routes of the notes service: parse, call a use case, respond."""

from __future__ import annotations

import hashlib
import time
import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from eindr_common.db import DbPool
from eindr_common.errors import (
    BadRequest,
    NotFound,
    PayloadTooLarge,
    UnsupportedMediaType,
)
from eindr_common.idempotency import IdempotencyKey
from eindr_common.identity import CurrentUser
from eindr_common.pagination import Pagination
from eindr_common.redis_client import Redis
from fastapi import APIRouter, Path, Query, Request, Response, status
from pydantic import ValidationError
from starlette.datastructures import UploadFile

from . import domain, repository, service
from .schemas import Note, NoteCreate, NotePage, NotePatch, SearchResult

_PROBLEM = {"description": "Problem details (RFC 9457)", "content": {"application/problem+json": {}}}
_ERRORS = {400: _PROBLEM, 401: _PROBLEM, 404: _PROBLEM, 503: _PROBLEM}

router = APIRouter(prefix="/v1/notes", tags=["notes"], responses=_ERRORS)

NoteId = Annotated[uuid.UUID, Path(description="The note's id")]

_CREATE_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "audio": {"type": "string", "format": "binary", "description": "wav, mp3, ogg/opus, m4a, webm or flac; at most 25 MB"},
                        "text": {"type": "string", "maxLength": domain.MAX_TEXT},
                        "title": {"type": "string", "maxLength": domain.MAX_TITLE},
                        "tags": {"type": "array", "items": {"type": "string"}, "description": "repeated field or comma-separated"},
                        "language": {"type": "string", "description": "ISO 639-1 hint for transcription"},
                    },
                }
            },
            "application/json": {"schema": NoteCreate.model_json_schema()},
        },
    }
}


def _settings(request: Request):
    return request.app.state.settings


def _limited_request(request: Request, limit: int) -> Request:
    """The same request whose body reader stops with a 413 once ``limit`` bytes came in,
    whatever Content-Length claimed (chunked uploads included)."""
    received = 0
    receive = request.receive

    async def counting_receive() -> Any:
        nonlocal received
        message = await receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > limit:
                raise PayloadTooLarge(f"The upload is larger than the {limit // (1024 * 1024)} MB limit", code="audio_too_large")
        return message

    return Request(request.scope, counting_receive)


async def _read_audio(upload: UploadFile, limit: int) -> tuple[bytes, str]:
    data = await upload.read(limit + 1)
    if len(data) > limit:
        raise PayloadTooLarge(f"The audio is larger than the {limit // (1024 * 1024)} MB limit", code="audio_too_large",
                              errors=[{"field": "audio", "message": f"at most {limit} bytes"}])
    if not data:
        raise BadRequest("The audio file is empty", code="empty_audio", errors=[{"field": "audio", "message": "empty file"}])
    fmt = domain.sniff_audio(data[:64])
    if fmt is None:
        raise BadRequest(
            "The upload is not audio in a supported format (wav, mp3, ogg/opus, m4a, webm, flac)",
            code="unsupported_audio_format",
            errors=[{"field": "audio", "message": "not a supported audio format"}],
        )
    return data, fmt


def _form_text(form: Any, name: str) -> str | None:
    values = form.getlist(name)
    if not values:
        return None
    if len(values) > 1 or not isinstance(values[0], str):
        raise BadRequest(f"{name} must be one text field", code="validation_error", errors=[{"field": name, "message": "one text field"}])
    return values[0]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=Note,
    summary="Add a note: audio (multipart) and/or text; transcribed in the background",
    openapi_extra=_CREATE_BODY,
    responses={409: _PROBLEM, 413: _PROBLEM, 415: _PROBLEM},
)
async def create_note(request: Request, user: CurrentUser, pool: DbPool, redis: Redis, idem: IdempotencyKey) -> Any:
    settings = _settings(request)
    limit = settings.notes_max_audio_bytes
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    audio: bytes | None = None
    fmt: str | None = None
    if content_type == "multipart/form-data":
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > limit + 1024 * 1024:
            raise PayloadTooLarge(f"The upload is larger than the {limit // (1024 * 1024)} MB limit", code="audio_too_large",
                                  errors=[{"field": "audio", "message": f"at most {limit} bytes"}])
        limited = _limited_request(request, limit + 1024 * 1024)
        async with limited.form(max_files=1, max_fields=50, max_part_size=1024 * 1024) as form:
            unknown = sorted(set(form.keys()) - {"audio", "text", "title", "tags", "language"})
            if unknown:
                raise BadRequest(f"Unknown field: {unknown[0][:40]!r}", code="validation_error",
                                 errors=[{"field": unknown[0][:40], "message": "unknown field"}])
            upload = form.get("audio")
            if upload is not None:
                if not isinstance(upload, UploadFile):
                    raise BadRequest("audio must be a file", code="validation_error", errors=[{"field": "audio", "message": "a file part"}])
                audio, fmt = await _read_audio(upload, limit)
            tags = [t for t in form.getlist("tags") if isinstance(t, str)]
            fields = {
                "title": _form_text(form, "title"),
                "text": _form_text(form, "text"),
                "tags": domain.split_tag_fields(tags),
                "language": _form_text(form, "language"),
            }
    elif content_type == "application/json":
        try:
            body = NoteCreate.model_validate_json(await request.body())
        except ValidationError as exc:
            errors = [{"field": ".".join(str(p) for p in e["loc"])[:60] or "body", "message": e["msg"]} for e in exc.errors()]
            raise BadRequest("Invalid value for: " + ", ".join(sorted({e["field"] for e in errors})), code="validation_error", errors=errors) from exc
        fields = {"title": body.title, "text": body.text, "tags": body.tags, "language": body.language}
    else:
        raise UnsupportedMediaType("Send multipart/form-data (audio) or application/json (text)", code="unsupported_media_type")

    fingerprint = {**fields, "audio_sha256": hashlib.sha256(audio).hexdigest() if audio is not None else None}

    async def produce() -> dict[str, Any]:
        return await service.create_note(
            pool, redis, request.app.state.storage, user,
            title=fields["title"], text=fields["text"], tags=fields["tags"], language=fields["language"],
            audio=audio, audio_format=fmt,
        )

    return await idem.run(fingerprint, produce)


@router.get("", response_model=NotePage, summary="The caller's notes and the notes friends share with them, newest first")
async def list_notes(
    request: Request,
    user: CurrentUser,
    pool: DbPool,
    page: Pagination,
    tag: Annotated[str | None, Query(max_length=domain.MAX_TAG)] = None,
    created_from: Annotated[datetime | None, Query(alias="from", description="created at or after (RFC 3339)")] = None,
    created_to: Annotated[datetime | None, Query(alias="to", description="created before (RFC 3339)")] = None,
    status_filter: Annotated[Literal["pending", "transcribed", "failed", "ready"] | None, Query(alias="status")] = None,
    scope: Annotated[Literal["all", "own", "shared"], Query(description="own: yours only; shared: friends' notes shared with you only")] = "all",
) -> Any:
    return await service.list_notes(
        pool, request.app.state.storage, request.app.state.friends, user, page,
        tag=tag, created_from=created_from, created_to=created_to, status=status_filter, scope=scope,
    )


@router.get("/search", response_model=SearchResult, summary="Hybrid search: meaning (pgvector) + words (full text), fused by RRF")
async def search_notes(
    request: Request,
    user: CurrentUser,
    pool: DbPool,
    q: Annotated[str, Query(description="1 to 500 characters")],
    limit: Annotated[int, Query(ge=1, le=50)] = 10,
) -> Any:
    return await service.search(pool, request.app.state.storage, request.app.state.embedder, request.app.state.settings, user, q, limit,
                                request.app.state.friends)


@router.get("/{note_id}", response_model=Note, summary="One note (yours, or shared with you by a friend), with a short-lived signed URL of its audio")
async def get_note(request: Request, note_id: NoteId, user: CurrentUser, pool: DbPool) -> Any:
    return await service.get_note(pool, request.app.state.storage, request.app.state.friends, user, note_id)


@router.patch("/{note_id}", response_model=Note, responses={403: _PROBLEM},
              summary="Change title, text or tags (only the fields sent): yours, or a friend's shared with you for editing")
async def patch_note(request: Request, note_id: NoteId, body: NotePatch, user: CurrentUser, pool: DbPool, redis: Redis) -> Any:
    return await service.update_note(pool, redis, request.app.state.storage, request.app.state.friends, user, note_id,
                                     body.model_dump(exclude_unset=True))


@router.delete("/{note_id}", status_code=status.HTTP_204_NO_CONTENT, responses={403: _PROBLEM},
               summary="Delete your note and its audio (idempotent; a friend's shared note: 403)")
async def delete_note(request: Request, note_id: NoteId, user: CurrentUser, pool: DbPool, redis: Redis) -> Response:
    await service.delete_note(pool, redis, request.app.state.storage, request.app.state.friends, user, note_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{note_id}/retry", status_code=status.HTTP_202_ACCEPTED, response_model=Note, responses={403: _PROBLEM, 409: _PROBLEM},
             summary="Transcribe a failed note of yours again")
async def retry_note(request: Request, note_id: NoteId, user: CurrentUser, pool: DbPool, redis: Redis) -> Any:
    return await service.retry_note(pool, redis, request.app.state.storage, request.app.state.friends, user, note_id)


@router.get("/{note_id}/audio", summary="The audio of a note, through a signed URL (no token: the signature is the authorization)",
            response_class=Response, responses={200: {"content": {"audio/*": {}}}})
async def get_audio(
    request: Request,
    note_id: NoteId,
    pool: DbPool,
    expires: Annotated[int, Query()],
    signature: Annotated[str, Query(max_length=128)],
) -> Response:
    storage = request.app.state.storage
    gone = NotFound("This audio link is invalid or has expired", code="audio_link_invalid")
    if not hasattr(storage, "path"):
        raise gone  # S3: URLs are presigned by the bucket itself
    async with pool.acquire() as conn:
        row = await repository.get_note_unscoped(conn, note_id)
    if row is None or not row["audio_key"]:
        raise gone
    if not domain.signature_ok(storage.secret, str(note_id), row["audio_key"], expires, signature, time.time()):
        raise gone
    try:
        data = await storage.get(row["audio_key"])
    except FileNotFoundError as exc:
        raise gone from exc
    return Response(data, media_type=domain.AUDIO_MIME.get(row["audio_format"], "application/octet-stream"),
                    headers={"cache-control": "private, max-age=60", "x-content-type-options": "nosniff"})
