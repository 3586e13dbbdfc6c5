"""talkative-corpus end to end: local sites in, a corpus out that the char-LSTM trains on."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.support.text_models import tiny_char_lstm
from tests.training.corpora import gutenberg_mirror as gm
from tests.training.corpora.screenplays import build_imsdb
from tests.training.corpora.site import serve_site
from training.corpora.builder import normalise_document
from training.corpora.cli import build_parser, main

FAST = ["--rate", "50", "--timeout", "1", "--no-progress"]


def corpus_files(out: Path) -> tuple[dict, str, str]:
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    train = (out / "train.txt").read_text(encoding="utf-8")
    valid = (out / "valid.txt").read_text(encoding="utf-8")
    return manifest, train, valid


def train_tiny(corpus: Path, run: Path) -> dict:
    from training.char_lstm.train import train

    return train(tiny_char_lstm(corpus, run, units=16, steps=4, eval_every=2, warmup_steps=1))


def test_every_option_is_explained() -> None:
    parser = build_parser()
    subparsers = next(a for a in parser._actions if isinstance(a.choices, dict))
    assert isinstance(subparsers.choices, dict)
    for name, sub in subparsers.choices.items():
        for action in sub._actions:
            assert action.help, f"{name} {action.option_strings} has no help"
        text = sub.format_help()
        assert "--rate" in text and "--user-agent" in text and "--out" in text
    assert {"scripts", "gutenberg"} <= set(subparsers.choices)


@pytest.mark.parametrize(
    "argv",
    [
        ["scripts"],  # --genre is required
        ["scripts", "--genre", "Comedy", "--limit", "0"],
        ["scripts", "--genre", "Comedy", "--rate", "0"],
        ["scripts", "--genre", "Comedy", "--retries", "-1"],
        ["scripts", "--genre", "Comedy", "--timeout", "nan"],
        ["gutenberg", "--language", "fr"],  # --max-mb is required
        ["gutenberg", "--language", "fr", "--max-mb", "-1"],
        ["gutenberg", "--language", "fr", "--max-mb", "1", "--catalog", "opds"],
        ["gutenberg", "--language", "fr", "--max-mb", "1", "--valid-fraction", "1"],
        ["crawl"],
    ],
)
def test_bad_arguments_are_refused_with_usage(
    argv: list[str], capsys: pytest.CaptureFixture
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    assert "usage: talkative-corpus" in capsys.readouterr().err


def test_scripts_corpus_resumes_and_trains(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    cache, out = tmp_path / "cache", tmp_path / "scripts"
    argv = [
        "scripts",
        "--genre",
        "Comedy",
        "--genre",
        "Drama",
        "--cache",
        str(cache),
        "--out",
        str(out),
        *FAST,
    ]
    with serve_site() as site:
        build_imsdb(site)
        assert main([*argv, "--site", site.base_url]) == 0
        served = len(site.gets())
        # The same command again: everything is on disk, the site sees nothing new.
        assert main([*argv, "--site", site.base_url]) == 0
        assert len(site.gets()) == served
    out_text = capsys.readouterr().out
    # No script link, robots.txt, too short: said once per run, with where to read why.
    assert out_text.count("3 films skipped for good: reasons in") == 2
    assert "scripts: " in out_text
    manifest, train, valid = corpus_files(out)
    kept = manifest["documents"]["train"] + manifest["documents"]["valid"]
    # The fixture's retitled copies of one screenplay are near copies: one of each is kept.
    assert len(kept) == 2 and manifest["documents"]["valid"]
    assert {d["reason"].split(" (")[0] for d in manifest["dropped"]} == {"near copy"}
    for title in kept:
        assert manifest["sources"][title]["url"].startswith("http://127.0.0.1")
        assert len(manifest["sources"][title]["sha256"]) == 64
    text = train + valid
    assert re.search(r"^(INT|EXT)\. ", text, re.MULTILINE)  # scene headings kept
    assert "<b>" not in text and "&amp;" not in text and "(MORE)" not in text
    result = train_tiny(out, tmp_path / "run")
    assert result["steps"] == 4 and result["final_valid_nats_per_char"] > 0


@pytest.mark.parametrize("scheme", ["http", "ftp"])
def test_gutenberg_corpus_over_http_and_ftp_trains(scheme: str, tmp_path: Path) -> None:
    root = gm.build_mirror(tmp_path / "mirror")
    cache, out = tmp_path / "cache", tmp_path / "gutenberg_fr"
    # The fixture's books are a few paragraphs each, under the default --min-chars.
    argv = [
        "gutenberg",
        "--language",
        "fr",
        "--max-mb",
        "5",
        "--cache",
        str(cache),
        "--out",
        str(out),
        "--min-chars",
        "100",
        *FAST,
    ]
    if scheme == "http":
        with serve_site() as site:
            gm.publish(site, root)
            assert main([*argv, "--mirror", site.base_url + "/"]) == 0
    else:
        with gm.serve_ftp(root) as ftp:
            assert main([*argv, "--mirror", ftp.url]) == 0
    manifest, train, valid = corpus_files(out)
    kept = manifest["documents"]["train"] + manifest["documents"]["valid"]
    assert len(kept) >= 3 and manifest["language"] == "fr"
    assert all(info["url"].startswith(scheme) for info in manifest["sources"].values())
    text = train + valid
    assert "PROJECT GUTENBERG" not in text.upper()
    french = [b for b in gm.BOOKS if b.language == "fr" and b.body]
    assert len(kept) == len(french)
    for book in french:  # every encoding decoded, mojibake repaired, typography folded
        assert normalise_document(book.body) in text, book.title
    result = train_tiny(out, tmp_path / "run")
    assert result["steps"] == 4 and result["final_valid_nats_per_char"] > 0


def test_a_selection_with_no_books_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    root = gm.build_mirror(tmp_path / "mirror")
    with serve_site() as site:
        gm.publish(site, root)
        code = main(
            [
                "gutenberg",
                "--language",
                "fr",
                "--max-mb",
                "1",
                "--author",
                "Nobody",
                "--mirror",
                site.base_url + "/",
                "--cache",
                str(tmp_path / "c"),
                "--out",
                str(tmp_path / "o"),
                *FAST,
            ]
        )
    assert code == 1
    assert "no book matching" in capsys.readouterr().err


def test_an_unreachable_site_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    from tests.support.servers import free_port

    code = main(
        [
            "scripts",
            "--genre",
            "Comedy",
            "--site",
            f"http://127.0.0.1:{free_port()}",
            "--cache",
            str(tmp_path / "c"),
            "--out",
            str(tmp_path / "o"),
            "--retries",
            "0",
            *FAST,
        ]
    )
    assert code == 1
    err = capsys.readouterr().err
    assert "talkative-corpus scripts:" in err and "Traceback" not in err
