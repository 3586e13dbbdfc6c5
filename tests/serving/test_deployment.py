"""The deployment files: docker compose (validated by Compose v2 itself), Dockerfiles,
TF Serving's batching and monitoring configs (parsed as the protos TF Serving reads)."""

from __future__ import annotations

import re
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from google.protobuf import (
    descriptor_pb2,
    descriptor_pool,
    message_factory,
    text_format,
    wrappers_pb2,
)

from tests.support.service_images import SERVICES, TEMPLATE, dockerfile
from training.serving_warmup import DEFAULT_BATCH_SIZES

ROOT = Path(__file__).resolve().parents[2]


# Compose v2, the tool the deployment runs (`docker compose`), not Debian bookworm's 1.29:
# only v2 knows the CPU override's `!reset`. The Makefile puts trixie's static binary here.
COMPOSE_V2 = ROOT / ".venv" / "libexec" / "docker-compose"


def compose_config(*files: Path, tmp_path: Path) -> dict[str, Any]:
    """`docker compose config` (v2) on the files: its own merge, schema check and
    interpolation, with .env.example as the .env (the documented defaults must make a
    valid stack). `tmp_path` receives the merged file for a failing test to show."""
    if not COMPOSE_V2.exists():
        pytest.fail(f"{COMPOSE_V2} is missing: `make compose-v2` installs Compose v2")
    # every profile, so the bot (profile "bot") is checked too
    args = [str(COMPOSE_V2), "--project-directory", str(ROOT), "--profile", "*"]
    args += ["--env-file", str(ROOT / ".env.example")]
    for f in files:
        args += ["-f", str(f)]
    result = subprocess.run(
        [*args, "config"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin:/usr/local/bin"},  # no stray variables from this shell
    )
    assert result.returncode == 0, result.stderr
    (tmp_path / "docker-compose.merged.yml").write_text(result.stdout)
    config: dict[str, Any] = yaml.safe_load(result.stdout)
    return config


def test_compose_file_validates_with_gpu_for_tfserving(tmp_path):
    config = compose_config(ROOT / "docker-compose.yml", tmp_path=tmp_path)
    services = config["services"]
    assert set(services) == {"tfserving", *SERVICES}
    tfs = services["tfserving"]
    # a tag, and its digest once `make pin-images` has run (deploy/pin-images.sh)
    pinned = r"(@sha256:[0-9a-f]{64})?"
    assert re.fullmatch(r"tensorflow/serving:\d+\.\d+\.\d+-gpu" + pinned, tfs["image"])
    devices = tfs["deploy"]["resources"]["reservations"]["devices"]
    assert devices == [{"driver": "nvidia", "count": 1, "capabilities": ["gpu"]}]
    flags = " ".join(tfs["command"])
    for flag in (
        "--model_config_file=/config/models.config",
        "--model_config_file_poll_wait_seconds=",
        "--allow_version_labels_for_unavailable_models=true",
        "--enable_batching=true",
        "--batching_parameters_file=/config/batching_parameters.txt",
        "--monitoring_config_file=/config/monitoring.config",
        "--enable_model_warmup=true",
    ):
        assert flag in flags, flag
    mounts = dict(volume(v) for v in tfs["volumes"])
    assert mounts == {"/models": True, "/config": True, "/healthcheck.sh": True}  # read-only
    for name, service in services.items():
        assert service.get("healthcheck", {}).get("test"), f"{name} has no healthcheck"
        assert service.get("restart") == "unless-stopped", name
        for dependency in service.get("depends_on", {}).values():
            assert dependency["condition"] == "service_healthy", name
    for name in SERVICES:
        build = services[name]["build"]
        assert build["dockerfile"] == TEMPLATE.relative_to(ROOT).as_posix()
        folder = build["args"]["SERVICE"]  # the gateway's folder is gateway-service
        assert folder.removesuffix("-service") == name.removesuffix("-service"), name
        assert (ROOT / folder).is_dir() and build["args"]["PORT"] == str(SERVICES[name])
    assert set(services["textgen-service"]["depends_on"]) == {"tfserving"}
    assert set(services["gateway"]["depends_on"]) == {"caption-service", "textgen-service"}
    env = services["textgen-service"]["environment"]
    assert (
        env["TEXTGEN_MODEL_BACKEND"] == "grpc" and env["TEXTGEN_MODEL_SERVER_HOST"] == "tfserving"
    )
    # only the gateway (and TF Serving's metrics, on loopback) reach the host
    published = {n: s["ports"] for n, s in services.items() if s.get("ports")}
    assert set(published) == {"gateway", "tfserving"}
    assert all(host_ip(p) == "127.0.0.1" for ports in published.values() for p in ports)


def volume(entry: Any) -> tuple[str, bool]:
    """(target, read_only) of a volume in the short or the long syntax."""
    if isinstance(entry, str):
        parts = entry.split(":")
        return parts[1], parts[2:] == ["ro"]
    return entry["target"], bool(entry.get("read_only"))


def host_ip(entry: Any) -> str:
    if isinstance(entry, str):
        return entry.rsplit(":", 2)[0] if entry.count(":") == 2 else "0.0.0.0"
    return str(entry.get("host_ip", "0.0.0.0"))


def test_cpu_override_drops_the_gpu_and_keeps_the_rest(tmp_path):
    gpu = compose_config(ROOT / "docker-compose.yml", tmp_path=tmp_path)
    cpu = compose_config(
        ROOT / "docker-compose.yml", ROOT / "docker-compose.cpu.yml", tmp_path=tmp_path
    )
    tfs = cpu["services"]["tfserving"]
    assert not tfs["image"].endswith("-gpu")
    assert not tfs["deploy"]["resources"].get("reservations", {}).get("devices")
    assert not any("gpu_memory" in flag for flag in tfs["command"])
    assert tfs["healthcheck"] == gpu["services"]["tfserving"]["healthcheck"]
    for name in SERVICES:
        assert cpu["services"][name] == gpu["services"][name]


def test_env_example_sets_every_variable_the_compose_files_use():
    used = set()
    for f in ("docker-compose.yml", "docker-compose.cpu.yml"):
        used |= set(re.findall(r"\$\{(\w+)", (ROOT / f).read_text()))
    example = (ROOT / ".env.example").read_text()
    documented = set(re.findall(r"^#?\s*(\w+)=", example, re.MULTILINE))
    assert used <= documented, sorted(used - documented)


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_dockerfiles_are_multistage_nonroot_with_healthcheck(service):
    text = dockerfile(service)
    stages = re.findall(r"^FROM \S+ AS (\w+)", text, re.MULTILINE)
    assert stages == ["build", "runtime"]
    runtime = text.split("AS runtime", 1)[1]
    assert "COPY --from=build /opt/venv /opt/venv" in runtime
    user = re.search(r"^USER (\S+)", runtime, re.MULTILINE)
    assert user and user.group(1).split(":")[0] not in ("root", "0")
    assert re.search(r"^HEALTHCHECK .*\n\s+CMD ", runtime, re.MULTILINE)
    assert f"EXPOSE {SERVICES[service]}" in runtime
    assert "python:3.11-slim" in text


def _extras() -> dict[str, list[str]]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras: dict[str, list[str]] = project["optional-dependencies"]
    return {"": project["dependencies"], **extras}


def _requirements(extra: str, extras: dict[str, list[str]]) -> set[str]:
    """The requirements `pip install ".[extra]"` asks for: the base ones, then the extra's,
    with talkative[...] self-references followed."""
    found: set[str] = set(extras[""]) if extra else set()
    for requirement in extras[extra]:
        nested = re.fullmatch(r"talkative\[([\w,\s-]+)\]", requirement.replace(" ", ""))
        if nested:
            for name in nested.group(1).split(","):
                found |= _requirements(name, extras)
        else:
            found.add(requirement)
    return found


def _pip_installs(dockerfile: str) -> list[str]:
    """Every `pip install ...` command of a Dockerfile's RUN lines (continuations joined)."""
    joined = re.sub(r"\\\n\s*", " ", dockerfile)
    runs = re.findall(r"^RUN (.+)$", joined, re.MULTILINE)
    return [cmd.strip() for run in runs for cmd in run.split("&&") if "pip install" in cmd]


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_service_images_install_no_tensorflow(service):
    """The services call TF Serving; none of their images carries a TensorFlow wheel."""
    text = dockerfile(service)
    installs = _pip_installs(text)
    assert installs, "the image installs the project"
    extras = _extras()
    for command in installs:
        assert "tensorflow" not in command.lower(), command
        for extra_list in re.findall(r"\.\[([\w,-]+)\]", command):
            for extra in extra_list.split(","):
                pulled = {r for r in _requirements(extra, extras) if "tensorflow" in r.lower()}
                assert not pulled, f"{command}: extra {extra!r} pulls {sorted(pulled)}"
    # and the build stops if anything brought TensorFlow in anyway
    assert "find_spec('tensorflow') is None" in text.split("AS runtime", 1)[0]


def test_the_in_process_backend_still_has_an_extra_with_tensorflow():
    extras = _extras()
    assert any("tensorflow" in r for r in _requirements("models", extras))
    assert {"grpcio", "protobuf"} <= {
        re.split(r"[<>=!~\[ ]", r, maxsplit=1)[0] for r in _requirements("remote", extras)
    }
    for service in ("caption", "textgen"):
        assert _requirements("remote", extras) <= _requirements(service, extras)
    assert _requirements("models", extras) <= _requirements("dev", extras)


def _proto_class(full_name: str, fields: list[tuple[str, int, int, str | None, bool]]) -> Any:
    """A message class built from the field list of TF Serving's .proto (the pip package of
    tensorflow-serving-api lacks these two), so text_format rejects any misspelt field."""
    package, _, name = full_name.rpartition(".")
    fd = descriptor_pb2.FileDescriptorProto(
        name=f"talkative_test/{name}.proto",
        package=package,
        dependency=["google/protobuf/wrappers.proto"],
    )
    message = fd.message_type.add(name=name)
    for field_name, number, kind, type_name, repeated in fields:
        message.field.add(
            name=field_name,
            number=number,
            type=kind,
            type_name=type_name,
            label=3 if repeated else 1,
        )
    pool = descriptor_pool.DescriptorPool()
    pool.AddSerializedFile(wrappers_pb2.DESCRIPTOR.serialized_pb)
    pool.Add(fd)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName(full_name))


