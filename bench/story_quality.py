"""Story quality of the text models at textgen-service's default sampling, against a baseline.

Stories are generated through textgen-service's HTTP API, the app run in this process and
reached on httpx's in-memory ASGI transport (as `talkative tell` does): POST /v1/generations
with the prompt, the model, the seed and, for a model whose /v1/models entry lists `styles`,
each style in turn. Temperature, top_k, top_p and the repetition controls are not sent, so
the service's defaults apply (printed in the header). Nor is max_new_tokens, unless
--max-new-tokens is given or the default is over a model's own limit (then that limit is
sent). Seeds 0..N-1; the prompt is a caption-like opening in the model's language, rotated
over the seeds.

Per (run, model, version, style), on the generated text only (not the prompt), words being
runs of letters (accents included), lowercased:

- rep4: share of repeated word 4-grams, 1 - unique / total 4-grams of a story; the mean over
  the stories (target: at most 0.10);
- distinct-2: unique word bigrams / all word bigrams, over all the stories of the row;
- coverage: share of words found in the model's training corpus (data/corpora/<name>/
  train.txt, the corpus its card names); a story's last word is left out when the story
  was cut at max_new_tokens, since it may be cut too (target: at least 0.90);
- verse: share of stories with a verse reference such as 3:16 (target: 0 for the styles
  that are not Bible text; a model without styles counts as Bible text when its training
  corpus is a Bible).

The baseline ("the previous defaults") is measured in the same run, by a second app:

- --baseline previous (default): each model's version before its newest in the same
  repository, pinned with textgen-service's `model_version` setting (one app per distinct
  version number); a model with one version has no baseline row;
- --baseline N: version N of every model that has it;
- --baseline PATH or --baseline-repository PATH: the newest versions in another repository;
- --baseline none: no baseline.

The 1-minute load average is printed before and after: other processes share the cores.

    python bench/story_quality.py [--seeds 20] [--models gpt2_en,char_lstm_en]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import re
import sys
import time
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import bench_parser, repository_option  # noqa: E402
from talkative_common.generation_schema import GenerationRequest  # noqa: E402

if TYPE_CHECKING:
    import httpx

CORPORA = ROOT / "data" / "corpora"
TEXTGEN_URL = "http://textgen"  # a name only: nothing listens on it

# Caption-like openings, as the captioner writes them, per language; rotated over the seeds.
PROMPTS: dict[str, tuple[str, ...]] = {
    "en": (
        "a dog on a beach",
        "a man riding a horse in a field",
        "a small boat on a lake at sunset",
        "two children playing in the snow",
        "an old church on a hill",
    ),
    "fr": (
        "un chien sur une plage",
        "un homme à cheval dans un champ",
        "une petite barque sur un lac au coucher du soleil",
        "deux enfants qui jouent dans la neige",
        "une vieille église sur une colline",
    ),
    "es": (
        "un perro en una playa",
        "un hombre a caballo en un campo",
        "una pequeña barca en un lago al atardecer",
        "dos niños jugando en la nieve",
        "una vieja iglesia en una colina",
    ),
}

WORD = re.compile(r"[^\W\d_]+")
VERSE = re.compile(r"\b\d{1,3}:\d{1,3}\b")
STYLE_TOKEN = re.compile(r"<\|[^|>]*\|>")
# Style tokens that stand for Bible text (training/corpora's components).
BIBLE_STYLES = frozenset({"bible", "kjv", "segond", "darby", "rv1909"})

MAX_REP4 = 0.10
DEFAULT_MAX_NEW_TOKENS: int = GenerationRequest.model_fields["max_new_tokens"].default
MIN_COVERAGE = 0.90


# --- metrics ------------------------------------------------------------------------------


def words(text: str) -> list[str]:
    """The words of `text`: runs of letters (accents included), lowercased."""
    return [w.lower() for w in WORD.findall(text)]


def ngrams(ws: Sequence[str], n: int) -> list[tuple[str, ...]]:
    return [tuple(ws[i : i + n]) for i in range(len(ws) - n + 1)]


def repeated_ngram_share(ws: Sequence[str], n: int = 4) -> float | None:
    """1 - unique / total n-grams of one story; None when it has no n-gram."""
    grams = ngrams(ws, n)
    return 1.0 - len(set(grams)) / len(grams) if grams else None


def mean_repeated_ngram_share(stories: Iterable[Sequence[str]], n: int = 4) -> float:
    """The mean of repeated_ngram_share over the stories that have an n-gram (nan: none)."""
    shares = [s for s in (repeated_ngram_share(ws, n) for ws in stories) if s is not None]
    return sum(shares) / len(shares) if shares else math.nan


def distinct_n(stories: Iterable[Sequence[str]], n: int = 2) -> float:
    """Unique n-grams / all n-grams, pooled over the stories (each story's own n-grams)."""
    grams = [g for ws in stories for g in ngrams(ws, n)]
    return len(set(grams)) / len(grams) if grams else math.nan


def coverage(stories: Iterable[Sequence[str]], vocabulary: set[str]) -> float:
    """Share of the stories' words found in `vocabulary` (nan: no word)."""
    ws = [w for story in stories for w in story]
    return sum(w in vocabulary for w in ws) / len(ws) if ws else math.nan


def verse_share(texts: Sequence[str]) -> float:
    """Share of texts with a verse reference (chapter:verse)."""
    return sum(bool(VERSE.search(t)) for t in texts) / len(texts) if texts else math.nan


def corpus_words(text: str) -> set[str]:
    """The word set of a training text, its style tokens (<|bible|>...) left out."""
    return set(words(STYLE_TOKEN.sub(" ", text)))


@cache
def corpus_vocabulary(name: str) -> set[str] | None:
    """The words of data/corpora/<name>/train.txt, read once per corpus; None if missing."""
    path = CORPORA / name / "train.txt"
    return corpus_words(path.read_text(encoding="utf-8")) if path.exists() else None


def is_bible(style: str | None, card: dict[str, Any]) -> bool:
    """Whether a row's stories are Bible text, where verse references are no fault."""
    if style is not None:
        return style.lower() in BIBLE_STYLES
    corpus = card.get("training_corpus", {})
    return "bible" in f"{corpus.get('name', '')} {corpus.get('source', '')}".lower()


# --- generation ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Story:
    text: str
    cut: bool  # stopped at max_new_tokens, not by the model

    def words(self) -> list[str]:
        """Its words; the last left out when the story was cut (it may be cut too)."""
        ws = words(self.text)
        return ws[:-1] if self.cut else ws


@dataclass
class Row:
    run: str  # "current" or "baseline"
    model: str
    version: int
    style: str | None
    stories: int
    words_per_story: float
    rep4: float
    distinct2: float
    coverage: float | None  # None: the training corpus is not on disk
    corpus: str
    verse: float
    bible: bool
    seconds: float


def measure(
    run: str, info: dict[str, Any], style: str | None, stories: Sequence[Story], seconds: float
) -> Row:
    card = info.get("card", {})
    corpus = str(card.get("training_corpus", {}).get("name", ""))
    vocabulary = corpus_vocabulary(corpus) if corpus else None
    ws = [s.words() for s in stories]
    return Row(
        run=run,
        model=info["name"],
        version=int(info["version"]),
        style=style,
        stories=len(stories),
        words_per_story=sum(map(len, ws)) / len(ws) if ws else 0.0,
        rep4=mean_repeated_ngram_share(ws, 4),
        distinct2=distinct_n(ws, 2),
        coverage=None if vocabulary is None else coverage(ws, vocabulary),
        corpus=corpus,
        verse=verse_share([s.text for s in stories]),
        bible=is_bible(style, card),
        seconds=seconds,
    )


@asynccontextmanager
async def textgen_client(**fields: Any) -> AsyncIterator[httpx.AsyncClient]:
    """A textgen-service app with these settings, its lifespan run (models loaded), and a
    client on its HTTP API over the in-memory ASGI transport."""
    import httpx

    from textgen_service.main import create_app
    from textgen_service.settings import TextgenSettings

    app = create_app(TextgenSettings(**fields))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url=TEXTGEN_URL, timeout=None
        ) as client,
    ):
        yield client


