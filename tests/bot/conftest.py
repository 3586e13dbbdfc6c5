"""Fixtures for the bot tests: the real gateway, fake social networks on 127.0.0.1 (their
servers cannot run here), real photos, bot subprocesses."""

from __future__ import annotations

import io
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import matplotlib
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
# The editable install maps packages found when it ran; until it is re-run after bot_service
# appeared, find the package (and the repo's own) by path. Subprocesses get the same path.
PYTHONPATH = os.pathsep.join([str(ROOT / "bot-service"), str(ROOT)])
CRASH_HOOK = ROOT / "tests" / "support" / "crash_hook"
if str(ROOT / "bot-service") not in sys.path:
    sys.path.insert(0, str(ROOT / "bot-service"))

from bot_service.settings import BotSettings  # noqa: E402
from tests.bot.fakes.bluesky import BOT_HANDLE, PASSWORD, FakeBluesky  # noqa: E402
from tests.bot.fakes.mastodon import TOKEN, FakeMastodon  # noqa: E402
from tests.bot.fakes.twitter import FakeTwitter  # noqa: E402
from tests.bot.fakes.x import FakeX  # noqa: E402
from tests.bot.gateway import CountingGateway  # noqa: E402
from tests.support.captioner import build_captioner  # noqa: E402
from tests.support.servers import free_port, serve  # noqa: E402


@pytest.fixture(scope="session")
def photo() -> bytes:
    """A real photograph (matplotlib's sample of Grace Hopper), shrunk to keep tests quick."""
    path = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
    with Image.open(path) as src:
        img = src.convert("RGB")
    img.thumbnail((160, 160))
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=85)
    return buf.getvalue()


@pytest.fixture(scope="session")
def corrupt_photo(photo: bytes) -> bytes:
    return photo[: len(photo) // 3]  # a truncated JPEG: the header is fine, the pixels are not


@pytest.fixture(scope="session")
def bot_repository(tiny_repository: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    repo = tmp_path_factory.mktemp("bot_models")
    shutil.copytree(tiny_repository / "tiny_en", repo / "tiny_en")
    build_captioner(repo)
    return repo


@pytest.fixture(scope="session")
def services(bot_repository: Path) -> Iterator[tuple[str, str]]:
    """caption-service and textgen-service, loaded once for the session."""
    from caption_service.main import create_app as caption_app
    from caption_service.settings import CaptionSettings
    from textgen_service.main import create_app as textgen_app
    from textgen_service.settings import TextgenSettings

    textgen = TextgenSettings(model_repository=bot_repository, default_model="tiny_en")
    with (
        serve(caption_app(CaptionSettings(model_repository=bot_repository))) as caption_url,
        serve(textgen_app(textgen)) as textgen_url,
    ):
        yield caption_url, textgen_url


@pytest.fixture()
def gateway(services: tuple[str, str]) -> Iterator[CountingGateway]:
    """A fresh real gateway per test (its counters start at zero); Retry-After is 1 s."""
    from gateway_service.main import create_app
    from gateway_service.settings import GatewaySettings

    caption_url, textgen_url = services
    settings = GatewaySettings(
        caption_url=caption_url,
        textgen_url=textgen_url,
        retries=0,
        retry_after_s=1,
        max_new_tokens_limit=500,
    )
    counting = CountingGateway(create_app(settings), dead_url=f"http://127.0.0.1:{free_port()}")
    with serve(counting) as url:
        counting.url = url
        yield counting


@pytest.fixture()
def mastodon() -> Iterator[FakeMastodon]:
    fake = FakeMastodon()
    with serve(fake.app) as url:
        fake.base_url = url
        yield fake


@pytest.fixture()
def bluesky() -> Iterator[FakeBluesky]:
    fake = FakeBluesky()
    with serve(fake.app) as url:
        fake.base_url = url
        yield fake


@pytest.fixture()
def x() -> Iterator[FakeX]:
    fake = FakeX()
    with serve(fake.app) as url:
        fake.base_url = url
        yield fake


@pytest.fixture()
def twitter() -> Iterator[FakeTwitter]:
    fake = FakeTwitter()
    with serve(fake.app) as url:
        fake.base_url = url
        yield fake


def bot_env(tmp_path: Path, gateway: CountingGateway, **overrides: Any) -> dict[str, str]:
    env = {
        "BOT_STATE_PATH": str(tmp_path / "state.sqlite3"),
        "BOT_GATEWAY_URL": gateway.url,
        "BOT_GATEWAY_TIMEOUT_S": "30",
        "BOT_USER_COOLDOWN_S": "0",
        "BOT_BACKOFF_BASE_S": "0.05",
        "BOT_POLL_INTERVAL_S": "0.2",
        # A short lease: a run after a killed one waits for the dead holder's lease to end.
        "BOT_LEASE_TTL_S": "2",
        "BOT_STORY_MAX_NEW_TOKENS": "200",
        "BOT_LOG_FORMAT": "text",
        "BOT_INBOX": str(tmp_path / "inbox"),
        "BOT_OUTBOX": str(tmp_path / "outbox"),
    }
    env.update({f"BOT_{k.upper()}": str(v) for k, v in overrides.items()})
    return env


def mastodon_env(
    tmp_path: Path, gateway: CountingGateway, mastodon: FakeMastodon, **kw: Any
) -> dict:
    return bot_env(
        tmp_path,
        gateway,
        platform="mastodon",
        mastodon_base_url=mastodon.base_url,
        mastodon_access_token=TOKEN,
        media_hosts='["127.0.0.1"]',
        **kw,
    )


def bluesky_env(
    tmp_path: Path, gateway: CountingGateway, bluesky: FakeBluesky, **kw: Any
) -> dict[str, str]:
    settings: dict[str, Any] = {
        "platform": "bluesky",
        "bluesky_service_url": bluesky.base_url,
        "bluesky_handle": BOT_HANDLE,
        "bluesky_app_password": PASSWORD,
        "bluesky_cdn_url": bluesky.base_url,  # one fake plays PDS, AppView, CDN and PLC
        "bluesky_plc_url": bluesky.base_url,
        "media_hosts": '["127.0.0.1"]',
    }
    return bot_env(tmp_path, gateway, **{**settings, **kw})


def x_env(tmp_path: Path, gateway: CountingGateway, x: FakeX, **kw: Any) -> dict[str, str]:
    from tests.bot.fakes import x as fake_x

    return bot_env(
        tmp_path,
        gateway,
        platform="x",
        x_base_url=x.base_url,
        x_api_key=fake_x.API_KEY,
        x_api_secret=fake_x.API_SECRET,
        x_access_token=fake_x.ACCESS_TOKEN,
        x_access_token_secret=fake_x.ACCESS_TOKEN_SECRET,
        media_hosts='["127.0.0.1"]',
        **kw,
    )


def twitter_env(tmp_path: Path, gateway: CountingGateway, twitter: FakeTwitter, **kw: Any) -> dict:
    return bot_env(
        tmp_path,
        gateway,
        platform="twitter-legacy",
        twitter_base_url=f"{twitter.base_url}/1.1",
        twitter_upload_url=f"{twitter.base_url}/1.1",
        # Values no log line could hold by chance: every run checks none is printed.
        twitter_consumer_key="legacy-consumer-key-never-logged",
        twitter_consumer_secret="legacy-consumer-secret-never-logged",
        twitter_access_token="legacy-access-token-never-logged",
        twitter_access_token_secret="legacy-access-secret-never-logged",
        media_hosts='["127.0.0.1"]',
        **kw,
    )


def settings_from(env: dict[str, str]) -> BotSettings:
    """The settings a subprocess with `env` would read, for in-process tests."""
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        return BotSettings(_env_file=None)
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _clean_environ() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOT_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [PYTHONPATH, env.get("PYTHONPATH")]))
    return env


