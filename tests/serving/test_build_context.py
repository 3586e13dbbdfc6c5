"""The build context of the service images: what .dockerignore leaves in, and what it keeps out.

The context is listed with tests/support/dockerignore.py (Docker's matching rules, ported
from moby/patternmatcher) and, where Debian's python3-docker is installed (it comes with
the docker-compose package the deployment tests need), cross-checked against docker-py's
own implementation, the one docker-compose 1.x builds with.
"""

from __future__ import annotations

import fnmatch
import json
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support.dockerignore import PatternMatcher, context_files, read_patterns
from tests.support.service_images import SERVICES, dockerfile

ROOT = Path(__file__).resolve().parents[2]
# Paths that must never reach a builder, whatever else changes.
NEVER = (
    ".venv/bin/python",
    ".venv/lib/python3.11/site-packages/tensorflow/__init__.py",
    ".git/HEAD",
    ".git/objects/pack/pack-1.pack",
    ".env",
    ".env.production",
    "gateway-service/.env",
    "secrets/bot_mastodon_access_token",
    "data/corpora/kjv_en/manifest.json",
    "data/photos/chelsea.jpg",
    "runs/char_lstm_en/checkpoint.weights.h5",
    "serving/models/captioner/1/saved_model.pb",
    "var/bot/state.sqlite3",
    "bot.sqlite3-wal",
    "node_modules/left-pad/index.js",
    "gateway-service/web/node_modules/x/index.js",
    "talkative_common/__pycache__/app.cpython-311.pyc",
    "talkative_common/app.pyc",
    "talkative.egg-info/PKG-INFO",
    ".mypy_cache/3.11/services/app.data.json",
    ".ruff_cache/0.1/x",
    ".pytest_cache/v/cache/lastfailed",
    ".hypothesis/examples/x",
    ".coverage",
    "htmlcov/index.html",
)
KEEP = (
    "pyproject.toml",
    "README.md",
    "talkative_common/__init__.py",
    "talkative_common/model_client/protos/__init__.py",
    "deploy/docker/service.Dockerfile",
    "gateway-service/gateway_service/static/index.html",
    "serving/models.config",
    "serving/batching_parameters.txt",
    "docs/deployment.md",
    "bench/clients.py",
)


def copy_sources(image: str) -> list[str]:
    """Sources of every COPY/ADD that reads the build context (not `--from=` a stage)."""
    text = re.sub(r"\\\n", " ", image)
    sources = []
    for line in text.splitlines():
        match = re.match(r"\s*(COPY|ADD)\s+(.*)", line, re.IGNORECASE)
        if not match:
            continue
        rest = match.group(2).strip()
        words = shlex.split(rest) if not rest.endswith("]") else None
        if words is None:  # the JSON form, after any --flags
            flags, _, array = rest.partition("[")
            words = [*flags.split(), *json.loads("[" + array)]
        flags = [w for w in words if w.startswith("--")]
        if any(f.startswith("--from") for f in flags):
            continue
        paths = [w for w in words if not w.startswith("--")]
        sources += [p.rstrip("/") or "." for p in paths[:-1]]
    return sources


def tracked_files() -> set[str]:
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout: cannot tell which files the project tracks")
    out = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
    ).stdout.decode()
    return {p for p in out.split("\0") if p and (ROOT / p).exists()}


@pytest.fixture(scope="module")
def context() -> set[str]:
    return context_files(ROOT)


def test_dockerignore_exists_and_parses() -> None:
    patterns = read_patterns((ROOT / ".dockerignore").read_text(encoding="utf-8"))
    assert patterns and not any(p.startswith("!") for p in patterns)
    PatternMatcher(patterns)  # every pattern compiles


