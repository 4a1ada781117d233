"""A tiny SSE client for the tests: reads a stream in a thread and records the events."""

from __future__ import annotations

import json
import threading

import httpx


class SseReader:
    def __init__(self, url: str, headers: dict[str, str], params: dict | None = None) -> None:
        self.url, self.headers, self.params = url, headers, params or {}
        self.events: list[dict] = []
        self.connected = threading.Event()
        self.status: int | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> SseReader:
        self._thread.start()
        assert self.connected.wait(30), "SSE stream did not connect"
        return self

    def _run(self) -> None:
        try:
            with httpx.Client(timeout=httpx.Timeout(5, read=None)) as client:  # noqa: SIM117
                with client.stream("GET", self.url, headers=self.headers, params=self.params) as response:
                    self.status = response.status_code
                    self.content_type = response.headers.get("content-type", "")
                    self.connected.set()
                    event: dict = {}
                    for line in response.iter_lines():
                        if self._stop.is_set():
                            return
                        if not line:
                            if "data" in event:
                                event["data"] = json.loads(event["data"])
                                self.events.append(event)
                            event = {}
                            continue
                        if line.startswith(":"):
                            continue
                        key, _, value = line.partition(":")
                        event[key] = value.removeprefix(" ")
        except httpx.HTTPError:
            pass
        finally:
            self.connected.set()

    def close(self) -> None:
        self._stop.set()