def run_bot(
    env: dict[str, str], cwd: Path, *args: str, crash_at: str | None = None
) -> subprocess.CompletedProcess[str]:
    """`bot-service run --once` (or other args) in a real subprocess, in `cwd` (no stray .env)."""
    full = {**_clean_environ(), **env}
    if crash_at:  # tests/support/crashpoints.py, armed by the hook's sitecustomize
        full["BOT_CRASH_AT"] = crash_at
        full["PYTHONPATH"] = os.pathsep.join([str(CRASH_HOOK), full["PYTHONPATH"]])
    result = subprocess.run(
        [sys.executable, "-m", "bot_service.cli", "run", *(args or ("--once",))],
        env=full,
        cwd=cwd,
        capture_output=True,
        text=True,
    )
    assert_no_credentials(full, result.stdout + result.stderr)
    return result


def assert_no_credentials(env: dict[str, str], output: str) -> None:
    """No credential the bot was given (BOT_ + a secret field) shows in what it printed:
    checked after every bot run of the suite, whatever the platform and log level."""
    from bot_service.settings import SECRET_FIELDS

    for field in SECRET_FIELDS:
        value = env.get(f"BOT_{field.upper()}", "")
        assert not value or value not in output, f"BOT_{field.upper()} appears in the output"


class BotProcess(subprocess.Popen[str]):
    """`bot-service run` in the background, remembering the environment it was given so
    that its output is checked for credentials like every other bot run's."""

    def __init__(self, env: dict[str, str], cwd: Path) -> None:
        self.given = {**_clean_environ(), **env}
        super().__init__(
            [sys.executable, "-m", "bot_service.cli", "run"],
            env=self.given,
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )


def start_bot(env: dict[str, str], cwd: Path) -> BotProcess:
    """`bot-service run` (the loop) in the background."""
    return BotProcess(env, cwd)


def stop_bot(proc: BotProcess) -> tuple[int, str]:
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate()
    assert_no_credentials(proc.given, out)
    return proc.returncode, out
