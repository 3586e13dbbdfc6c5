"""What every fake social network keeps, whatever its protocol: its URL once served, a
lock over its state, ids, the photos it hosts for mentions (its CDN), and the log of the
requests it answered (time, method, path, status) that tests read."""

from __future__ import annotations

import itertools
import threading

from fastapi import FastAPI
from fastapi.responses import Response


class FakeNetwork:
    media_path = "/media"  # where the network's CDN serves photos

    def __init__(self, first_id: int) -> None:
        self.base_url = ""  # set once served
        self.ids = itertools.count(first_id)
        self.lock = threading.Lock()
        self.files: dict[str, tuple[bytes, str]] = {}
        self.requests: list[tuple[float, str, str, int]] = []  # (time, method, path, status)

    def add_file(self, name: str, data: bytes, content_type: str = "image/jpeg") -> str:
        """Host a photo; returns its URL, for a mention to carry."""
        self.files[name] = (data, content_type)
        return f"{self.base_url}{self.media_path}/{name}"

    def serve_files(self, app: FastAPI) -> None:
        @app.get(self.media_path + "/{name}")
        async def files(name: str) -> Response:
            if name not in self.files:
                return Response(status_code=404)
            data, content_type = self.files[name]
            return Response(data, media_type=content_type)
