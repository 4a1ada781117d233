"""HTTP routes: TGI's ``POST /generate``, ``POST /generate_stream`` (SSE), ``POST /``
(routed by ``stream``), ``GET /info``, ``GET /health``.

Errors are problem+json that also carry TGI's ``error`` and ``error_type`` fields, so the
``text-generation`` client and LangChain raise their usual exceptions. No internal JWT
on purpose: a real TGI can replace this server; the network policy (only the assistant
reaches port 8203) is its perimeter."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from eindr_common.errors import BadRequest, Problem, ServiceUnavailable
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from .engine import ChatEngine, Job
from .schemas import GenerateRequest, GenerateResponse

router = APIRouter(tags=["tgi"])


def tgi_problem(
    cls: type[Problem], detail: str, code: str, error_type: str, **kw: Any
) -> Problem:
    return cls(
        detail, code=code, extra={"error": detail, "error_type": error_type}, **kw
    )


def _engine(request: Request) -> ChatEngine:
    return request.app.state.engine


def _validate(engine: ChatEngine, body: GenerateRequest) -> None:
    s = engine.settings
    p = body.parameters
    if not body.inputs.strip():
        raise tgi_problem(
            BadRequest, "`inputs` cannot be empty", "empty_input", "validation"
        )
    if len(body.inputs) > s.chat_max_input_chars:
        raise tgi_problem(
            BadRequest,
            f"`inputs` has {len(body.inputs)} characters; at most {s.chat_max_input_chars}",
            "input_too_long",
            "validation",
        )
    if len(p.stop) > s.chat_max_stop_sequences:
        raise tgi_problem(
            BadRequest,
            f"at most {s.chat_max_stop_sequences} stop sequences",
            "too_many_stop_sequences",
            "validation",
        )
    if p.best_of not in (None, 1):
        raise tgi_problem(
            BadRequest,
            "`best_of` > 1 is not supported by this server",
            "unsupported_parameter",
            "validation",
        )
    if p.grammar is not None:
        raise tgi_problem(
            BadRequest,
            "`grammar` is not supported by this server",
            "unsupported_parameter",
            "validation",
        )
    if p.watermark:
        raise tgi_problem(
            BadRequest,
            "`watermark` is not supported by this server",
            "unsupported_parameter",
            "validation",
        )


async def _admit(engine: ChatEngine, body: GenerateRequest) -> Job:
    _validate(engine, body)
    try:
        job = engine.prepare(body.inputs, body.parameters, asyncio.get_running_loop())
    except ValueError as exc:
        raise tgi_problem(
            BadRequest, str(exc), "invalid_generation_request", "validation"
        ) from exc
    if not engine.try_admit():
        raise tgi_problem(
            ServiceUnavailable,
            "Model is overloaded; retry shortly",
            "overloaded",
            "overloaded",
            headers={"Retry-After": "1"},
        )
    engine.submit(job)
    return job


async def generate_json(engine: ChatEngine, body: GenerateRequest) -> dict[str, Any]:
    job = await _admit(engine, body)
    tokens, tops, prefill = [], [], []
    try:
        while True:
            kind, payload = await job.events.get()
            if kind == "token":
                tokens.append(payload[0])
                if payload[1] is not None:
                    tops.append(payload[1])
            elif kind == "prefill":
                prefill = payload
            elif kind == "error":
                raise tgi_problem(
                    Problem,
                    "Generation failed: " + payload,
                    "generation_failed",
                    "generation",
                    status=500,
                )
            else:
                done = payload
                break
    finally:
        job.cancelled.set()
        engine.release()
    text = done["text"]
    if body.parameters.return_full_text:
        text = body.inputs + text
    out: dict[str, Any] = {"generated_text": text}
    if body.parameters.details:
        out["details"] = {
            "finish_reason": done["reason"],
            "generated_tokens": done["tokens"],
            "seed": job.seed,
            "prefill": prefill,
            "tokens": tokens,
            **({"top_tokens": tops} if tops else {}),
        }
    return out


async def stream_events(engine: ChatEngine, body: GenerateRequest) -> StreamingResponse:
    job = await _admit(engine, body)

    async def events() -> AsyncIterator[bytes]:
        index = 0
        pending: tuple[dict, Any] | None = None
        try:
            while True:
                kind, payload = await job.events.get()
                if kind == "prefill":
                    continue
                if kind == "error":
                    yield _sse(
                        {
                            "error": "Generation failed: " + payload,
                            "error_type": "generation",
                        }
                    )
                    return
                if kind == "token":
                    if pending is not None:
                        index += 1
                        yield _sse(
                            {
                                "index": index,
                                "token": pending[0],
                                "top_tokens": pending[1],
                                "generated_text": None,
                                "details": None,
                            }
                        )
                    pending = payload
                    continue
                # done: the last token carries generated_text and details
                index += 1
                text = payload["text"]
                if body.parameters.return_full_text:
                    text = body.inputs + text
                yield _sse(
                    {
                        "index": index,
                        "token": pending[0]
                        if pending
                        else {
                            "id": engine.eos_id,
                            "text": "",
                            "logprob": None,
                            "special": True,
                        },
                        "top_tokens": pending[1] if pending else None,
                        "generated_text": text,
                        "details": {
                            "finish_reason": payload["reason"],
                            "generated_tokens": payload["tokens"],
                            "seed": job.seed,
                            "input_length": len(job.prompt_ids),
                        },
                    }
                )
                return
        finally:
            job.cancelled.set()  # client gone or finished: free the row
            engine.release()

    return StreamingResponse(
        events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"}
    )


def _sse(data: dict[str, Any]) -> bytes:
    return f"data:{json.dumps(data, ensure_ascii=False)}\n\n".encode()


@router.post(
    "/generate", response_model=GenerateResponse, response_model_exclude_none=True
)
async def generate(body: GenerateRequest, request: Request) -> JSONResponse:
    return JSONResponse(await generate_json(_engine(request), body))


@router.post("/generate_stream")
async def generate_stream(body: GenerateRequest, request: Request) -> StreamingResponse:
    return await stream_events(_engine(request), body)


@router.post("/")
async def compat_generate(body: GenerateRequest, request: Request) -> Response:
    """TGI's compatibility route: SSE when ``stream`` is true, else a one-element list."""
    engine = _engine(request)
    if body.stream:
        return await stream_events(engine, body)
    return JSONResponse([await generate_json(engine, body)])


@router.get("/info")
async def info(request: Request) -> dict[str, Any]:
    engine = _engine(request)
    s = engine.settings
    return {
        "model_id": engine.model_id,
        "model_sha": None,
        "model_dtype": str(engine.dtype).removeprefix("torch."),
        "model_device_type": engine.device,
        "model_pipeline_tag": "text-generation",
        "max_concurrent_requests": s.chat_max_concurrent_requests,
        "max_best_of": 1,
        "max_stop_sequences": s.chat_max_stop_sequences,
        "max_input_tokens": s.chat_max_input_tokens,
        "max_total_tokens": s.chat_max_total_tokens,
        "max_batch_size": s.chat_max_batch_size,
        "validation_workers": 1,
        "max_client_batch_size": 1,
        "router": "eindr-chat",
        "version": "0.1.0",
        "sha": None,
        "docker_label": None,
    }


@router.get("/health")
async def health(request: Request) -> Response:
    """TGI's readiness route (200 once the model answers)."""
    engine = getattr(request.app.state, "engine", None)
    if engine is None or not engine.ready:
        raise tgi_problem(
            ServiceUnavailable, "model not loaded", "not_ready", "unhealthy"
        )
    return Response(status_code=200)
