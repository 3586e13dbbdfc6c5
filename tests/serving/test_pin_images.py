"""deploy/pin-images.sh (`make pin-images`) on a copy of the deployment files, with a stand-in
`docker` that answers `docker buildx imagetools inspect` as the real one does. No registry
is reachable from the test machines, so the committed files pin tags, not digests, until
an operator runs it on a machine with Docker (docs/deployment.md says so)."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "deploy" / "pin-images.sh"
FILES = (
    "docker-compose.yml",
    "docker-compose.cpu.yml",
    "docker-compose.monitoring.yml",
    ".env.example",
    "deploy/docker/service.Dockerfile",
)
FAKE_DOCKER = """#!/usr/bin/env bash
# docker buildx imagetools inspect REF --format '{{json .Manifest}}'
[ "$1 $2 $3" = "buildx imagetools inspect" ] || { echo "unexpected: $*" >&2; exit 2; }
echo "$4" >> "$(dirname "$0")/asked"
digest=$(printf '%s' "$4$DIGEST_SALT" | sha256sum | cut -d' ' -f1)
media=application/vnd.oci.image.index.v1+json
printf '{"mediaType":"%s","digest":"sha256:%s","size":1}\\n' "$media" "$digest"
"""


def fake_digest(ref: str, salt: str = "") -> str:
    return "sha256:" + hashlib.sha256((ref + salt).encode()).hexdigest()


@pytest.fixture()
def checkout(tmp_path: Path) -> Path:
    root = tmp_path / "checkout"
    for rel in FILES:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / rel, root / rel)
    (root / ".env").write_text("TFSERVING_IMAGE=tensorflow/serving:2.21.0-gpu\n")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "docker").write_text(FAKE_DOCKER)
    (bin_dir / "docker").chmod(0o755)
    return root


def run(root: Path, *args: str, salt: str = "") -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": f"{root.parent / 'bin'}:{os.environ['PATH']}",
        "PIN_ROOT": str(root),
        "DIGEST_SALT": salt,
    }
    return subprocess.run(
        ["bash", str(SCRIPT), *args], capture_output=True, text=True, env=env, timeout=60
    )


def image_refs(root: Path) -> dict[str, list[str]]:
    pattern = re.compile(
        r"(?:tensorflow/serving|python|prom/prometheus|prom/blackbox-exporter)"
        r":[A-Za-z0-9][A-Za-z0-9._-]*(?:@sha256:[0-9a-f]{64})?"
    )
    return {rel: pattern.findall((root / rel).read_text()) for rel in (*FILES, ".env")}


def test_pins_every_pulled_image_to_the_digest_its_tag_points_at(checkout: Path) -> None:
    before = run(checkout, "--check")
    assert before.returncode == 1 and "not pinned: tensorflow/serving:2.21.0-gpu" in before.stdout

    result = run(checkout)
    assert result.returncode == 0, result.stdout + result.stderr
    asked = set((checkout.parent / "bin" / "asked").read_text().split())
    assert asked == {
        "tensorflow/serving:2.21.0-gpu",
        "tensorflow/serving:2.21.0",
        "python:3.11-slim-bookworm",
        "prom/prometheus:v2.53.0",
        "prom/blackbox-exporter:v0.25.0",
    }
    for rel, refs in image_refs(checkout).items():
        for ref in refs:
            name, _, digest = ref.partition("@")
            assert digest == fake_digest(name), (rel, ref)
    # the compose default, the operator's .env and the Dockerfiles' base image all pinned
    compose = (checkout / "docker-compose.yml").read_text()
    assert "${TFSERVING_IMAGE:-tensorflow/serving:2.21.0-gpu@sha256:" in compose
    assert (
        (checkout / ".env")
        .read_text()
        .startswith("TFSERVING_IMAGE=tensorflow/serving:2.21.0-gpu@sha256:")
    )
    assert (
        "ARG PYTHON_IMAGE=python:3.11-slim-bookworm@sha256:"
        in (checkout / "deploy" / "docker" / "service.Dockerfile").read_text()
    )
    assert run(checkout, "--check").returncode == 0


def test_running_again_moves_the_digests_instead_of_adding_more(checkout: Path) -> None:
    assert run(checkout).returncode == 0
    assert run(checkout, salt="tag moved").returncode == 0
    for rel, refs in image_refs(checkout).items():
        for ref in refs:
            name, _, digest = ref.partition("@")
            assert digest == fake_digest(name, "tag moved"), (rel, ref)
            assert ref.count("@") == 1
