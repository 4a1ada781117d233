"""HTTP routes: TEI ``/embed`` + ``/info``, OpenAI ``/v1/embeddings``, ``/classify``.

No internal JWT on purpose: the server speaks TEI's and OpenAI's public protocols so a
real TEI can replace it; the network policy (only the assistant and notes services reach
port 8202) is its perimeter."""

from __future__ import annotations

import base64

import numpy as np
import orjson
from eindr_common.errors import BadRequest, PayloadTooLarge
from fastapi import APIRouter, Request, Response

from .engine import IntentEngine, check_lengths, normalize
from .schemas import (
    Alternative,
    ClassifyRequest,
    ClassifyResponse,
    EmbeddingsRequest,
    EmbeddingsResponse,
    EmbedRequest,
    IntentsResponse,
)

router = APIRouter()


def _json(content: object) -> Response:
    """Serialised by orjson straight from the float32 arrays: each float is written as the
    shortest text that reads back as the same float32 (what TEI sends), about half the bytes
    of Python's float64 repr, and no pydantic pass over 384 floats per text. Returning a
    Response skips FastAPI's response_model validation; the models stay for the OpenAPI."""
    return Response(
        orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY),
        media_type="application/json",
    )


def _engine(request: Request) -> IntentEngine:
    return request.app.state.engine


def _validate_texts(engine: IntentEngine, texts: list[str], field: str) -> None:
    s = engine.settings
    if not texts:
        raise BadRequest(f"`{field}` is an empty list.", code="empty_input")
    if len(texts) > s.intent_max_client_batch_size:
        raise PayloadTooLarge(
            f"{len(texts)} inputs in one request; at most {s.intent_max_client_batch_size}.",
            code="batch_too_large",
        )
    for i, text in enumerate(texts):
        if not text.strip():
            raise BadRequest(f"`{field}`[{i}] is empty.", code="empty_input")
        if len(text) > s.intent_max_input_chars:
            raise PayloadTooLarge(
                f"`{field}`[{i}] has {len(text)} characters; at most {s.intent_max_input_chars}.",
                code="input_too_long",
            )


@router.post("/embed", response_model=list[list[float]], tags=["tei"])
async def embed(body: EmbedRequest, request: Request) -> Response:
    engine = _engine(request)
    texts = [body.inputs] if isinstance(body.inputs, str) else body.inputs
    _validate_texts(engine, texts, "inputs")
    check_lengths(engine.embedder, texts, body.truncate)
    vectors = await engine.batcher.embed(texts)
    if body.normalize:
        vectors = normalize(vectors)
    return _json(np.ascontiguousarray(vectors, dtype=np.float32))


@router.post("/v1/embeddings", response_model=EmbeddingsResponse, tags=["openai"])
async def embeddings(body: EmbeddingsRequest, request: Request) -> Response:
    engine = _engine(request)
    raw = body.input
    if isinstance(raw, str):
        texts = [raw]
    elif raw and all(isinstance(x, str) for x in raw):
        texts = list(raw)  # type: ignore[arg-type]
    elif not raw:
        raise BadRequest("`input` is an empty list.", code="empty_input")
    else:
        raise BadRequest(
            "Token-id input is not supported: send text (LangChain: OpenAIEmbeddings(check_embedding_ctx_length=False)).",
            code="token_input_unsupported",
        )
    if body.model and body.model not in {
        engine.settings.intent_model_name,
        "all-MiniLM-L6-v2",
        "text-embedding-ada-002",
    }:
        raise BadRequest(
            f"Unknown model {body.model!r}; this server runs {engine.settings.intent_model_name!r}.",
            code="unknown_model",
        )
    if body.dimensions is not None and body.dimensions > engine.embedder.dimensions:
        raise BadRequest(
            f"`dimensions` is at most {engine.embedder.dimensions}.",
            code="invalid_dimensions",
        )
    _validate_texts(engine, texts, "input")
    check_lengths(engine.embedder, texts, truncate=False)
    vectors = await engine.batcher.embed(texts)
    if body.dimensions is not None:
        vectors = vectors[:, : body.dimensions]
    vectors = np.ascontiguousarray(normalize(vectors), dtype=np.float32)
    tokens = sum(engine.embedder.token_counts(texts))
    data = [
        {
            "object": "embedding",
            "index": i,
            "embedding": base64.b64encode(v.astype("<f4").tobytes()).decode()
            if body.encoding_format == "base64"
            else v,
        }
        for i, v in enumerate(vectors)
    ]
    return _json(
        {
            "object": "list",
            "data": data,
            "model": engine.settings.intent_model_name,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }
    )


@router.post("/classify", response_model=ClassifyResponse, tags=["intent"])
async def classify(body: ClassifyRequest, request: Request) -> ClassifyResponse:
    engine = _engine(request)
    if not body.text.strip():
        raise BadRequest("`text` is blank.", code="empty_input")
    vectors = await engine.batcher.embed([body.text])
    pred = engine.classifier.predict(vectors, top_k=body.top_k)[0]
    return ClassifyResponse(
        intent=pred.intent,
        confidence=pred.confidence,
        alternatives=[
            Alternative(intent=i, confidence=c) for i, c in pred.alternatives
        ],
    )


@router.get("/intents", response_model=IntentsResponse, tags=["intent"])
async def intents(request: Request) -> IntentsResponse:
    engine = _engine(request)
    return IntentsResponse(
        intents=engine.examples.descriptions,
        out_of_scope_threshold=engine.classifier.threshold,
        held_out_accuracy=engine.held_out_accuracy,
        examples=len(engine.examples.train_texts),
    )


@router.get("/info", tags=["tei"])
async def info(request: Request) -> dict:
    engine = _engine(request)
    s = engine.settings
    return {
        "model_id": s.intent_model_name,
        "model_sha": None,
        "model_dtype": "float32",
        "model_type": {"embedding": {"pooling": "mean"}},
        "max_concurrent_requests": s.intent_max_queue,
        "max_input_length": engine.embedder.max_seq_length,
        "max_batch_tokens": s.intent_max_batch_size * engine.embedder.max_seq_length,
        "max_batch_requests": s.intent_max_batch_size,
        "max_client_batch_size": s.intent_max_client_batch_size,
        "auto_truncate": False,
        "tokenization_workers": 1,
        "version": "eindr-intent 0.1.0",
        "dimensions": engine.embedder.dimensions,
        "device": engine.embedder.device,
    }
