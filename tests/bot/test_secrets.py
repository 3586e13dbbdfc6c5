"""The bot's credentials from compose `secrets:` files (/run/secrets in the container)."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

from bot_service.settings import SECRET_FIELDS, SECRETS_DIR, BotSettings

TOKEN = "mastodon-token-that-must-never-be-printed"
KEY = "gateway-key-that-must-never-be-printed"


@pytest.fixture(autouse=True)
def no_bot_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("BOT_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)  # no stray .env


def secrets_folder(tmp_path: Path, **values: str) -> Path:
    folder = tmp_path / "secrets"
    folder.mkdir()
    for field in SECRET_FIELDS:  # as `make secrets` leaves them: every file, empty
        (folder / f"bot_{field}").write_text("", encoding="utf-8")
    for field, value in values.items():
        (folder / f"bot_{field}").write_text(value + "\n", encoding="utf-8")
    return folder


def test_compose_mounts_secrets_where_the_settings_look() -> None:
    assert Path("/run/secrets") == SECRETS_DIR
    assert BotSettings.model_config.get("secrets_dir") == SECRETS_DIR


def test_a_secret_file_is_read_and_never_shown(tmp_path: Path) -> None:
    folder = secrets_folder(tmp_path, mastodon_access_token=TOKEN, gateway_api_key=KEY)
    settings = BotSettings(_secrets_dir=folder)
    assert settings.mastodon_access_token is not None
    assert settings.mastodon_access_token.get_secret_value() == TOKEN  # trailing newline gone
    assert settings.gateway_api_key is not None
    assert settings.gateway_api_key.get_secret_value() == KEY
    for shown in (
        repr(settings),
        str(settings),
        str(settings.model_dump()),
        settings.model_dump_json(),
        repr(settings.mastodon_access_token),
    ):
        assert TOKEN not in shown and KEY not in shown


def test_an_empty_secret_file_means_not_set(tmp_path: Path) -> None:
    settings = BotSettings(_secrets_dir=secrets_folder(tmp_path))
    for field in SECRET_FIELDS:
        assert getattr(settings, field) is None, field


def test_the_environment_wins_over_a_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = secrets_folder(tmp_path, mastodon_access_token=TOKEN)
    monkeypatch.setenv("BOT_MASTODON_ACCESS_TOKEN", "from-the-environment")
    settings = BotSettings(_secrets_dir=folder)
    assert settings.mastodon_access_token is not None
    assert settings.mastodon_access_token.get_secret_value() == "from-the-environment"


def test_no_secrets_folder_no_warning(tmp_path: Path) -> None:
    """Outside a container there is no /run/secrets: the files are simply not a source."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        settings = BotSettings(_secrets_dir=tmp_path / "absent")
    assert settings.mastodon_access_token is None


def test_the_suite_wide_credential_check_catches_a_leak() -> None:
    """run_bot checks every bot run's output with this; it must be able to fail."""
    from tests.bot.conftest import assert_no_credentials

    env = {"BOT_X_ACCESS_TOKEN_SECRET": "s3cr3t-value", "BOT_GATEWAY_API_KEY": ""}
    assert_no_credentials(env, "posted the reply")
    with pytest.raises(AssertionError, match="BOT_X_ACCESS_TOKEN_SECRET"):
        assert_no_credentials(env, "oauth_token_secret=s3cr3t-value")