async def _json(client: httpx.AsyncClient, method: str, path: str, **kwargs: Any) -> Any:
    response = await client.request(method, path, **kwargs)
    if response.status_code >= 400:
        raise SystemExit(f"{method} {path}: {response.status_code} {response.text}")
    return response.json()


async def run_app(
    run: str, fields: dict[str, Any], seeds: int, max_new_tokens: int | None
) -> tuple[list[Row], list[dict[str, Any]]]:
    """Every (model, style) the app serves, over seeds 0..seeds-1, one request at a time."""
    rows: list[Row] = []
    async with textgen_client(**fields) as client:
        models = (await _json(client, "GET", "/v1/models"))["models"]
        for info in sorted(models, key=lambda m: m["name"]):
            prompts = PROMPTS.get(info["language"], PROMPTS["en"])
            tokens = max_new_tokens
            if tokens is None and info["max_new_tokens"] < DEFAULT_MAX_NEW_TOKENS:
                # The schema's default is over this model's limit: the service refuses it.
                tokens = info["max_new_tokens"]
                print(
                    f"  {info['name']}: the default max_new_tokens ({DEFAULT_MAX_NEW_TOKENS}) "
                    f"is over its limit, sending {tokens}"
                )
            for style in info.get("styles") or [None]:
                stories = []
                started = time.perf_counter()
                for seed in range(seeds):
                    body: dict[str, Any] = {
                        "prompt": prompts[seed % len(prompts)],
                        "model": info["name"],
                        "seed": seed,
                    }
                    if tokens is not None:
                        body["max_new_tokens"] = tokens
                    if style is not None:
                        body["style"] = style
                    answer = await _json(client, "POST", "/v1/generations", json=body)
                    stories.append(Story(answer["text"], answer["finish_reason"] == "length"))
                rows.append(measure(run, info, style, stories, time.perf_counter() - started))
                print(f"  {_label(rows[-1])}: {len(stories)} stories in {rows[-1].seconds:.1f} s")
    return rows, models


