"""Request/response shapes: TEI ``/embed`` and ``/info``, OpenAI ``/v1/embeddings``, ``/classify``."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class EmbedRequest(BaseModel):
    """TEI ``POST /embed``."""

    inputs: str | list[str]
    normalize: bool = True
    truncate: bool = False
    truncation_direction: Literal["Right", "Left", "right", "left"] = "Right"
    prompt_name: str | None = None


class EmbeddingsRequest(BaseModel):
    """OpenAI ``POST /v1/embeddings``."""

    input: str | list[str] | list[int] | list[list[int]]
    model: str | None = None
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: int | None = Field(default=None, ge=1)
    user: str | None = None


class EmbeddingItem(BaseModel):
    object: Literal["embedding"] = "embedding"
    index: int
    embedding: list[float] | str


class Usage(BaseModel):
    prompt_tokens: int
    total_tokens: int


class EmbeddingsResponse(BaseModel):
    object: Literal["list"] = "list"
    data: list[EmbeddingItem]
    model: str
    usage: Usage


class ClassifyRequest(BaseModel):
    text: str = Field(min_length=1, max_length=4000)
    top_k: int = Field(
        default=3, ge=0, le=20, description="How many alternatives to return"
    )


class Alternative(BaseModel):
    intent: str
    confidence: float


class ClassifyResponse(BaseModel):
    intent: str
    confidence: float = Field(
        description="Probability of the top intent (before the out-of-scope threshold)"
    )
    alternatives: list[Alternative]


class IntentsResponse(BaseModel):
    intents: dict[str, str]
    out_of_scope_threshold: float
    held_out_accuracy: float | None
    examples: int
