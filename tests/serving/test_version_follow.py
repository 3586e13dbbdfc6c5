"""Services follow the model version their label points at, and switch without a restart.

The services address models by TF Serving version label; each request is served by
one version whose graph, card and vocabulary belong together. Version 2 of the
text model is trained on a different text, so its vocabulary differs from
version 1's, and version 2 of the captioner spells its words differently: an
answer shows which version produced it. Version 3 of the text model breaks the
`generate` contract.

The model server is `talkative model-server` in a child process, driven only as an
operator drives TF Serving: by editing its models.config, which it re-reads every
poll. The must-show rollouts use the operator's commands (`talkative models promote`
and `rollback`); `Rollout` makes the other edits in the same safe order (list the
version, wait until it is AVAILABLE, then move the label), since TF Serving refuses to
move a label in use onto a version that is not loaded.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from caption_service.main import create_app as caption_app
from caption_service.settings import CaptionSettings
from talkative.cli import main as talkative_main
from talkative_common.model_client import (
    FollowedVersion,
    Inputs,
    ModelClient,
    ModelNotFound,
    ModelUnavailable,
    Outputs,
    SignatureInfo,
    version_poll_interval,
)
from talkative_common.settings import ModelServiceSettings
from tests.model_server.grpc_client import Stubs
from tests.support.captioner import CAPTIONS, build_captioner, photo
from tests.support.model_server import ModelServerProcess, write_config
from tests.support.servers import serve
from tests.support.text_models import (
    export_broken_generate,
    train_tiny_char_lstm,
    write_tiny_corpus,
)
from textgen_service.main import create_app as textgen_app
from textgen_service.settings import TextgenSettings

T = TypeVar("T")
MODEL = "tiny_en"
POLL_S = 0.05  # how often the services under test re-resolve their version
WAIT_S = 120.0  # generous bound on waiting for a switch; never a measure of speed
# Characters tiny_en v1 never saw (its text is tests/conftest.py TINY_TEXT); v2 saw them all.
V2_TEXT = (
    "Quiz 42: Zebras quickly jumped over 7 boxes? Yes, 1984 quixotic zebras!\n"
    "Six jovial wizards vexed the dozy king of Quebec; 365 days, 24 hours.\n"
)
PROMPT = "Quiz 42 Zebras"
REQUEST = {"prompt": PROMPT, "model": MODEL, "max_new_tokens": 30, "temperature": 0.9, "seed": 7}
FOLLOWED = "talkative_common.model_client.followed"


# --- the model server's side of a rollout --------------------------------------------------


class Rollout:
    """The models.config of a running model server, for one model, edited the safe way."""

    def __init__(self, server: ModelServerProcess, repository: Path, model: str) -> None:
        self.server, self.repository, self.model = server, repository, model
        self.stubs = Stubs(server.grpc_target)
        self.served: set[int] = {1}
        self.labels: dict[str, int] = {"stable": 1, "canary": 1}

    def write(self, *, served: set[int], labels: dict[str, int]) -> None:
        """One edit of models.config, as an operator would save it."""
        self.served, self.labels = set(served), dict(labels)
        write_config(
            self.server.config_file,
            self.repository,
            {self.model: sorted(served)},
            {self.model: labels},
        )

    def available(self) -> set[int]:
        status = self.stubs.status_or_error(self.model)
        if isinstance(status, str):
            return set()
        return {v for v, (state, _) in status.items() if state == "AVAILABLE"}

    def set(self, *, served: set[int], stable: int) -> None:
        """List first and wait for AVAILABLE, then move `stable`, then unlist the rest."""
        self.write(served=self.served | served, labels=self.labels)
        wait_for(self.available, lambda got: served <= got, f"versions {sorted(served)} AVAILABLE")
        self.write(served=self.served, labels=self.labels | {"stable": stable, "canary": stable})
        wait_for(
            lambda: self.stubs.label_version(self.model, "stable"),
            lambda v: v == stable,
            f"stable on v{stable} at the server",
        )
        self.write(served=served, labels=self.labels)

    def close(self) -> None:
        self.stubs.close()


def model_server(root: Path, model: str, workdir: Path) -> ModelServerProcess:
    config = write_config(
        workdir / "models.config", root, {model: [1]}, {model: {"stable": 1, "canary": 1}}
    )
    return ModelServerProcess(config, poll_s=POLL_S * 4)


@pytest.fixture()
def rollout(textgen_versions: Path, tmp_path: Path) -> Iterator[Rollout]:
    with model_server(textgen_versions, MODEL, tmp_path) as server:
        control = Rollout(server, textgen_versions, MODEL)
        yield control
        control.close()


@pytest.fixture()
def caption_rollout(caption_versions: Path, tmp_path: Path) -> Iterator[Rollout]:
    with model_server(caption_versions, "captioner", tmp_path) as server:
        control = Rollout(server, caption_versions, "captioner")
        yield control
        control.close()


# --- model versions ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def textgen_versions(tiny_repository: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tiny_en v1 (tiny_repository's), v2 (trained on V2_TEXT), v3 (breaks the contract)."""
    from training.char_lstm.export import export_run

    corpus = write_tiny_corpus(tmp_path_factory.mktemp("v2_corpus"), V2_TEXT, "tiny2")
    run = train_tiny_char_lstm(corpus, tmp_path_factory.mktemp("v2_run"))
    root = tmp_path_factory.mktemp("textgen_versions")
    shutil.copytree(tiny_repository / MODEL / "1", root / MODEL / "1")
    export_run(run, root / MODEL / "2", name=MODEL, language="en")
    export_broken_generate(root / MODEL / "3", assets=root / MODEL / "1" / "assets.extra")

    v1, v2 = (_alphabet(root / MODEL / v) for v in ("1", "2"))
    assert set(PROMPT) <= v2 and not set(PROMPT) <= v1, "the versions must read PROMPT apart"
    return root


