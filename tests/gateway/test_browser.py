"""The web page end to end in headless Chromium (Debian's), against the real stack."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from gateway_service.main import create_app
from tests.gateway.conftest import gateway_settings
from tests.gateway.test_api import styled_textgen
from tests.support.servers import serve

pytestmark = pytest.mark.browser
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if CHROMIUM is None:
        pytest.fail("headless Chromium is needed: apt-get install -y chromium")
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
    with sync_api.sync_playwright() as p:
        # Debian's Chromium, never a downloaded browser.
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield b
        b.close()


@contextmanager
def open_page(browser: Any, url: str) -> Iterator[Any]:
    context = browser.new_context()
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(url + "/")
    yield page
    context.close()
    assert not errors, errors


@pytest.fixture()
def page(browser: Any, gateway_url: str) -> Iterator[Any]:
    """The page of the whole stack."""
    with open_page(browser, gateway_url) as p:
        yield p


@pytest.fixture()
def edge_page(browser: Any, down_url: str, textgen_url: str) -> Iterator[Any]:
    """The page of a gateway whose caption-service is down: for what the edge refuses."""
    with (
        serve(create_app(gateway_settings(down_url, textgen_url))) as url,
        open_page(browser, url) as p,
    ):
        yield p


def style_options(page: Any) -> list[str]:
    return [o.get_attribute("value") for o in page.locator("#style option").all()]


@pytest.fixture()
def styled_page(browser: Any, down_url: str) -> Iterator[Any]:
    """The page of a gateway whose textgen lists models trained with style tokens."""
    with (
        serve(styled_textgen([])) as textgen,
        serve(create_app(gateway_settings(down_url, textgen))) as url,
        open_page(browser, url) as p,
    ):
        yield p


def test_the_styles_are_the_chosen_models(styled_page: Any) -> None:
    page = styled_page
    page.wait_for_selector("#model option[value='gpt2_es']", state="attached")
    # The default model's genres, auto (its first) and plain.
    assert page.input_value("#model") == "gpt2_en"
    assert style_options(page) == ["auto", "bible", "novel", "play", "plain"]
    assert "Bible" in page.inner_text("#style option[value='auto']")
    page.select_option("#style", "play")
    page.select_option("#model", "gpt2_es")
    assert style_options(page) == ["auto", "bible", "plain"]
    assert page.input_value("#style") == "auto"  # play is not a style of gpt2_es
    page.select_option("#style", "plain")
    page.select_option("#model", "old_en")  # no style tokens: the usual frames
    assert style_options(page) == ["auto", "verse", "screenplay", "tale", "plain"]
    assert page.input_value("#style") == "plain"  # kept: the new model has it too


def test_photo_to_story_and_card(page: Any, tmp_path: Path, jpeg: bytes) -> None:
    photo = tmp_path / "chelsea.jpg"
    photo.write_bytes(jpeg)
    page.wait_for_selector("#model option[value='tiny_en']", state="attached")
    page.select_option("#model", "tiny_en")
    # The test stack's tiny models have no style tokens: the five frames of index.html.
    assert style_options(page) == ["auto", "verse", "screenplay", "tale", "plain"]
    page.select_option("#style", "verse")
    page.set_input_files("#image", str(photo))
    page.wait_for_selector("#preview", state="visible", timeout=0)  # shown once it has loaded
    page.click("#tell")
    page.wait_for_selector("#result", state="visible", timeout=0)
    caption = page.inner_text("#caption")
    story = page.inner_text("#story")
    assert caption and story.startswith("And it came to pass")
    assert not page.is_visible("#error")
    # The card loads and is the social-network size; it can be downloaded.
    # A property check, not wait_for_function: the page's CSP forbids the eval that needs.
    expect(page.locator("#card")).to_have_js_property("complete", True, timeout=0)
    width = page.evaluate("document.getElementById('card').naturalWidth")
    assert width == 1080
    assert caption in page.get_attribute("#card", "alt")
    with page.expect_download() as download:
        page.click("#download")
    saved = tmp_path / "card.png"
    download.value.save_as(saved)
    assert saved.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bad_file_is_explained(edge_page: Any, tmp_path: Path) -> None:
    page = edge_page
    fake = tmp_path / "holiday.jpg"
    fake.write_text("this is not a photo at all\n" * 10)
    page.wait_for_selector("#model option[value='tiny_en']", state="attached")
    # Sent as image/jpeg by its name: the server's answer must be shown in words.
    page.set_input_files("#image", str(fake))
    page.click("#tell")
    page.wait_for_selector("#error", state="visible", timeout=0)
    assert "JPEG, PNG, WebP or GIF" in page.inner_text("#error")
    assert page.is_enabled("#tell")


def test_no_photo_chosen(edge_page: Any) -> None:
    edge_page.click("#tell")
    assert edge_page.inner_text("#error") == "Choose a photo first."


def test_dependency_down_is_explained(edge_page: Any, tmp_path: Path, jpeg: bytes) -> None:
    photo = tmp_path / "chelsea.jpg"
    photo.write_bytes(jpeg)
    edge_page.wait_for_selector("#model option[value='tiny_en']", state="attached")
    edge_page.set_input_files("#image", str(photo))
    edge_page.click("#tell")
    edge_page.wait_for_selector("#error", state="visible", timeout=0)
    message = edge_page.inner_text("#error")
    assert "caption-service is unavailable" in message and "Try again in 7 s" in message
