"""Pinned dependencies: constraints.txt pins every package of the environment the suite
runs in, each image's lock file pins its extra's whole closure at those versions, and
each Dockerfile installs its lock in a layer before any source is copied."""

from __future__ import annotations

import re
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.conftest import ROOT
from tests.support.service_images import compose_service, dockerfile

IMAGES = {"caption-service": "caption", "textgen-service": "textgen", "gateway-service": "gateway",
          "bot-service": "bot"}  # fmt: skip
PIN = re.compile(r"^([A-Za-z0-9_.-]+)==([^\s;]+)$")


def pins(path: Path) -> dict[str, str]:
    found: dict[str, str] = {}
    for line in path.read_text().splitlines():
        if not line or line.startswith("#"):
            continue
        match = PIN.match(line)
        assert match, f"{path.name}: {line!r} is not name==version"
        found[canonicalize_name(match[1])] = match[2]
    return found


CONSTRAINTS = pins(ROOT / "constraints.txt")


def test_constraints_pin_every_installed_package_at_its_version() -> None:
    """`make install` used -c constraints.txt: a package added to pyproject.toml without
    `make locks` shows up here as unpinned."""
    for dist in metadata.distributions():
        name = canonicalize_name(dist.metadata["Name"])
        if name == "talkative":
            continue
        assert name in CONSTRAINTS, f"{name} is installed but not pinned: run `make locks`"
        assert CONSTRAINTS[name] == dist.version.split("+")[0], name


def _direct(extra: str, project: dict) -> set[str]:
    """The names an extra asks for, core dependencies and nested extras included."""
    names: set[str] = set()
    todo = [*project["dependencies"], *project["optional-dependencies"][extra]]
    while todo:
        requirement = Requirement(todo.pop())
        if canonicalize_name(requirement.name) == "talkative":
            for nested in requirement.extras:
                todo += project["optional-dependencies"][nested]
        else:
            names.add(canonicalize_name(requirement.name))
    return names


@pytest.mark.parametrize(("image", "extra"), IMAGES.items())
def test_each_image_lock_is_complete_and_agrees_with_the_constraints(
    image: str, extra: str
) -> None:
    lock = pins(ROOT / "requirements" / f"{image}.txt")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    missing = _direct(extra, project) - set(lock)
    assert not missing, f"{image}: {sorted(missing)} not locked: run `make locks`"
    for name, version in lock.items():
        assert CONSTRAINTS.get(name) == version, f"{image}: {name}=={version} vs constraints"
        for text in metadata.requires(name) or []:  # the closure: hard dependencies locked
            dependency = Requirement(text)
            if dependency.marker is None:
                assert canonicalize_name(dependency.name) in lock, f"{image}: {name} needs {text}"
    assert not any(n.startswith("tensorflow") for n in lock), image


@pytest.mark.parametrize("image", IMAGES)
def test_dockerfile_installs_its_lock_before_any_source(image: str) -> None:
    lines = dockerfile(compose_service(image)).splitlines()
    stages = [i for i, line in enumerate(lines) if line.startswith("FROM")]
    build = lines[stages[0] : stages[1]]
    lock_copy = build.index(f"COPY requirements/{image}.txt ./requirements/")
    lock_install = build.index(f"RUN pip install --no-deps -r requirements/{image}.txt")
    copies = [i for i, line in enumerate(build) if line.startswith("COPY") and i != lock_copy]
    assert lock_copy < lock_install < min(copies)  # no source edit reaches the deps layer
    project = next(i for i, line in enumerate(build) if 'pip install --no-deps ".[' in line)
    assert project > max(copies)
