"""One mapping from domain errors to exit codes (talkative/errors.py), in real runs of
every command that reaches the models: 2 bad input, 75 unavailable for now, 1 otherwise."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import httpx
import pytest

from talkative.errors import EXIT_TEMPFAIL, exit_code, from_problem
from talkative_common.errors import InvalidInput, NotFound, TalkativeError, Unavailable
from tests.support.cli import run_talkative
from tests.support.servers import free_port

ROOT = Path(__file__).resolve().parents[2]
# Stands for the photo in the parameters below: the fixture that writes it runs later.
PHOTO = "{photo}"


@pytest.fixture()
def chelsea(offline_photos: Path) -> Path:
    return offline_photos / "chelsea.jpg"


def talkative(
    *args: str, photo: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`talkative ARGS`, PHOTO in ARGS standing for `photo`."""
    args = tuple(str(photo) if a == PHOTO else a for a in args)
    return run_talkative(*args, env=os.environ | (env or {}))


def model_server_down(prefix: str) -> dict[str, str]:
    """The service reaches its models on a model server that is not there."""
    return {
        f"{prefix}_MODEL_BACKEND": "rest",
        f"{prefix}_MODEL_SERVER_REST_PORT": str(free_port()),
        f"{prefix}_MODEL_TIMEOUT_S": "5",
        f"{prefix}_MODEL_RETRIES": "0",
    }


@pytest.mark.parametrize(
    ("args", "prefix"),
    [
        (("caption", PHOTO), "CAPTION"),
        (("generate", "--prompt", "And the king"), "TEXTGEN"),
        (("tell", PHOTO), "CAPTION"),
        (("tell", PHOTO), "TEXTGEN"),
    ],
)
def test_unavailable_models_exit_75(args: tuple[str, ...], prefix: str, chelsea: Path) -> None:
    out = talkative(*args, photo=chelsea, env=model_server_down(prefix))
    assert out.returncode == EXIT_TEMPFAIL, out.stderr
    assert "unavailable" in out.stderr and "Traceback" not in out.stderr and not out.stdout


@pytest.mark.parametrize(
    "args",
    [
        ("caption", PHOTO, "--model", "nope"),
        ("generate", "--prompt", "And", "--model", "nope"),
        ("tell", PHOTO, "--model", "nope"),
    ],
)
def test_unknown_models_exit_2(args: tuple[str, ...], chelsea: Path) -> None:
    out = talkative(*args, photo=chelsea)
    assert out.returncode == 2, out.stderr
    assert "nope" in out.stderr and "Traceback" not in out.stderr


@pytest.mark.parametrize("command", ["caption", "tell"])
def test_a_file_that_is_no_photo_exits_2(command: str, tmp_path: Path) -> None:
    fake = tmp_path / "photo.jpg"
    fake.write_text("not a photo")
    out = talkative(command, str(fake))
    assert out.returncode == 2 and "not a JPEG, PNG, WebP or GIF" in out.stderr


def test_a_model_that_breaks_its_contract_exits_1(tmp_path: Path, chelsea: Path) -> None:
    import tensorflow as tf

    class Wrong(tf.Module):  # takes decoded pixels, not image bytes
        @tf.function(input_signature=[tf.TensorSpec([None, 8, 8, 3], tf.float32)])
        def serve(self, images: tf.Tensor) -> dict[str, tf.Tensor]:
            return {"captions": tf.strings.as_string(images[:, 0, 0, :])}

    version = tmp_path / "captioner" / "1"
    module = Wrong()
    tf.saved_model.save(module, str(version), signatures={"serving_default": module.serve})
    (version / "assets.extra").mkdir()
    (version / "assets.extra" / "model_card.json").write_text('{"kind": "captioner"}')
    out = talkative("caption", PHOTO, "--models-dir", str(tmp_path), photo=chelsea)
    assert out.returncode == 1, out.stderr
    assert "image_bytes" in out.stderr and "Traceback" not in out.stderr


def test_problem_documents_come_back_as_domain_errors() -> None:
    def answer(status: int, **headers: str) -> TalkativeError:
        body = {"status": status, "detail": "why", "errors": [{"field": "f", "message": "m"}]}
        return from_problem(httpx.Response(status, json=body, headers=headers))

    for status in (400, 413, 415, 422):
        assert type(answer(status)) is InvalidInput and exit_code(answer(status)) == 2
    assert answer(422).extra["errors"] == [{"field": "f", "message": "m"}]
    assert type(answer(404)) is NotFound and exit_code(answer(404)) == 2
    for status in (429, 502, 503, 504):
        assert isinstance(answer(status), Unavailable) and exit_code(answer(status)) == 75
    later = answer(503, **{"Retry-After": "9"})
    assert isinstance(later, Unavailable) and later.retry_after_s == 9
    assert type(answer(500)) is TalkativeError and exit_code(answer(500)) == 1
    assert answer(500).detail == "why"
