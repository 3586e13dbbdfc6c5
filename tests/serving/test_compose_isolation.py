"""How the compose files fence the stack in: networks, users, memory limits, secrets,
read-only file systems, TF Serving's GPU memory and per-model batching, and the
monitoring overlay. The files are validated and merged by Compose v2 itself first
(tests/serving/test_deployment.py compose_config), so these read what Compose would run."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot_service.settings import SECRET_FIELDS
from tests.serving.test_deployment import SERVICES, compose_config, host_ip
from tests.support.dockerignore import PatternMatcher, read_patterns
from tests.support.service_images import dockerfile
from training.serving_warmup import DEFAULT_BATCH_SIZES

ROOT = Path(__file__).resolve().parents[2]
MODELS_CONFIG = ROOT / "serving" / "models.config"
TEXT_MODELS = ("char_lstm_en", "char_lstm_fr", "gpt2_en", "gpt2_fr", "gpt2_es")


@pytest.fixture(scope="module")
def gpu(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return compose_config(ROOT / "docker-compose.yml", tmp_path=tmp_path_factory.mktemp("gpu"))


@pytest.fixture(scope="module")
def cpu(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return compose_config(
        ROOT / "docker-compose.yml",
        ROOT / "docker-compose.cpu.yml",
        tmp_path=tmp_path_factory.mktemp("cpu"),
    )


@pytest.fixture(scope="module")
def monitored(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return compose_config(
        ROOT / "docker-compose.yml",
        ROOT / "docker-compose.monitoring.yml",
        tmp_path=tmp_path_factory.mktemp("monitoring"),
    )


def networks(service: dict[str, Any]) -> set[str]:
    value = service.get("networks") or {"default": None}
    return set(value)


def members(config: dict[str, Any], network: str) -> set[str]:
    return {name for name, s in config["services"].items() if network in networks(s)}


def memory_bytes(text: str | int) -> int:
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([bkmg]?)b?", str(text).strip().lower())
    assert match, text
    return int(float(match.group(1)) * 1024 ** "bkmg".index(match.group(2) or "b"))


def test_networks_fence_tf_serving_and_the_bot(gpu: dict[str, Any], cpu: dict[str, Any]) -> None:
    for config in (gpu, cpu):
        services = config["services"]
        assert set(config["networks"]) == {"public", "services", "models"}
        assert networks(services["tfserving"]) == {"models"}
        assert members(config, "models") == {"tfserving", "caption-service", "textgen-service"}
        assert networks(services["gateway"]) == {"public", "services"}
        assert networks(services["bot-service"]) == {"public"}
        # the bot: the gateway (and, `public` not being internal, the internet); nothing else
        bot = networks(services["bot-service"])
        assert not bot & networks(services["tfserving"])
        for other in ("caption-service", "textgen-service"):
            assert not bot & networks(services[other]), other
        assert bot & networks(services["gateway"])
        assert config["networks"]["services"].get("internal") is True
        assert not config["networks"]["public"].get("internal")
        # every container on a named network: none on compose's flat `default`
        assert all("default" not in networks(s) for s in services.values())
        # each dependency shares a network with what depends on it
        for name, service in services.items():
            for dependency in service.get("depends_on", {}):
                assert networks(service) & networks(services[dependency]), (name, dependency)


def test_every_process_runs_as_a_non_root_user(gpu: dict[str, Any]) -> None:
    services = gpu["services"]
    user = str(services["tfserving"].get("user", ""))
    assert re.fullmatch(r"[1-9]\d*:[1-9]\d*", user), f"tfserving user {user!r}"
    for name in SERVICES:
        override = str(services[name].get("user", ""))
        assert override.split(":")[0] not in ("0", "root"), name
        text = dockerfile(name)
        uid = re.search(r"useradd .*--uid (\d+)", text)
        runtime_user = re.search(r"^USER (\S+)", text.split("AS runtime", 1)[1], re.MULTILINE)
        assert uid and int(uid.group(1)) > 0 and runtime_user, name
        assert runtime_user.group(1).split(":")[0] not in ("root", "0"), name


def test_read_only_root_file_systems(gpu: dict[str, Any], monitored: dict[str, Any]) -> None:
    for config in (gpu, monitored):
        for name, service in config["services"].items():
            assert service.get("read_only") is True, name
            assert "no-new-privileges:true" in service.get("security_opt", []), name
    # TF Serving reads its models and configs from read-only mounts, writes only on /tmp
    tfs = gpu["services"]["tfserving"]
    assert "/tmp" in tfs["tmpfs"] and tfs["environment"]["CUDA_CACHE_PATH"].startswith("/tmp/")


def test_memory_limits_on_every_service(
    gpu: dict[str, Any], cpu: dict[str, Any], monitored: dict[str, Any]
) -> None:
    # upper bounds: what the comments in docker-compose.yml justify from measured RSS
    bounds = {
        "gateway": (472e6, 1 << 30),  # peak 472 MB in the worst burst (docs/gateway.md)
        "bot-service": (64e6, 512 << 20),  # 64 MB resident idle
        "caption-service": (250e6, 512 << 20),  # 89 MB measured; one 160 MB decode on top
        "textgen-service": (95e6, 512 << 20),  # 95 MB measured (bench/remote_rss.py)
        "tfserving": (2 << 30, 16 << 30),  # CUDA libraries and the models: a few GB
        "prometheus": (100e6, 1 << 30),
        "blackbox": (16e6, 256 << 20),
    }
    for config in (gpu, cpu, monitored):
        for name, service in config["services"].items():
            limit = service.get("deploy", {}).get("resources", {}).get("limits", {}).get("memory")
            assert limit, f"{name} has no memory limit"
            low, high = bounds[name]
            assert low <= memory_bytes(limit) <= high, (name, limit)
    assert cpu["services"]["tfserving"]["deploy"]["resources"]["limits"]["cpus"]


def test_the_bots_credentials_are_compose_secrets(gpu: dict[str, Any]) -> None:
    bot = gpu["services"]["bot-service"]
    names = {f"bot_{field}" for field in SECRET_FIELDS}  # the files BotSettings reads
    assert {s["source"] if isinstance(s, dict) else s for s in bot["secrets"]} == names
    assert set(gpu["secrets"]) == names
    for name, secret in gpu["secrets"].items():
        assert Path(secret["file"]) == ROOT / "secrets" / name, name
    # no credential travels as an environment variable any more
    environment = bot.get("environment", {})
    keys = environment if isinstance(environment, dict) else [e.split("=")[0] for e in environment]
    assert not [k for k in keys if re.search(r"TOKEN|SECRET|API_KEY|CONSUMER_KEY", k)], keys
    # the files stay out of git and out of every image's build context
    ignored = subprocess.run(
        ["git", "check-ignore", "-q", "secrets/bot_mastodon_access_token"], cwd=ROOT
    )
    assert ignored.returncode == 0, "secrets/ is not in .gitignore"
    dockerignore = (ROOT / ".dockerignore").read_text(encoding="utf-8")
    assert PatternMatcher(read_patterns(dockerignore)).excluded("secrets/bot_gateway_api_key")


def test_make_secrets_creates_what_compose_mounts(gpu: dict[str, Any], tmp_path: Path) -> None:
    if shutil.which("make") is None:
        pytest.skip("make is missing")
    result = subprocess.run(
        [
            "make",
            "--no-print-directory",
            "-f",
            str(ROOT / "Makefile"),
            "-C",
            str(tmp_path),
            "secrets",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    folder = tmp_path / "secrets"
    assert {p.name for p in folder.iterdir()} == set(gpu["secrets"])
    assert folder.stat().st_mode & 0o077 == 0  # only the owner may look in
    for path in folder.iterdir():
        assert path.stat().st_size == 0 and path.stat().st_mode & 0o077 == 0, path


def test_gpu_memory_grows_through_the_session_config(
    gpu: dict[str, Any], cpu: dict[str, Any]
) -> None:
    config_pb2 = pytest.importorskip("tensorflow.core.protobuf.config_pb2")
    from google.protobuf import text_format

    flags = gpu["services"]["tfserving"]["command"]
    assert "--tensorflow_session_config_file=/config/session_config.gpu.pbtxt" in flags
    # --platform_config_file would make TF Serving ignore the batching, warm-up and
    # memory fraction flags (model_servers/main.cc): the session config file is used instead
    assert not any(f.startswith("--platform_config_file") for f in flags)
    text = (ROOT / "serving" / "session_config.gpu.pbtxt").read_text(encoding="utf-8")
    session = text_format.Parse(text, config_pb2.ConfigProto())
    assert session.gpu_options.allow_growth
    fraction = [f for f in flags if f.startswith("--per_process_gpu_memory_fraction=")]
    assert len(fraction) == 1 and 0 < float(fraction[0].split("=")[1]) <= 1
    assert not any("session_config.gpu" in f for f in cpu["services"]["tfserving"]["command"])


def listed_models() -> set[str]:
    return set(re.findall(r'name:\s*"([^"]+)"', MODELS_CONFIG.read_text(encoding="utf-8")))


def test_per_model_batching_files(gpu: dict[str, Any], cpu: dict[str, Any]) -> None:
    """Text models batch with their own batching_params.pbtxt; the captioner has none, so
    it never waits for the batch threads the text models hold (serving/README.md)."""
    from model_server.batching import PER_MODEL_FILE, BatchingOptions, per_model_options

    for config in (gpu, cpu):
        flags = config["services"]["tfserving"]["command"]
        assert "--enable_batching=true" in flags
        assert "--enable_per_model_batching_parameters=true" in flags
    assert listed_models() == {"captioner", *TEXT_MODELS}
    template = BatchingOptions.from_file(ROOT / "serving" / "text_model_batching_params.pbtxt")
    versions = {
        name: sorted(p for p in (ROOT / "serving" / "models" / name).iterdir() if p.name.isdigit())
        for name in listed_models()
    }
    assert all(versions.values()), versions
    for version_dir in versions["captioner"]:
        assert not (version_dir / PER_MODEL_FILE).exists(), version_dir
    for name in TEXT_MODELS:
        for version_dir in versions[name]:
            options = per_model_options(version_dir)
            assert options is not None, f"{version_dir} has no {PER_MODEL_FILE}"
            assert options == template, version_dir
            assert options.allowed_batch_sizes == DEFAULT_BATCH_SIZES  # the shapes warmed up
            assert options.allowed_batch_sizes[-1] == options.max_batch_size
            assert options.pad_variable_length_inputs  # prompt_ids is [B, T]


def test_the_healthcheck_checks_models_and_the_gpu(
    gpu: dict[str, Any], cpu: dict[str, Any]
) -> None:
    check = gpu["services"]["tfserving"]["healthcheck"]["test"]
    assert check[:3] == ["CMD", "bash", "/healthcheck.sh"]
    assert set(check[3:]) == listed_models()
    assert gpu["services"]["tfserving"]["environment"]["TFSERVING_REQUIRE_GPU"] == "1"
    assert cpu["services"]["tfserving"]["environment"]["TFSERVING_REQUIRE_GPU"] == "0"
    mounts = dict(
        (v["target"], v["source"]) if isinstance(v, dict) else (v.split(":")[1], v.split(":")[0])
        for v in gpu["services"]["tfserving"]["volumes"]
    )
    # the one copy, which kustomize's ConfigMap reads too
    assert mounts["/healthcheck.sh"].endswith("deploy/k8s/base/serving-config/healthcheck.sh")


def test_the_monitoring_overlay(monitored: dict[str, Any], gpu: dict[str, Any]) -> None:
    services = monitored["services"]
    assert set(services) == set(gpu["services"]) | {"prometheus", "blackbox"}
    for name in gpu["services"]:
        assert services[name] == gpu["services"][name], name  # the stack itself unchanged
    assert networks(services["prometheus"]) == {"public", "services", "models"}
    assert networks(services["blackbox"]) == {"models"}
    assert members(monitored, "models") == {
        "tfserving",
        "caption-service",
        "textgen-service",
        "prometheus",
        "blackbox",
    }
    for name in ("prometheus", "blackbox"):
        assert re.fullmatch(r"[1-9]\d*:[1-9]\d*", str(services[name]["user"])), name
    assert all(host_ip(p) == "127.0.0.1" for p in services["prometheus"]["ports"])
    assert not services["blackbox"].get("ports")

    scrape = yaml.safe_load((ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in scrape["scrape_configs"]}
    env = {name: s.get("environment", {}) for name, s in services.items()}
    expected = {
        "gateway": f"gateway:{env['gateway']['GATEWAY_METRICS_PORT']}",
        "caption-service": f"caption-service:{env['caption-service']['CAPTION_PORT']}",
        "textgen-service": f"textgen-service:{env['textgen-service']['TEXTGEN_PORT']}",
        "bot-service": f"bot-service:{env['bot-service']['BOT_PORT']}",
        "tfserving": "tfserving:8501",
    }
    for job, target in expected.items():
        targets = [t for c in jobs[job]["static_configs"] for t in c["targets"]]
        assert targets == [target], job
        host = target.split(":")[0]
        assert networks(services["prometheus"]) & networks(services[host]), job
    monitoring = (ROOT / "serving" / "monitoring.config").read_text(encoding="utf-8")
    assert f'path: "{jobs["tfserving"]["metrics_path"]}"' in monitoring
    used = set(re.findall(r"\$\{(\w+)", (ROOT / "docker-compose.monitoring.yml").read_text()))
    example = (ROOT / ".env.example").read_text(encoding="utf-8")
    assert used <= set(re.findall(r"^#?\s*(\w+)=", example, re.MULTILINE)), used
    probes = [t for c in jobs["tfserving-models"]["static_configs"] for t in c["targets"]]
    probed = {m for t in probes for m in re.findall(r"/v1/models/([^/]+)/labels/stable$", t)}
    assert probed == listed_models() and len(probes) == len(probed)
