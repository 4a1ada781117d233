"""One OpenAPI document for the whole public API, merged from the services' own.

Each service's ``/v1/...`` paths are taken as they are; its component schemas are
prefixed with the service name (``users.Preferences``) so equal names cannot collide.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx

_REF = "#/components/schemas/"


def _rename_refs(node: Any, prefix: str) -> Any:
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str) and value.startswith(_REF):
                out[key] = _REF + prefix + value[len(_REF):]
            else:
                out[key] = _rename_refs(value, prefix)
        return out
    if isinstance(node, list):
        return [_rename_refs(v, prefix) for v in node]
    return node


def merge_documents(base: dict[str, Any], documents: dict[str, dict[str, Any]]) -> dict[str, Any]:
    merged = {**base, "paths": dict(base.get("paths", {})), "components": {"schemas": dict(base.get("components", {}).get("schemas", {}))}}
    merged["components"]["securitySchemes"] = {"firebase": {"type": "http", "scheme": "bearer", "bearerFormat": "Firebase ID token"}}
    merged["security"] = [{"firebase": []}]
    tags = []
    for service, doc in sorted(documents.items()):
        prefix = f"{service}."
        for path, item in doc.get("paths", {}).items():
            if not path.startswith("/v1/"):
                continue  # health, metrics and internal routes are not public
            item = _rename_refs(item, prefix)
            for operation in item.values():
                if isinstance(operation, dict):
                    operation["tags"] = [service]
            merged["paths"][path] = item
        for name, schema in doc.get("components", {}).get("schemas", {}).items():
            merged["components"]["schemas"][prefix + name] = _rename_refs(schema, prefix)
        tags.append({"name": service, "description": doc.get("info", {}).get("title", service)})
    merged["tags"] = tags
    return merged


class OpenAPIAggregator:
    def __init__(self, service_urls: dict[str, str], refresh_s: float) -> None:
        self._urls = service_urls
        self._refresh_s = refresh_s
        self._docs: dict[str, dict[str, Any]] = {}
        self._fetched_at = 0.0
        self._lock = asyncio.Lock()

    async def documents(self) -> dict[str, dict[str, Any]]:
        if time.monotonic() - self._fetched_at < self._refresh_s:
            return self._docs
        async with self._lock:
            if time.monotonic() - self._fetched_at >= self._refresh_s:
                async with httpx.AsyncClient(timeout=3) as http:
                    results = await asyncio.gather(
                        *(http.get(f"{url}/openapi.json") for url in self._urls.values()), return_exceptions=True
                    )
                docs = {}
                for service, result in zip(self._urls, results):
                    if isinstance(result, httpx.Response) and result.status_code == 200:
                        docs[service] = result.json()
                    elif service in self._docs:
                        docs[service] = self._docs[service]  # keep the last known while it's down
                self._docs = docs
                self._fetched_at = time.monotonic()
        return self._docs