def _alphabet(version_dir: Path) -> set[str]:
    import json

    vocab = version_dir / "assets.extra" / "vocab.json"
    return set(json.loads(vocab.read_text(encoding="utf-8"))["chars"])


@pytest.fixture(scope="module")
def caption_versions(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """captioner v1 (the test captioner) and v2: the same network, its words in capitals."""
    from tests.support.captioner import _trained
    from training import serving_warmup
    from training.captioner.export import Captioner, export_captioner
    from training.captioner.vocab import SPECIALS, WordVocab

    root = tmp_path_factory.mktemp("caption_versions")
    build_captioner(root)
    encoder, decoder, vocab = _trained()
    shouted = WordVocab((*SPECIALS, *(w.upper() for w in vocab.words[len(SPECIALS) :])))
    version = root / "captioner" / "2"
    export_captioner(
        Captioner(encoder, decoder, shouted, beam_size=3, max_len=12),
        shouted,
        version,
        {"name": "captioner", "language": "en", "training_corpus": {"name": "three photos"}},
    )
    serving_warmup.write_warmup(version, (1, 2), verify=False)
    return root


@pytest.fixture(scope="module")
def references(textgen_versions: Path) -> dict[int, dict[str, Any]]:
    """REQUEST answered by in-process services pinned to v1 and to v2: what each version says."""
    answers = {}
    for version in (1, 2):
        config = TextgenSettings(
            model_repository=textgen_versions, default_model=MODEL, model_version=version
        )
        with serve(textgen_app(config)) as url:
            answers[version] = httpx.post(f"{url}/v1/generations", json=REQUEST, timeout=60).json()
    assert answers[1]["version"] == 1 and answers[2]["version"] == 2
    assert answers[1]["normalisation"]["changed"] and not answers[2]["normalisation"]["changed"]
    return answers


# --- helpers -----------------------------------------------------------------------------


def textgen_settings(backend: str, server: ModelServerProcess, root: Path, **extra: Any) -> Any:
    return TextgenSettings(
        model_repository=root,
        default_model=MODEL,
        model_backend=backend,
        model_server_grpc_port=server.grpc_port,
        model_server_rest_port=server.rest_port,
        model_version_poll_s=POLL_S,
        **extra,
    )


def wait_for(probe: Callable[[], T], done: Callable[[T], bool], what: str) -> T:
    """Probe until `done`; give up after WAIT_S, saying what was seen."""
    seen: list[T] = []
    give_up = time.monotonic() + WAIT_S
    while True:
        value = probe()
        if done(value):
            return value
        if not seen or seen[-1] != value:
            seen.append(value)
        if time.monotonic() > give_up:
            pytest.fail(f"gave up waiting for {what}; saw {seen[-5:]}")
        time.sleep(POLL_S)


def listed_version(client: httpx.Client) -> int:
    models = {m["name"]: m for m in client.get("/v1/models").json()["models"]}
    return int(models[MODEL]["version"])


def generate(client: httpx.Client) -> dict[str, Any]:
    response = client.post("/v1/generations", json=REQUEST)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def operate(rollout: Rollout, args: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """`talkative models ...` against the rollout's server and config; its output."""
    code = talkative_main(
        [
            "models",
            *args,
            "--config",
            str(rollout.server.config_file),
            "--server",
            rollout.server.grpc_target,
            "--poll",
            "0.1",
        ]
        + (["--repository", str(rollout.repository)] if args[0] != "status" else [])
    )
    out = capsys.readouterr().out
    assert code == 0, out
    return out


def promote(rollout: Rollout, version: str, label: str, capsys: pytest.CaptureFixture[str]) -> None:
    out = operate(rollout, ["promote", rollout.model, version, "--label", label], capsys)
    assert f"{label}" in out and version in out, out


def switch_warnings(caplog: pytest.LogCaptureFixture, target: str) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == FOLLOWED and f"cannot switch to {target}" in r.getMessage()
    ]


# --- textgen-service ---------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["grpc", "rest"])
def test_textgen_follows_the_stable_label(
    backend, rollout, textgen_versions, references, tmp_path, capsys
):
    """The must-show rollout: v2 on disk but not listed survives a restart on v1; `promote`
    to canary then stable switches the running service to v2 (graph and vocabulary); a
    `rollback` brings v1 back; nobody restarts the service."""
    # In-process, on a repository that gets a v2 on disk while it runs.
    local = tmp_path / "local"
    shutil.copytree(textgen_versions / MODEL / "1", local / MODEL / "1")
    labelled = textgen_settings(
        backend, rollout.server, textgen_versions, model_version_label="stable"
    )
    pinned = textgen_settings(backend, rollout.server, textgen_versions, model_version=1)
    inprocess = TextgenSettings(
        model_repository=local, default_model=MODEL, model_version_poll_s=POLL_S
    )
    # v2 is on disk from the start, not listed in models.config.
    for _ in range(2):  # a start, then a restart: each on v1, never the newest folder
        with serve(textgen_app(labelled)) as url, httpx.Client(base_url=url) as client:
            assert listed_version(client) == 1
            assert generate(client) == references[1]
    with ExitStack() as stack:

        def start(config: TextgenSettings) -> httpx.Client:
            url = stack.enter_context(serve(textgen_app(config)))
            return stack.enter_context(httpx.Client(base_url=url, timeout=60))

        follow, pin, here = start(labelled), start(pinned), start(inprocess)
        assert "v1 ready" in follow.get("/readyz").text
        shutil.copytree(textgen_versions / MODEL / "2", local / MODEL / "2")

        promote(rollout, "2", "canary", capsys)
        assert listed_version(follow) == 1  # canary moved, stable did not
        promote(rollout, "2", "stable", capsys)
        switched = time.monotonic()
        wait_for(lambda: listed_version(follow), lambda v: v == 2, "the label's move to v2")
        with capsys.disabled():  # the figure docs/model-server.md quotes
            print(f"\ntextgen ({backend}) on v2 {time.monotonic() - switched:.2f} s after promote")
        # v2's graph and v2's vocabulary: exactly what a service pinned to v2 answers.
        assert generate(follow) == references[2]
        assert "v2 ready" in follow.get("/readyz").text
        # A pinned version never moves, and in-process keeps the newest on disk at start-up.
        assert listed_version(pin) == 1 and generate(pin) == references[1]
        assert listed_version(here) == 1 and generate(here) == references[1]

        operate(rollout, ["rollback", MODEL, "--label", "stable"], capsys)
        wait_for(lambda: listed_version(follow), lambda v: v == 1, "the label's move back to v1")
        assert generate(follow) == references[1]


def test_a_failed_switch_keeps_the_old_version_serving(
    rollout, textgen_versions, references, caplog
):
    caplog.set_level(logging.INFO, logger=FOLLOWED)
    rollout.set(served={1}, stable=1)
    config = textgen_settings(
        "grpc", rollout.server, textgen_versions, model_version_label="stable"
    )
    with serve(textgen_app(config)) as url, httpx.Client(base_url=url, timeout=60) as client:
        # The label dropped from models.config: the server no longer knows `stable`.
        rollout.write(served={1}, labels={})
        wait_for(
            lambda: switch_warnings(caplog, "the served version"), bool, "the NOT_FOUND warning"
        )
        assert listed_version(client) == 1 and generate(client) == references[1]

        # The label on a version whose graph breaks the contract: built, refused, not swapped.
        rollout.set(served={1, 3}, stable=3)
        warnings = wait_for(lambda: switch_warnings(caplog, "v3"), bool, "the contract warning")
        assert "ContractMismatch" in warnings[0] and "'seed' is missing" in warnings[0]
        assert listed_version(client) == 1 and generate(client) == references[1]

        # The next poll tries again: a good version is taken.
        rollout.set(served={1, 2, 3}, stable=2)
        wait_for(lambda: listed_version(client), lambda v: v == 2, "the switch to v2")
        assert generate(client) == references[2]
    # Each failure was logged once, however many polls met it.
    assert len(switch_warnings(caplog, "v3")) == 1
    assert len(switch_warnings(caplog, "the served version")) == 1


# --- caption-service ---------------------------------------------------------------------


def test_caption_service_follows_the_stable_label(caption_rollout, caption_versions, capsys):
    """The same rollout for caption-service: v1 after a restart with v2 on disk, v2's
    captions (its words in capitals) after `promote`, v1's after `rollback`."""
    config = CaptionSettings(
        model_repository=caption_versions,
        model_backend="grpc",
        model_server_grpc_port=caption_rollout.server.grpc_port,
        model_version_label="stable",
        model_version_poll_s=POLL_S,
    )
    cat = photo("chelsea")

    def caption(client: httpx.Client) -> tuple[int, str]:
        response = client.post("/v1/captions", files={"image": ("cat.png", cat, "image/png")})
        assert response.status_code == 200, response.text
        body = response.json()
        return body["version"], body["captions"][0]["text"]

    said = CAPTIONS["chelsea"].lower()
    for _ in range(2):  # a start and a restart with v2 on disk, not listed
        with serve(caption_app(config)) as url, httpx.Client(base_url=url, timeout=60) as client:
            assert caption(client) == (1, said)
    with serve(caption_app(config)) as url, httpx.Client(base_url=url, timeout=60) as client:
        promote(caption_rollout, "2", "canary", capsys)
        assert caption(client) == (1, said)
        promote(caption_rollout, "2", "stable", capsys)
        assert wait_for(lambda: caption(client), lambda c: c[0] == 2, "captions by v2") == (
            2,
            said.upper(),
        )
        assert "v2 ready" in client.get("/readyz").text

        operate(caption_rollout, ["rollback", "captioner", "--label", "stable"], capsys)
        assert wait_for(lambda: caption(client), lambda c: c[0] == 1, "captions by v1") == (1, said)


# --- the mechanism alone: talkative_common.model_client.followed ----------------------------------


class FakeClient(ModelClient):
    """Says which version is served; raises `error` instead when it is set."""

    backend = "grpc"

    def __init__(self, version: int) -> None:
        self.version = version
        self.error: Exception | None = None

    async def served_version(self, model: str) -> int:
        if self.error is not None:
            raise self.error
        return self.version

    async def predict(
        self, model: str, inputs: Inputs, *, signature: str, version: int | None = None
    ) -> Outputs:
        raise AssertionError("not called")

    async def signature(
        self, model: str, signature: str, version: int | None = None
    ) -> SignatureInfo:
        raise AssertionError("not called")


def test_a_switch_builds_the_new_version_completely_before_swapping(caplog):
    caplog.set_level(logging.INFO, logger=FOLLOWED)
    client = FakeClient(1)
    broken: set[int] = set()

    async def scenario() -> None:
        seen_during_build: list[str] = []

        async def build(version: int) -> str:
            if version in broken:
                raise ValueError(f"v{version} is broken")
            if version != 1:
                seen_during_build.append(slot.current)  # the old one serves meanwhile
            await asyncio.sleep(0)
            return f"model v{version}"

        slot: FollowedVersion[str] = FollowedVersion("m", client, build)
        assert await slot.start() == "model v1" and slot.version == 1
        assert await slot.refresh() is False  # nothing moved, nothing built

        client.version = 2
        assert await slot.refresh() is True
        assert (slot.current, slot.version) == ("model v2", 2)
        assert seen_during_build == ["model v1"]

        broken.add(3)
        client.version = 3
        for _ in range(3):
            assert await slot.refresh() is False
        assert slot.current == "model v2"

        client.error = ModelUnavailable("server down")
        for _ in range(3):
            assert await slot.refresh() is False
        client.error = None

        broken.clear()  # the next poll tries again
        assert await slot.refresh() is True and slot.current == "model v3"

    asyncio.run(scenario())
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2, warnings  # one per distinct error, not one per poll
    assert "v3 is broken" in warnings[0] and "v2 goes on serving" in warnings[0]
    assert "server down" in warnings[1]


def test_the_poll_switches_and_stops_at_close():
    client = FakeClient(1)

    async def build(version: int) -> int:
        return version

    async def scenario() -> None:
        slot = FollowedVersion("m", client, build, poll_s=0.01)
        await slot.start()
        client.version = 2
        for _ in range(10_000):  # bounded; each turn yields to the poll task
            if slot.current == 2:
                break
            await asyncio.sleep(0.01)
        assert slot.current == 2
        await slot.close()
        client.version = 3
        await asyncio.sleep(0.05)
        assert slot.current == 2  # no poll after close
        assert not [t for t in asyncio.all_tasks() if t.get_name() == "follow m"]

    asyncio.run(scenario())


def test_a_start_up_failure_is_the_services_failure():
    client = FakeClient(1)
    client.error = ModelNotFound("Servable not found for request: Specific(m, 2)")

    async def build(version: int) -> int:
        return version

    slot = FollowedVersion("m", client, build, poll_s=0.01)
    with pytest.raises(ModelNotFound):
        asyncio.run(slot.start())


def test_only_an_unpinned_remote_version_is_polled(monkeypatch):
    remote, local = FakeClient(1), FakeClient(1)
    local.backend = "inprocess"
    label = ModelServiceSettings(model_backend="grpc", model_version_label="stable")
    assert version_poll_interval(label, remote) == 5.0
    newest = ModelServiceSettings(model_backend="rest", model_version_poll_s=0.5)
    assert version_poll_interval(newest, remote) == 0.5
    pinned = ModelServiceSettings(model_backend="grpc", model_version=1)
    assert version_poll_interval(pinned, remote) is None
    assert version_poll_interval(ModelServiceSettings(), local) is None

    monkeypatch.setenv("TEXTGEN_MODEL_VERSION_POLL_S", "2.5")
    monkeypatch.setenv("CAPTION_MODEL_VERSION_POLL_S", "7")
    assert TextgenSettings().model_version_poll_s == 2.5
    assert CaptionSettings().model_version_poll_s == 7.0
