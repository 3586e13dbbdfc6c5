"""The four service images as the tests read them: deploy/docker/service.Dockerfile with
each service's build arguments from docker-compose.yml substituted, the text Docker
would build for that service."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "deploy" / "docker" / "service.Dockerfile"
COMPOSE = ROOT / "docker-compose.yml"
# service -> the port it listens on
SERVICES = {"textgen-service": 8002, "caption-service": 8001, "gateway": 8000, "bot-service": 8004}


@cache
def build_args(service: str) -> dict[str, str]:
    """The service's `build:` in docker-compose.yml: dockerfile and args."""
    build = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))["services"][service]["build"]
    assert build["dockerfile"] == TEMPLATE.relative_to(ROOT).as_posix(), service
    return {key: str(value) for key, value in build["args"].items()}


def compose_service(folder: str) -> str:
    """The compose service whose image is built from `folder` (its SERVICE build argument):
    the gateway's folder is gateway-service, its compose service (and host name) gateway."""
    return next(name for name in SERVICES if build_args(name)["SERVICE"] == folder)


def dockerfile(service: str) -> str:
    """The template with `${ARG}` replaced by the service's build argument (or the ARG's
    default); an argument the template uses but nobody sets fails here."""
    text = TEMPLATE.read_text(encoding="utf-8")
    values = dict(re.findall(r"^ARG (\w+)=(\S+)$", text, re.MULTILINE)) | build_args(service)
    declared = set(re.findall(r"^ARG (\w+)", text, re.MULTILINE))
    assert set(build_args(service)) <= declared, f"{service}: args the template lacks"

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in declared:
            return match.group(0)  # a variable of the environment ($PATH), not an argument
        assert name in values, f"{service}: no value for ARG {name}"
        return values[name]

    return re.sub(r"\$\{(\w+)\}", value, text)
