"""``Idempotency-Key`` for creating POSTs: the first response is stored in Redis and
replayed verbatim for a retry with the same key and body; the same key with another
body is a 409, as is a retry racing the first attempt."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from .errors import BadRequest, Conflict
from .identity import CurrentUser

HEADER = "idempotency-key"
TTL_S = 24 * 3600
IN_PROGRESS_TTL_S = 60


def _fingerprint(body: Any) -> str:
    return hashlib.sha256(json.dumps(_jsonable(body), sort_keys=True, default=str).encode()).hexdigest()


def _jsonable(value: Any) -> Any:
    # jsonable_encoder dumps a model and then walks the dumped dict again, which for a
    # 1,000-item bulk answer costs tens of milliseconds; a model's own JSON dump is enough.
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, list) and value and all(isinstance(item, BaseModel) for item in value):
        return [item.model_dump(mode="json") for item in value]
    return jsonable_encoder(value)


@dataclass
class Idempotency:
    key: str | None
    redis: Any
    scope: str

    async def run(
        self,
        body: Any,
        produce: Callable[[], Awaitable[Any]],
        *,
        status_code: int = 201,
    ) -> JSONResponse:
        if self.key is None:
            return JSONResponse(_jsonable(await produce()), status_code=status_code)
        redis_key = f"eindr:idem:{self.scope}:{self.key}"
        fingerprint = _fingerprint(body)
        claimed = await self.redis.set(redis_key, json.dumps({"state": "in_progress", "fp": fingerprint}), nx=True, ex=IN_PROGRESS_TTL_S)
        if not claimed:
            stored = json.loads(await self.redis.get(redis_key) or "{}")
            if stored.get("fp") != fingerprint:
                raise Conflict("This Idempotency-Key was used with a different request body", code="idempotency_key_reused")
            if stored.get("state") != "done":
                raise Conflict("A request with this Idempotency-Key is still in progress", code="idempotency_in_progress")
            return JSONResponse(stored["body"], status_code=stored["status"], headers={"idempotent-replayed": "true"})
        try:
            result = _jsonable(await produce())
        except BaseException:
            await self.redis.delete(redis_key)
            raise
        await self.redis.set(
            redis_key, json.dumps({"state": "done", "fp": fingerprint, "status": status_code, "body": result}), ex=TTL_S
        )
        return JSONResponse(result, status_code=status_code)


async def _idempotency(request: Request, user: CurrentUser) -> Idempotency:
    key = request.headers.get(HEADER)
    if key is not None and not (1 <= len(key) <= 255 and key.isprintable()):
        raise BadRequest(
            "Idempotency-Key must be 1 to 255 printable characters",
            code="invalid_idempotency_key",
            errors=[{"field": "Idempotency-Key", "message": "1 to 255 printable characters"}],
        )
    scope = f"{request.app.state.service_name}:{user.uid}:{request.method}:{request.url.path}"
    return Idempotency(key=key, redis=request.app.state.redis, scope=scope)


IdempotencyKey = Annotated[Idempotency, Depends(_idempotency)]