# --- baseline -----------------------------------------------------------------------------


def baseline_apps(
    baseline: str, repository: Path, models: Sequence[str]
) -> tuple[list[dict[str, Any]], list[str]]:
    """The settings fields of the baseline apps, and a note per model left without one."""
    from talkative_common.model_client import ModelRepository

    if baseline == "none":
        return [], []
    path = Path(baseline)
    if not baseline.isdigit() and baseline != "previous":
        if not path.is_dir():
            raise SystemExit(f"--baseline {baseline!r}: not previous, none, a version, a folder")
        there = set(ModelRepository(path).models())
        served = [m for m in models if m in there]
        notes = [f"{m}: not in {path}" for m in models if m not in there]
        fields = {"model_repository": path, "models": served}
        return ([fields] if served else []), notes
    repo = ModelRepository(repository)
    by_version: dict[int, list[str]] = {}
    notes = []
    for name in models:
        versions = repo.versions(name)
        if baseline == "previous":
            if len(versions) < 2:
                notes.append(f"{name}: only version {versions[-1]}, no earlier one")
                continue
            version = versions[-2]
        elif int(baseline) in versions:
            version = int(baseline)
        else:
            notes.append(f"{name}: no version {baseline} (has {versions})")
            continue
        by_version.setdefault(version, []).append(name)
    # model_version pins every model an app serves, hence one app per version number.
    apps = [
        {"model_repository": repository, "models": names, "model_version": version}
        for version, names in sorted(by_version.items())
    ]
    return apps, notes


# --- report -------------------------------------------------------------------------------


def _label(row: Row) -> str:
    return f"{row.run} {row.model} v{row.version}" + (f" [{row.style}]" if row.style else "")


def _figure(x: float | None, digits: int = 3) -> str:
    return "n/a" if x is None or math.isnan(x) else f"{x:.{digits}f}"


def table(rows: Sequence[Row]) -> str:
    head = ("run", "model", "ver", "style", "n", "words", "rep4", "distinct2", "coverage", "verse")
    lines = [
        (
            r.run,
            r.model,
            str(r.version),
            r.style or "-",
            str(r.stories),
            f"{r.words_per_story:.1f}",
            _figure(r.rep4),
            _figure(r.distinct2),
            _figure(r.coverage),
            _figure(r.verse, 2) + (" (bible)" if r.bible else ""),
        )
        for r in sorted(rows, key=lambda r: (r.model, r.style or "", r.run != "baseline"))
    ]
    widths = [max(len(x) for x in col) for col in zip(head, *lines, strict=False)]
    return "\n".join(
        "  ".join(x.ljust(w) for x, w in zip(line, widths, strict=True)).rstrip()
        for line in [head, *lines]
    )


def verdicts(rows: Sequence[Row]) -> list[str]:
    """One line per target: PASS when every current row meets it; the baseline's count too."""
    targets = [
        (f"repeated 4-gram share <= {MAX_REP4:.2f}", lambda r: r.rep4 <= MAX_REP4, lambda r: True),
        (
            f"coverage >= {MIN_COVERAGE:.0%}",
            lambda r: r.coverage is not None and r.coverage >= MIN_COVERAGE,
            lambda r: True,
        ),
        ("verse references 0 for non-Bible styles", lambda r: r.verse == 0, lambda r: not r.bible),
    ]
    out = []
    for name, ok, applies in targets:
        parts = []
        verdict = "n/a"
        for run in ("current", "baseline"):
            relevant = [r for r in rows if r.run == run and applies(r)]
            if not relevant:
                continue
            failing = [_label(r) for r in relevant if not ok(r)]
            if run == "current":
                verdict = "FAIL" if failing else "PASS"
            parts.append(
                f"{run} {len(relevant) - len(failing)}/{len(relevant)} rows"
                + (f" (fails: {', '.join(failing)})" if failing else "")
            )
        out.append(f"{verdict}: {name}: " + ("; ".join(parts) or "no row it applies to"))
    return out


