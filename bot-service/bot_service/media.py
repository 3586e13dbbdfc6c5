"""Safe media download: allowed hosts only, bounded size and time, real images only."""

from __future__ import annotations

import io
import time
import warnings
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import httpx
from PIL import Image

from bot_service.platforms.base import MediaRejected, PlatformUnavailable

if TYPE_CHECKING:
    from bot_service.settings import BotSettings

# Pillow format name -> content type; anything else is refused whatever the header said.
_FORMATS = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp", "GIF": "image/gif"}
MAX_PIXELS = 40_000_000  # decompression bombs stop here, long before the gateway sees them


def check_image(data: bytes, allowed_types: list[str]) -> str:
    """The content type of `data` if it is a whole, allowed image; MediaRejected otherwise."""
    if not data:
        raise MediaRejected("the image is empty")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as img:
                fmt = img.format or ""
                if img.width * img.height > MAX_PIXELS:
                    raise MediaRejected(f"the image is too large ({img.width}×{img.height})")
                img.verify()  # structure and checksums
            with Image.open(io.BytesIO(data)) as img:
                img.load()  # and the pixels themselves: catches truncated files
    except MediaRejected:
        raise
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError, Warning) as exc:
        raise MediaRejected(f"the file is not a readable image ({exc.__class__.__name__})") from exc
    content_type = _FORMATS.get(fmt)
    if content_type is None or content_type not in allowed_types:
        raise MediaRejected(f"images of type {fmt or 'unknown'} are not accepted")
    return content_type


class MediaDownloader:
    def __init__(
        self,
        hosts: list[str],
        *,
        max_bytes: int,
        timeout_s: float,
        allowed_types: list[str],
        client: httpx.Client | None = None,
    ) -> None:
        self.hosts = {h.lower() for h in hosts}
        self.max_bytes, self.timeout_s, self.allowed_types = max_bytes, timeout_s, allowed_types
        # No redirects: a redirect could leave the allowed hosts.
        self.client = client or httpx.Client(follow_redirects=False, timeout=timeout_s)

    @classmethod
    def from_settings(cls, settings: BotSettings, platform_hosts: list[str]) -> MediaDownloader:
        """The bot's limits, and its allow-list (BOT_MEDIA_HOSTS) or else the platform's
        own media hosts."""
        return cls(
            settings.media_hosts or platform_hosts,
            max_bytes=settings.max_media_bytes,
            timeout_s=settings.media_timeout_s,
            allowed_types=settings.media_types,
        )

    def host_allowed(self, url: str) -> bool:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        return parts.scheme in ("http", "https") and any(
            host == h or host.endswith("." + h) for h in self.hosts
        )

    def fetch(self, url: str) -> tuple[bytes, str]:
        if not self.host_allowed(url):
            raise MediaRejected(f"media from {urlsplit(url).hostname or url!r} is not downloaded")
        deadline = time.monotonic() + self.timeout_s
        try:
            with self.client.stream("GET", url) as response:
                if response.status_code == 429 or response.status_code >= 500:
                    raise PlatformUnavailable(f"media host answered {response.status_code}")
                if response.status_code != 200:
                    raise MediaRejected(f"the image could not be fetched ({response.status_code})")
                declared = response.headers.get("content-type", "").split(";")[0].strip().lower()
                if declared and declared not in self.allowed_types:
                    raise MediaRejected(f"files of type {declared} are not accepted")
                length = response.headers.get("content-length")
                if length and length.isdigit() and int(length) > self.max_bytes:
                    raise MediaRejected("the image is larger than I accept")
                body = bytearray()
                for chunk in response.iter_bytes():
                    body += chunk
                    if len(body) > self.max_bytes:
                        raise MediaRejected("the image is larger than I accept")
                    if time.monotonic() > deadline:
                        raise MediaRejected("the image took too long to download")
        except httpx.TimeoutException as exc:
            raise MediaRejected("the image took too long to download") from exc
        except httpx.HTTPError as exc:
            raise PlatformUnavailable(f"media download failed: {exc}") from exc
        data = bytes(body)
        return data, check_image(data, self.allowed_types)

    def close(self) -> None:
        self.client.close()
