"""Schemathesis against each service's OpenAPI document, with the service served for real.

caption-service, textgen-service and the gateway run as uvicorn servers on 127.0.0.1 with
the small test models (tests/support/stack.py, the servers of the gateway tests). For
every operation of each document Schemathesis sends its coverage cases (boundaries,
missing, wrong-typed and unknown fields, unsupported methods) and MAX_EXAMPLES generated
requests, valid and invalid, and runs every check it has (ALL_CHECKS) on each answer: no
5xx; status codes, content types, headers and bodies as documented; valid requests
accepted; invalid ones refused; 405 with Allow for undocumented methods.

Photos: a multipart `image` part declares the picture types it may be (its `encoding`),
and the strategies registered below make valid cases real pictures of those types, so the
whole chain runs; invalid cases send other bytes, or no photo, which must be refused with
a documented 4xx.

The documents are loaded at collection, from each app built with the live servers'
settings, and each test first checks that its live server serves that very document.
They cannot be loaded from the live servers (`schemathesis.pytest.from_fixture`): with
pytest 9.2 that loader fails before any test runs (it reads `Function._nodeid`, which
pytest 9.2 no longer has).
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import httpx
import jsonschema_rs
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from PIL import Image
from schemathesis.checks import CHECKS, load_all_checks
from schemathesis.specs.openapi import checks

from caption_service.main import create_app as caption_app
from caption_service.settings import CaptionSettings
from gateway_service.main import create_app as gateway_app
from tests.support.stack import gateway_settings, textgen_settings
from textgen_service.main import create_app as textgen_app

# Generated requests per operation, valid and invalid together; the coverage cases come
# on top. The requests to the three services take under 10 s on two cores.
MAX_EXAMPLES = 30
load_all_checks()
# Reproducing commands show every field (the default hides any named like "token").
CONFIG = schemathesis.Config.from_dict({"output": {"sanitization": {"enabled": False}}})
SETTINGS = settings(
    max_examples=MAX_EXAMPLES,
    # explicit: the coverage cases; generate: the generated ones. No shrinking: a failure
    # is reported as found, with the command that reproduces it.
    phases=[Phase.explicit, Phase.generate],
    derandomize=True,  # the same draws on every run
    database=None,
    deadline=None,  # a story takes what it takes; timing is not checked here
    # Hypothesis finds multipart photos slow and large to draw; the example count, not
    # its health checks, bounds the run.
    suppress_health_check=list(HealthCheck),
)
UNUSED = "http://127.0.0.1:9"  # the documents do not depend on the dependencies' URLs


def _picture(kind: str) -> st.SearchStrategy[bytes]:
    """Small pictures of random pixels, in `kind` (a Pillow format)."""
    modes = ["RGB", "L"] if kind == "JPEG" else ["RGB", "L", "RGBA", "P"]

    @st.composite
    def pictures(draw: st.DrawFn) -> bytes:
        width, height = draw(st.integers(1, 48)), draw(st.integers(1, 48))
        pixels = draw(st.binary(min_size=width * height * 3, max_size=width * height * 3))
        image = Image.frombytes("RGB", (width, height), pixels)
        image = image.convert(draw(st.sampled_from(modes)))
        out = io.BytesIO()
        image.save(out, format=kind)
        return out.getvalue()

    return pictures()


for media_type, kind in [
    ("image/jpeg", "JPEG"),
    ("image/png", "PNG"),
    ("image/webp", "WEBP"),
    ("image/gif", "GIF"),
]:
    schemathesis.openapi.media_type(media_type, _picture(kind))


def _schema(app: Any) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_dict(app.openapi(), config=CONFIG)


caption = _schema(caption_app(CaptionSettings()))
textgen = _schema(textgen_app(textgen_settings(Path("."))))
gateway = _schema(gateway_app(gateway_settings(UNUSED, UNUSED)))


def _files_as_text(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _files_as_text(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_files_as_text(v) for v in value]
    # Exact types: Schemathesis' file values (bytes, its Binary) are no JSON, even a str subclass.
    return value if type(value) in (str, int, float, bool, type(None)) else "a file"


def _as_sent(body: dict[str, Any]) -> dict[str, Any]:
    """A multipart body as it reaches the server: a list is one part per item, so an empty
    list is no part (the field omitted) and a one-item list is that item; file parts as
    text."""
    sent: dict[str, Any] = {}
    for key, value in _files_as_text(body).items():
        if isinstance(value, list) and len(value) < 2:
            if value:
                sent[key] = value[0]
            continue
        sent[key] = value
    return sent


def negative_data_rejection(ctx: Any, response: Any, case: schemathesis.Case) -> bool | None:
    """Schemathesis' check, except that a form body the document allows is not invalid data.

    An invalid case breaks one part of a schema, then Schemathesis checks that the body
    as sent is still invalid. For a multipart body with a file part it cannot (it does
    not validate bytes), so it reports a valid body as "invalid data accepted": seen with
    `style` broken into "", which the document allows (an empty optional form field is
    as if omitted), and `beam_size` broken into [], which multipart sends as no part at
    all. So the body is validated here first as the server receives it (`_as_sent`).
    """
    if case.media_type == "multipart/form-data" and isinstance(case.body, dict):
        content = case.operation.definition.raw["requestBody"]["content"][case.media_type]
        name = content["schema"]["$ref"].rsplit("/", 1)[1]
        form = case.operation.schema.raw_schema["components"]["schemas"][name]
        if jsonschema_rs.validator_for(form).is_valid(_as_sent(case.body)):
            return None
    result: bool | None = checks.negative_data_rejection(ctx, response, case)
    return result


def positive_data_acceptance(ctx: Any, response: Any, case: schemathesis.Case) -> bool | None:
    """Schemathesis' check, except for the one refusal a schema cannot express: a prompt
    the chosen model cannot read at all (no character of its alphabet, or only white
    space), a 422 naming `prompt` that the operation documents."""
    if response.status_code == 422:
        try:
            errors = response.json().get("errors") or []
        except ValueError:
            errors = []
        if errors and all(e.get("field") == "prompt" for e in errors):
            return None
    result: bool | None = checks.positive_data_acceptance(ctx, response, case)
    return result


# Every check Schemathesis registers (max_response_time, a wall-clock limit, is not one),
# negative_data_rejection and positive_data_acceptance as above.
WRAPPED: dict[Any, Any] = {
    checks.negative_data_rejection: negative_data_rejection,
    checks.positive_data_acceptance: positive_data_acceptance,
}
ALL_CHECKS: list[Any] = [
    WRAPPED.get(check, check) for check in CHECKS.get_all() if not isinstance(check, type)
]


def _live(url: str, schema: schemathesis.BaseSchema) -> str:
    """`url`, once its /openapi.json has been found to be the document under test."""
    served = httpx.get(f"{url}/openapi.json", timeout=30).json()
    assert served == schema.raw_schema, "the live server serves another document"
    return url


@pytest.fixture(scope="module")
def caption_base(caption_url: str) -> str:
    return _live(caption_url, caption)


@pytest.fixture(scope="module")
def textgen_base(textgen_url: str) -> str:
    return _live(textgen_url, textgen)


@pytest.fixture(scope="module")
def gateway_base(gateway_url: str) -> str:
    return _live(gateway_url, gateway)


@caption.parametrize()
@SETTINGS
def test_caption_service(case: schemathesis.Case, caption_base: str) -> None:
    case.call_and_validate(base_url=caption_base, checks=ALL_CHECKS)


@textgen.parametrize()
@SETTINGS
def test_textgen_service(case: schemathesis.Case, textgen_base: str) -> None:
    case.call_and_validate(base_url=textgen_base, checks=ALL_CHECKS)


@gateway.parametrize()
@SETTINGS
def test_gateway(case: schemathesis.Case, gateway_base: str) -> None:
    case.call_and_validate(base_url=gateway_base, checks=ALL_CHECKS)


def test_happy_paths_answer_as_documented(textgen_base: str, gateway_base: str) -> None:
    """What generated requests hardly reach, by the same checks: a generation (a model name
    is any string, and the models here are not the documented default) and a card."""
    request: Any = {"prompt": "And the king said", "model": "tiny_en", "max_new_tokens": 5}
    for schema, base in ((textgen, textgen_base), (gateway, gateway_base)):
        case = schema["/v1/generations"]["POST"].Case(body=request)
        assert case.call_and_validate(base_url=base, checks=ALL_CHECKS).status_code == 200

    photo = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 120, 40)).save(photo, format="PNG")
    form: Any = {"image": photo.getvalue(), "max_new_tokens": 20, "seed": 7}
    case = gateway["/v1/stories"]["POST"].Case(body=form, media_type="multipart/form-data")
    story = case.call_and_validate(base_url=gateway_base, checks=ALL_CHECKS)
    assert story.status_code == 200
    card = gateway["/v1/stories/{story_id}/card.png"]["GET"].Case(
        path_parameters={"story_id": story.json()["id"]}
    )
    answer = card.call_and_validate(base_url=gateway_base, checks=ALL_CHECKS)
    assert answer.status_code == 200 and answer.content.startswith(b"\x89PNG")