def test_the_matcher_follows_dockers_rules() -> None:
    """Cases from moby/patternmatcher's own tests and the .dockerignore documentation."""
    cases = [
        (["*/temp*"], "somedir/temporary.txt", True),
        (["*/temp*"], "somedir/temp", True),
        (["*/*/temp*"], "somedir/subdir/temporary.txt", True),
        (["temp?"], "tempa", True),
        (["temp?"], "temp/x", False),
        (["**/*.go"], "a/b/c.go", True),
        (["**/*.go"], "c.go", True),
        (["*.md", "!README*.md", "README-secret.md"], "README.md", False),
        (["*.md", "!README*.md", "README-secret.md"], "README-secret.md", True),
        (["*.md", "!README*.md", "README-secret.md"], "notes.md", True),
        (["docs"], "docs/a/b.md", True),  # a folder excludes what is under it
        (["docs/"], "docs/a.md", True),  # cleaned: the trailing slash goes
        (["/docs"], "docs/a.md", True),  # the leading one too
        (["data"], "src/data/x", False),  # relative to the root only
        (["**/data"], "src/data/x", True),
        (["a/**"], "a/b/c", True),
        (["a/**/c"], "a/c", True),
        (["a/**/c"], "a/b/x/c", True),
        (["a/**/c"], "ab/c", False),
        (["*"], "anything/at/all", True),
        (["[a-c]x"], "bx", True),
        (["[a-c]x"], "dx", False),
        (["a.b"], "axb", False),  # a dot is a dot
    ]
    for patterns, path, excluded in cases:
        matcher = PatternMatcher(read_patterns("\n".join(patterns)))
        assert matcher.excluded(path) is excluded, (patterns, path)


def make_tree(root: Path, paths: tuple[str, ...]) -> None:
    for rel in paths:
        target = root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text("x", encoding="utf-8")


def test_secrets_environments_data_and_caches_stay_out(tmp_path: Path) -> None:
    """A tree with every kind of thing that must stay on the host, beside what must go."""
    shutil.copy(ROOT / ".dockerignore", tmp_path / ".dockerignore")
    make_tree(tmp_path, NEVER + KEEP)
    sent = context_files(tmp_path)
    assert not sent & set(NEVER), sorted(sent & set(NEVER))
    assert set(KEEP) <= sent, sorted(set(KEEP) - sent)


def test_docker_py_agrees(tmp_path: Path) -> None:
    """docker-py's exclude_paths (what docker-compose 1.x builds with) on the same tree."""
    python = shutil.which("python3", path="/usr/bin")
    probe = "import docker.utils.build"
    if python is None or subprocess.run([python, "-c", probe], capture_output=True).returncode:
        pytest.skip("Debian's python3-docker is not installed (it comes with docker-compose)")
    shutil.copy(ROOT / ".dockerignore", tmp_path / ".dockerignore")
    make_tree(tmp_path, NEVER + KEEP)
    # docker-py's api/build.py reads .dockerignore this way, then calls exclude_paths.
    script = (
        "import json, sys\n"
        "from docker.utils.build import exclude_paths\n"
        "root = sys.argv[1]\n"
        "lines = open(root + '/.dockerignore').read().splitlines()\n"
        "patterns = [l.strip() for l in lines if l.strip() and l.strip()[0] != '#']\n"
        "print(json.dumps(sorted(exclude_paths(root, patterns))))\n"
    )
    out = subprocess.run(
        [python, "-c", script, str(tmp_path)], capture_output=True, text=True, check=True
    ).stdout
    theirs = {p for p in json.loads(out) if (tmp_path / p).is_file()}
    assert context_files(tmp_path) == theirs


def test_every_path_a_dockerfile_copies_is_in_the_context(context: set[str]) -> None:
    assert len(SERVICES) == 4, SERVICES
    tracked = tracked_files()
    for service in SERVICES:
        sources = copy_sources(dockerfile(service))
        assert sources, f"{service}'s image copies nothing from the context"
        for source in sources:
            if any(ch in source for ch in "*?["):
                assert fnmatch.filter(context, source), f"{service}: COPY {source} matches nothing"
                continue
            if (ROOT / source).is_dir():
                # every tracked file of a copied folder goes, so no package file is lost
                wanted = {p for p in tracked if p.startswith(source + "/")}
                assert wanted, f"{service}: COPY {source}/ holds no tracked file"
                missing = wanted - context
                assert not missing, f"{service}: COPY {source}/ would lose {sorted(missing)}"
            else:
                assert source in context, f"{service}: COPY {source} is not in the context"


def test_the_checkouts_context_is_small_and_clean(context: set[str]) -> None:
    """On this checkout (which has .venv, .git, data/ and caches): none of them go."""
    for path in context:
        top = path.split("/", 1)[0]
        assert top not in {".venv", ".git", "data", "runs", "secrets", "var", ".hypothesis"}, path
        assert not re.search(r"(^|/)(__pycache__|node_modules|\.env(\..*)?$)", path), path
        assert not path.startswith("serving/models/"), path
    size = sum((ROOT / p).lstat().st_size for p in context)
    print(f"\nbuild context: {len(context)} files, {size / 1e6:.1f} MB")
    assert size < 50e6, f"the build context is {size / 1e6:.0f} MB"