FDP = descriptor_pb2.FieldDescriptorProto
INT64 = (FDP.TYPE_MESSAGE, ".google.protobuf.Int64Value")


def test_batching_parameters_parse_and_match_the_warmup():
    cls = _proto_class(
        "tensorflow.serving.BatchingParameters",
        [
            ("max_batch_size", 1, *INT64, False),
            ("batch_timeout_micros", 2, *INT64, False),
            ("max_enqueued_batches", 3, *INT64, False),
            ("num_batch_threads", 4, *INT64, False),
            ("thread_pool_name", 5, FDP.TYPE_MESSAGE, ".google.protobuf.StringValue", False),
            ("allowed_batch_sizes", 6, FDP.TYPE_INT64, None, True),
            ("pad_variable_length_inputs", 7, FDP.TYPE_BOOL, None, False),
        ],
    )
    params = text_format.Parse((ROOT / "serving" / "batching_parameters.txt").read_text(), cls())
    allowed = list(params.allowed_batch_sizes)
    assert allowed == sorted(set(allowed)) and allowed[-1] == params.max_batch_size.value
    assert tuple(allowed) == DEFAULT_BATCH_SIZES  # every padded batch shape gets warmed up
    assert params.pad_variable_length_inputs  # prompt_ids is [B, T] with T per request
    assert params.num_batch_threads.value >= 1
    assert 0 < params.batch_timeout_micros.value <= 10_000


def test_monitoring_config_enables_prometheus():
    prometheus = _proto_class(
        "tensorflow.serving.PrometheusConfig",
        [("enable", 1, FDP.TYPE_BOOL, None, False), ("path", 2, FDP.TYPE_STRING, None, False)],
    )
    text = (ROOT / "serving" / "monitoring.config").read_text()
    body = re.search(r"prometheus_config\s*\{(.*?)\}", text, re.DOTALL)
    assert body, "no prometheus_config block"
    config = text_format.Parse(body.group(1), prometheus())
    assert config.enable and config.path.startswith("/")


def test_compose_files_are_checked_by_a_compose_that_knows_reset():
    """The CPU override's `!reset` needs Compose 2.24 or later; older ones fail on it or,
    worse, merge the GPU reservation back in."""
    out = subprocess.run(
        [str(COMPOSE_V2), "version", "--short"], capture_output=True, text=True, check=True
    ).stdout
    major, minor = (int(x) for x in re.match(r"v?(\d+)\.(\d+)", out.strip()).groups())  # type: ignore[union-attr]
    assert (major, minor) >= (2, 24), out
