"""One builder for the stack (talkative/stack.py): `tell`, `caption` and `generate` run the
services' apps in-process through their HTTP API, `serve` runs the same settings as
processes. Each command is run for real here, with the builder watched."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from talkative.cli import main
from talkative.stack import ModelServer, ServiceSpec, Stack, env_of
from tests.gateway.conftest import photo_bytes


@pytest.fixture()
def used(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[str, str, str]]]:
    """(builder method, method, path) of every request the commands make through Stack."""
    seen: list[tuple[str, str, str]] = []

    def watch(name: str) -> None:
        original: Callable[[Stack], Any] = getattr(Stack, name)

        @asynccontextmanager
        async def watched(self: Stack) -> AsyncIterator[httpx.AsyncClient]:
            async with original(self) as client:

                async def log(request: httpx.Request) -> None:
                    seen.append((name, request.method, request.url.path))

                client.event_hooks["request"].append(log)
                yield client

        monkeypatch.setattr(Stack, name, watched)

    for name in ("caption_service", "textgen_service", "gateway"):
        watch(name)
    yield seen


def test_caption_generate_and_tell_go_through_the_services_http_api(
    gateway_repository: Path,
    tmp_path: Path,
    used: list[tuple[str, str, str]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    photo = tmp_path / "cat.png"
    photo.write_bytes(photo_bytes("PNG", (400, 300)))
    models = ("--models-dir", str(gateway_repository))
    assert main(["caption", str(photo), "--beam-size", "2", *models]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 2  # the API's beam_size reached the model
    assert used == [("caption_service", "POST", "/v1/captions")]
    used.clear()
    gen = ["generate", "--model", "tiny_en", "--prompt", "And", "--max-new-tokens", "9"]
    assert main([*gen, "--seed", "1", *models]) == 0
    assert used == [("textgen_service", "POST", "/v1/generations")]
    used.clear()
    card = tmp_path / "card.png"
    tell = ["tell", str(photo), "--model", "tiny_en", "--max-new-tokens", "9"]
    assert main([*tell, "--card", str(card), *models]) == 0
    assert [(n, m) for n, m, _ in used] == [("gateway", "POST"), ("gateway", "GET")]
    assert used[1][2].endswith("/card.png") and card.read_bytes().startswith(b"\x89PNG")


def test_serve_starts_the_processes_the_builder_specifies(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    asked: list[dict[str, Any]] = []
    original = Stack.processes

    def broken(self: Stack, **kwargs: Any) -> list[ServiceSpec]:
        asked.append({"stack": self, **kwargs})
        # Children that cannot start: serve must report the builder's first service.
        return [
            ServiceSpec(s.name, "talkative.no_such_module", s.url, s.env)
            for s in original(self, **kwargs)
        ]

    monkeypatch.setattr(Stack, "processes", broken)
    code = main(["serve", "--models-dir", str(tmp_path), "--port", "18000",
                 "--text-models", "a,b", "--stop-timeout", "5"])  # fmt: skip
    assert code == 1 and "caption-service exited with status 1" in capsys.readouterr().err
    (call,) = asked
    assert call["port"] == 18000 and call["stack"].text_models == ["a", "b"]


def test_processes_carry_the_same_settings_as_environment_variables(tmp_path: Path) -> None:
    stack = Stack(
        tmp_path,
        text_models=["a", "b"],
        model_server=ModelServer("grpc", grpc_port=9500, label="canary", poll_s=0.5),
        log_format="json",
    )
    caption, textgen, gateway = stack.processes(
        host="0.0.0.0", port=8000, caption_port=8001, textgen_port=8002
    )
    assert caption.env["CAPTION_MODEL_REPOSITORY"] == str(tmp_path.resolve())
    assert caption.env["CAPTION_MODEL_BACKEND"] == "grpc"
    assert caption.env["CAPTION_MODEL_SERVER_GRPC_PORT"] == "9500"
    assert caption.env["CAPTION_MODEL_VERSION_LABEL"] == "canary"
    assert caption.env["CAPTION_MODEL_VERSION_POLL_S"] == "0.5"
    assert caption.env["CAPTION_PORT"] == "8001" and caption.env["CAPTION_HOST"] == "127.0.0.1"
    assert json.loads(textgen.env["TEXTGEN_MODELS"]) == ["a", "b"]
    assert gateway.env["GATEWAY_CAPTION_URL"] == caption.url == "http://127.0.0.1:8001"
    assert gateway.env["GATEWAY_TEXTGEN_URL"] == textgen.url
    assert gateway.env["GATEWAY_HOST"] == "0.0.0.0" and gateway.url == "http://127.0.0.1:8000"
    services = ((caption, "CAPTION"), (textgen, "TEXTGEN"), (gateway, "GATEWAY"))
    assert {s.env.get(f"{p}_LOG_FORMAT") for s, p in services} == {"json"}
    # In-process, the very same fields become the settings objects.
    settings = stack.caption_settings()
    assert settings.model_backend == "grpc" and settings.model_server_grpc_port == 9500
    assert stack.textgen_settings().models == ["a", "b"]
    assert stack.gateway_settings().store_url == "memory://"
    assert env_of("X", {"flag": True, "side": 2.0, "path": Path("/")}) == {
        "X_FLAG": "True", "X_SIDE": "2", "X_PATH": "/"
    }  # fmt: skip


def test_caption_decodes_a_big_photo_at_the_services_size(
    gateway_repository: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`talkative caption` reads the photo as caption-service does (no larger than
    CAPTION_IMAGE_MAX_SIDE, 1080): a big photo and its reduced copy caption the same."""
    from talkative_common.images import read_image, to_png

    big = photo_bytes("PNG", (3000, 2000))
    paths = {"big": tmp_path / "big.png", "reduced": tmp_path / "reduced.png"}
    paths["big"].write_bytes(big)
    paths["reduced"].write_bytes(to_png(read_image(big, max_side=1080)))
    printed = {}
    for name, path in paths.items():
        assert main(["caption", str(path), "--models-dir", str(gateway_repository)]) == 0
        printed[name] = capsys.readouterr().out
    assert printed["big"] == printed["reduced"] and printed["big"]