def sampling_defaults(models: Sequence[dict[str, Any]], max_new_tokens: int | None) -> list[str]:
    """What the requests leave to the service: the schema's defaults, each model's controls."""
    fields = GenerationRequest.model_fields
    tokens = (
        f"max_new_tokens {DEFAULT_MAX_NEW_TOKENS}"
        if max_new_tokens is None
        else f"max_new_tokens {max_new_tokens} sent (default {DEFAULT_MAX_NEW_TOKENS})"
    )
    lines = [
        "service defaults (not sent): "
        + ", ".join(f"{k} {fields[k].default}" for k in ("temperature", "top_k", "top_p"))
        + f"; {tokens}"
    ]
    for m in models:
        options = m.get("generation_options") or {}
        if options:
            shown = ", ".join(f"{k} {v.get('default')}" for k, v in sorted(options.items()))
            lines.append(f"  {m['name']} v{m['version']} repetition controls: {shown}")
    return lines


# --- command line -------------------------------------------------------------------------


async def bench(a: argparse.Namespace) -> list[Row]:
    models = [m for m in (a.models or "").split(",") if m] or None
    fields: dict[str, Any] = {"model_repository": a.repository, "models": models}
    print(f"current: {a.repository} (each model's newest version)")
    rows, listed = await run_app("current", fields, a.seeds, a.max_new_tokens)
    defaults = sampling_defaults(listed, a.max_new_tokens)
    print("\n".join(defaults))
    apps, notes = baseline_apps(a.baseline, a.repository, [m["name"] for m in listed])
    for note in notes:
        print(f"baseline: {note}")
    for app in apps:
        pinned = app.get("model_version")
        print(
            f"baseline: {app['model_repository']} "
            + (f"version {pinned}" if pinned else "newest versions")
            + f": {', '.join(app['models'])}"
        )
        more, listed_then = await run_app("baseline", app, a.seeds, a.max_new_tokens)
        rows += more
        # The same schema; only the repetition controls of older versions may differ.
        for line in sampling_defaults(listed_then, a.max_new_tokens)[1:]:
            print(line)
    return rows


def main(argv: list[str] | None = None) -> None:
    p = bench_parser(main, description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    repository_option(p, "model repository <name>/<version>/ of the current models")
    p.add_argument(
        "--models",
        help="comma-separated text models (default: every text model in the repository)",
    )
    p.add_argument(
        "--seeds",
        type=int,
        default=20,
        help="stories per model and style, seeds 0..N-1 (default: %(default)s)",
    )
    p.add_argument(
        "--max-new-tokens",
        type=int,
        help="tokens per story (characters for char models); default: the service's default",
    )
    p.add_argument(
        "--baseline",
        default="previous",
        help="what to compare with: previous (each model's version before its newest), a "
        "version number, a repository folder, or none (default: %(default)s)",
    )
    p.add_argument(
        "--baseline-repository",
        type=Path,
        help="compare with the newest versions in this repository (overrides --baseline)",
    )
    p.add_argument("--json", type=Path, help="also write the rows to this JSON file")
    a = p.parse_args(argv)
    if a.seeds < 1:
        p.error("--seeds must be at least 1")
    if a.baseline_repository is not None:
        a.baseline = str(a.baseline_repository)

    load_before = os.getloadavg()[0]
    print(f"load average (1 min) before: {load_before:.2f} on {os.cpu_count()} CPUs")
    rows = asyncio.run(bench(a))
    print()
    print(table(rows))
    missing = sorted({r.corpus for r in rows if r.coverage is None})
    for corpus in missing:
        print(
            f"coverage n/a: no {CORPORA / corpus / 'train.txt'}; build it with "
            f"`make data/corpora/{corpus}/manifest.json` (part of `make corpora`)"
        )
    print()
    print("\n".join(verdicts(rows)))
    print(f"load average (1 min) after: {os.getloadavg()[0]:.2f} (before: {load_before:.2f})")
    if a.json:
        a.json.write_text(json.dumps([asdict(r) for r in rows], indent=2) + "\n")


if __name__ == "__main__":
    main()
