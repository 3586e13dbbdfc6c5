"""The Kubernetes manifests (deploy/k8s), checked offline: no cluster is needed.

Every overlay (gpu, cpu, kserve) is rendered with `kubectl kustomize` (Debian's
kubernetes-client, kubectl 1.20 with kustomize v2, or whichever kubectl is on PATH;
$KUBECTL picks another), and every object is validated against the schemas of each of
KUBERNETES_VERSIONS by kubernetes-validate in strict mode (no unknown fields).
KServe's InferenceService has no schema there: its required fields are checked here, and
its pod spec is validated as a core/v1 Pod.

Then what a schema cannot see: resources and probes on every container, locked-down
pods, selectors that select, Service and Ingress ports that exist, the environment the
services really read (their settings classes), NetworkPolicies that reproduce
docker-compose.yml's isolation connection by connection (plus the gateway's Redis, which
compose does not have: one host needs none), a Redis sized for the stories it keeps and
locked by a password that only Secrets carry, the
GPU in the gpu overlay only, and the decisions of docker-compose.yml (TF Serving's flags,
users, memory limits) mirrored. docs/kubernetes.md, "Validation", says what this cannot
prove.
"""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import kubernetes_validate
import kubernetes_validate.utils
import pytest
import yaml

from tests.support.service_images import dockerfile

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
SERVING = ROOT / "serving"
SERVING_CONFIG = K8S / "base" / "serving-config"
SECRETS = K8S / "base" / "secrets"
OVERLAYS = ("gpu", "cpu", "kserve")
GPU_OVERLAYS = ("gpu", "kserve")
NAMESPACE = "talkative"
# The schemas every object must pass: the version these manifests were written against
# (autoscaling/v2, policy/v1 and the Pod Security Admission labels need 1.25 at least),
# and the newest that the pinned kubernetes-validate (1.37.0) carries, so that an API
# removed since fails here rather than on a new cluster.
KUBERNETES_VERSIONS = ("1.33", "1.37")
PART_OF = {"app.kubernetes.io/part-of": "talkative"}
GPU = "nvidia.com/gpu"

# What kubectl 1.20's kustomize (v2.0.3) understands and newer ones still render.
KUSTOMIZE_V2_FIELDS = {
    "apiVersion",
    "kind",
    "namespace",
    "namePrefix",
    "nameSuffix",
    "commonAnnotations",
    "bases",
    "resources",
    "generatorOptions",
    "configMapGenerator",
    "secretGenerator",
    "patchesStrategicMerge",
    "patchesJson6902",
    "images",
}

# Our images: the settings class each reads, and its environment prefix.
SERVICES = {
    "caption-service": ("caption_service.settings", "CaptionSettings", "CAPTION_"),
    "textgen-service": ("textgen_service.settings", "TextgenSettings", "TEXTGEN_"),
    "gateway": ("gateway_service.settings", "GatewaySettings", "GATEWAY_"),
    "bot-service": ("bot_service.settings", "BotSettings", "BOT_"),
}
# Variables that are no service setting, and who reads them.
OTHER_ENV = {
    "FORWARDED_ALLOW_IPS",  # uvicorn: whose X-Forwarded-For to trust (gateway)
    "TFSERVING_REQUIRE_GPU",  # serving/healthcheck.sh
    "TFSERVING_REST_PORT",  # serving/healthcheck.sh
    "CUDA_CACHE_PATH",  # CUDA's JIT cache, in TF Serving
}

# docker-compose.yml's isolation, as connections (from, to, port) inside the namespace.
COMPOSE_CONNECTIONS = {
    ("gateway", "caption-service", 8001),
    ("gateway", "textgen-service", 8002),
    ("caption-service", "tfserving", 8500),
    ("caption-service", "tfserving", 8501),
    ("textgen-service", "tfserving", 8500),
    ("textgen-service", "tfserving", 8501),
    ("bot-service", "gateway", 8000),
}
# Kubernetes only: the Redis the gateway replicas share (stories, cards, rate counts).
# Compose has none: on one host, one gateway process keeps them in its own memory.
REDIS = "redis"
REDIS_PORT = 6379
# What the render puts in Redis's secret files (redis-auth, kustomization.yaml): a
# distinctive password, so that a copy of it anywhere outside a Secret is found.
REDIS_PASSWORD = "placeholder-redis-password-0f3c9a"
REDIS_SECRET_FILES = {
    "redis_password": REDIS_PASSWORD,
    "gateway_store_url": f"redis://:{REDIS_PASSWORD}@{REDIS}:{REDIS_PORT}/0",
    "gateway_rate_limit_storage": f"redis://:{REDIS_PASSWORD}@{REDIS}:{REDIS_PORT}/1",
}
REDIS_URL = re.compile(r"\b(rediss?|unix)://")
K8S_ONLY_CONNECTIONS = {("gateway", REDIS, REDIS_PORT)}
EXPECTED_CONNECTIONS = COMPOSE_CONNECTIONS | K8S_ONLY_CONNECTIONS
# Pods of images that are not ours, with the user each runs as: the official Redis
# image's `redis` user.
THIRD_PARTY_USERS = {REDIS: "999:999"}
# The most a story takes in Redis once its card is fetched: photo (up to 0.4 MB) and card
# (up to 0.9 MB) plus its text, docs/gateway.md, "The story store" (0.64 MB measured by
# tests/gateway/test_replicas.py with its small photo, docs/scaling.md).
STORY_MAX_BYTES = 1_500_000
METRICS_PORT = 9000
PRIVATE_NETWORKS = [
    ipaddress.IPv4Network(n)
    for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16")
]

# KServe v1beta1 PredictorSpec: the component's own fields, then its implementations;
# anything else in it is an inline core/v1 PodSpec field (the custom predictor).
KSERVE_EXTENSION_FIELDS = {
    "minReplicas",
    "maxReplicas",
    "scaleTarget",
    "scaleMetric",
    "scaleMetricType",
    "containerConcurrency",
    "timeout",
    "canaryTrafficPercent",
    "logger",
    "batcher",
    "labels",
    "annotations",
    "deploymentStrategy",
    "autoScaling",
}
KSERVE_IMPLEMENTATIONS = {
    "model",
    "sklearn",
    "xgboost",
    "tensorflow",
    "pytorch",
    "triton",
    "onnx",
    "pmml",
    "lightgbm",
    "paddle",
    "huggingface",
}
KSERVE_CONTAINER = "kserve-container"  # the name KServe gives the predictor's container


# --- rendering ----------------------------------------------------------------------------


def kubectl() -> str:
    found = os.environ.get("KUBECTL") or shutil.which("kubectl")
    if found is None:
        pytest.fail(
            "kubectl is missing: apt-get install -y kubernetes-client (make system-deps), "
            "or point KUBECTL at one"
        )
    return found


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """deploy/k8s copied, its secret files replaced by placeholders (empty ones for the
    credentials, as an operator leaves those unused; Redis's password and URLs, which
    are never empty): the same render on every machine, whatever a checkout holds."""
    copy = tmp_path_factory.mktemp("k8s") / "k8s"
    shutil.copytree(
        K8S,
        copy,
        ignore=lambda folder, names: (
            [n for n in names if n not in (".gitignore", "README.md")]
            if Path(folder) == SECRETS
            else []
        ),
    )
    for name in secret_files():
        (copy / "base" / "secrets" / name).write_text(REDIS_SECRET_FILES.get(name, ""))
    return copy


def secret_files() -> list[str]:
    kustomization = yaml.safe_load((K8S / "base" / "kustomization.yaml").read_text())
    return [
        Path(f).name for generator in kustomization["secretGenerator"] for f in generator["files"]
    ]


@pytest.fixture(scope="module")
def rendered(tree: Path) -> dict[str, list[dict[str, Any]]]:
    """Each overlay as `kubectl kustomize` renders it."""
    out = {}
    for overlay in OVERLAYS:
        done = subprocess.run(
            [kubectl(), "kustomize", str(tree / "overlays" / overlay)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, f"kubectl kustomize overlays/{overlay}:\n{done.stderr}"
        out[overlay] = [doc for doc in yaml.safe_load_all(done.stdout) if doc]
    return out


@pytest.fixture(params=OVERLAYS)
def objects(
    request: pytest.FixtureRequest, rendered: dict[str, list[dict[str, Any]]]
) -> list[dict[str, Any]]:
    """The objects of one overlay, rendered: a test taking them runs once per overlay."""
    return rendered[request.param]


@dataclass
class Pod:
    """A pod template: a Deployment's, or a KServe predictor's."""

    owner: str  # "Deployment/gateway"
    name: str  # app.kubernetes.io/name
    labels: dict[str, str]
    spec: dict[str, Any]
    namespace: str = NAMESPACE

    @property
    def containers(self) -> list[dict[str, Any]]:
        return list(self.spec.get("containers", [])) + list(self.spec.get("initContainers", []))

    def port(self, wanted: int | str) -> int | None:
        """The container port a number or a port name means here, or None."""
        for container in self.spec.get("containers", []):
            for port in container.get("ports", []):
                if wanted in (port["containerPort"], port.get("name")):
                    return int(port["containerPort"])
        return None

    @property
    def ports(self) -> set[int]:
        return {
            int(p["containerPort"])
            for c in self.spec.get("containers", [])
            for p in c.get("ports", [])
        }


def pods_of(objects: list[dict[str, Any]]) -> list[Pod]:
    pods = []
    for obj in objects:
        if obj["kind"] == "Deployment":
            template = obj["spec"]["template"]
            labels = template["metadata"].get("labels", {})
            pods.append(
                Pod(
                    f"Deployment/{obj['metadata']['name']}",
                    labels.get("app.kubernetes.io/name", ""),
                    labels,
                    template["spec"],
                )
            )
        elif obj["kind"] == "InferenceService":
            predictor = obj["spec"]["predictor"]
            labels = {
                **predictor.get("labels", {}),
                "serving.kserve.io/inferenceservice": obj["metadata"]["name"],
                "component": "predictor",
            }
            pods.append(
                Pod(
                    f"InferenceService/{obj['metadata']['name']}",
                    labels.get("app.kubernetes.io/name", ""),
                    labels,
                    kserve_pod_spec(predictor),
                )
            )
    return pods


def kserve_pod_spec(predictor: dict[str, Any]) -> dict[str, Any]:
    return {
        k: v
        for k, v in predictor.items()
        if k not in KSERVE_EXTENSION_FIELDS | KSERVE_IMPLEMENTATIONS
    }


def services_of(objects: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The Services, with those KServe makes in RawDeployment mode: `<name>-predictor`,
    the first container port on 80 and every other on its own number."""
    services = {o["metadata"]["name"]: o for o in objects if o["kind"] == "Service"}
    for obj in objects:
        if obj["kind"] == "InferenceService":
            name = obj["metadata"]["name"]
            container = kserve_pod_spec(obj["spec"]["predictor"])["containers"][0]
            ports = container.get("ports", [])
            services[f"{name}-predictor"] = {
                "kind": "Service",
                "metadata": {"name": f"{name}-predictor"},
                "spec": {
                    "selector": {"serving.kserve.io/inferenceservice": name},
                    "ports": [
                        {
                            "name": p.get("name"),
                            "port": 80 if i == 0 else p["containerPort"],
                            "targetPort": p["containerPort"],
                        }
                        for i, p in enumerate(ports)
                    ],
                },
            }
    return services


def by_kind(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] == kind]


def named(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    found = [o for o in by_kind(objects, kind) if o["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}: {len(found)} found"
    return found[0]


def selects(selector: dict[str, Any] | None, labels: dict[str, str]) -> bool:
    """A LabelSelector (matchLabels, matchExpressions) against a set of labels."""
    if selector is None:
        return False
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions") or []:
        key, operator = expression["key"], expression["operator"]
        values = expression.get("values", [])
        present = key in labels
        if (
            (operator == "In" and labels.get(key) not in values)
            or (operator == "NotIn" and present and labels[key] in values)
            or (operator == "Exists" and not present)
            or (operator == "DoesNotExist" and present)
        ):
            return False
    return True


def selected(selector: dict[str, Any] | None, pods: list[Pod]) -> list[Pod]:
    return [p for p in pods if selects(selector, p.labels)]


def service_targets(service: dict[str, Any], pods: list[Pod]) -> list[Pod]:
    """A Service's selector is a plain map of labels, not a LabelSelector."""
    return selected({"matchLabels": service["spec"]["selector"]}, pods)


def service_image(container: dict[str, Any]) -> str | None:
    """Which of our services an image is (talkative/gateway:0.1.0, or under a registry)."""
    repository = container["image"].rsplit(":", 1)[0]
    for service in SERVICES:
        if repository == f"talkative/{service}" or repository.endswith(f"/talkative/{service}"):
            return service
    return None


def quantity(value: str | int | float) -> Fraction:
    """A Kubernetes resource quantity (100m, 0.5, 384Mi, 4Gi, 2G), exactly."""
    match = re.fullmatch(r"([0-9]+(?:\.[0-9]+)?)(m|k|M|G|T|Ki|Mi|Gi|Ti)?", str(value))
    assert match, f"{value!r} is not a Kubernetes quantity"
    number, suffix = match.groups()
    scale = {
        None: Fraction(1),
        "m": Fraction(1, 1000),
        "k": Fraction(10**3),
        "M": Fraction(10**6),
        "G": Fraction(10**9),
        "T": Fraction(10**12),
        "Ki": Fraction(2**10),
        "Mi": Fraction(2**20),
        "Gi": Fraction(2**30),
        "Ti": Fraction(2**40),
    }[suffix]
    return Fraction(number) * scale


def models_in_config(path: Path) -> list[str]:
    return re.findall(r'^\s*name:\s*"([^"]+)"', path.read_text(), flags=re.MULTILINE)


def config_map_data(objects: list[dict[str, Any]], name: str) -> dict[str, str]:
    return dict(named(objects, "ConfigMap", name).get("data") or {})


def secret_data(objects: list[dict[str, Any]], name: str) -> dict[str, str]:
    """A rendered Secret's values, decoded: the placeholders the `tree` fixture wrote."""
    data = named(objects, "Secret", name).get("data") or {}
    return {k: base64.b64decode(v).decode() for k, v in data.items()}


def container_env(objects: list[dict[str, Any]], container: dict[str, Any]) -> dict[str, str]:
    """A container's environment as the kubelet builds it (envFrom, then env); values from
    Secrets are their placeholders."""
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            env.update(config_map_data(objects, source["configMapRef"]["name"]))
        if "secretRef" in source:
            env.update(secret_data(objects, source["secretRef"]["name"]))
    for variable in container.get("env", []):
        if "value" in variable:
            env[variable["name"]] = str(variable["value"])
        else:
            reference = variable["valueFrom"]
            if "configMapKeyRef" in reference:
                ref = reference["configMapKeyRef"]
                env[variable["name"]] = config_map_data(objects, ref["name"])[ref["key"]]
            elif "secretKeyRef" in reference:
                ref = reference["secretKeyRef"]
                env[variable["name"]] = secret_data(objects, ref["name"])[ref["key"]]
            else:
                env[variable["name"]] = ""
    return env


def tfserving_pod(objects: list[dict[str, Any]]) -> Pod:
    found = [p for p in pods_of(objects) if p.name == "tfserving"]
    assert len(found) == 1
    return found[0]


def compose(name: str) -> dict[str, Any]:
    class Loader(yaml.SafeLoader):
        pass

    # compose's merge tags: only the tfserving service's own keys are read here
    Loader.add_constructor("!reset", lambda loader, node: None)
    Loader.add_constructor(
        "!override",
        lambda loader, node: (
            loader.construct_sequence(node)
            if isinstance(node, yaml.SequenceNode)
            else loader.construct_mapping(node)
            if isinstance(node, yaml.MappingNode)
            else loader.construct_scalar(node)
        ),
    )
    return dict(yaml.load((ROOT / name).read_text(), Loader=Loader))


def parse(pattern: str, text: str) -> tuple[str, ...]:
    match = re.fullmatch(pattern, text)
    assert match, f"{text!r} does not match {pattern}"
    return match.groups()


def interpolate(value: str) -> str:
    """Compose's ${VAR:-default} with nothing set: the default."""
    return re.sub(r"\$\{[A-Z_0-9]+:-([^}]*)\}", r"\1", value)


# --- the sources --------------------------------------------------------------------------


def kustomizations() -> Iterator[Path]:
    yield from sorted(K8S.rglob("kustomization.yaml"))


def test_kustomizations_use_only_what_kubectl_1_20_understands() -> None:
    found = list(kustomizations())
    assert len(found) >= 6
    for path in found:
        fields = set(yaml.safe_load(path.read_text()))
        assert fields <= KUSTOMIZE_V2_FIELDS, (
            f"{path.relative_to(ROOT)}: {sorted(fields - KUSTOMIZE_V2_FIELDS)} is not in "
            "kustomize v2 (kubectl 1.20): see the list in deploy/k8s/base/kustomization.yaml"
        )
        # commonLabels would reach into NetworkPolicy peers of other namespaces
        assert "commonLabels" not in fields


def test_serving_config_copies_equal_serving() -> None:
    """kustomize reads files under its kustomization root only, so TF Serving's configs
    are copies of serving/; a copy that drifted fails here with the command to resync."""
    generator = yaml.safe_load((SERVING_CONFIG / "kustomization.yaml").read_text())
    files = [f for g in generator["configMapGenerator"] for f in g["files"]]
    assert {"models.config", "batching_parameters.txt", "monitoring.config"} <= set(files)
    assert not (SERVING / "healthcheck.sh").exists()  # its one source is the ConfigMap's
    for name in files:
        if name == "healthcheck.sh":
            continue
        copy, original = SERVING_CONFIG / name, SERVING / name
        assert copy.read_bytes() == original.read_bytes(), (
            f"deploy/k8s/base/serving-config/{name} differs from serving/{name}: "
            f"cp serving/{name} deploy/k8s/base/serving-config/{name}"
        )
    # every file TF Serving is told to read from /config is in the ConfigMap
    flags = " ".join(
        compose("docker-compose.yml")["services"]["tfserving"]["command"]
        + compose("docker-compose.cpu.yml")["services"]["tfserving"]["command"]
    )
    assert set(re.findall(r"/config/([\w.]+)", flags)) <= set(files)


def test_no_secret_value_is_committed() -> None:
    tracked = subprocess.run(
        ["git", "ls-files", "deploy/k8s"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    in_secrets = {Path(p).name for p in tracked if Path(p).parent == SECRETS.relative_to(ROOT)}
    assert in_secrets <= {".gitignore", "README.md"}
    for name in secret_files():
        ignored = subprocess.run(
            ["git", "check-ignore", "-q", str(SECRETS / name)], cwd=ROOT, check=False
        )
        assert ignored.returncode == 0, f"deploy/k8s/base/secrets/{name} is not gitignored"
    # and no manifest carries a Secret of its own (values would be in git)
    for path in K8S.rglob("*.yaml"):
        for doc in yaml.safe_load_all(path.read_text()):
            assert not (isinstance(doc, dict) and doc.get("kind") == "Secret"), path


# --- schemas ------------------------------------------------------------------------------


def test_the_schemas_of_every_version_are_there() -> None:
    """A version that kubernetes-validate lacks would fail every object below alike."""
    available = {".".join(v.split(".")[:2]) for v in kubernetes_validate.utils.all_versions()}
    assert set(KUBERNETES_VERSIONS) <= available, sorted(available)


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_object_validates_against_the_kubernetes_schemas(
    rendered: dict[str, list[dict[str, Any]]], overlay: str, version: str
) -> None:
    objects = rendered[overlay]
    kinds = {o["kind"] for o in objects}
    assert {
        "Namespace",
        "Deployment",
        "Service",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
        "NetworkPolicy",
        "Ingress",
        "ConfigMap",
        "Secret",
        "PersistentVolumeClaim",
    } <= kinds
    names = [(o["kind"], o["metadata"]["name"]) for o in objects]
    assert len(names) == len(set(names)), "an object is rendered twice"
    for obj in objects:
        what = f"{overlay}, Kubernetes {version}: {obj['kind']}/{obj['metadata']['name']}"
        if obj["kind"] == "InferenceService":
            check_inference_service(obj, version)
            continue
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.ValidationError as error:
            path = ".".join(str(p) for p in error.path)
            pytest.fail(f"{what}: {path}: {error.message}")
        except kubernetes_validate.SchemaNotFoundError as error:
            pytest.fail(f"{what}: {error.message}")
        if obj["kind"] != "Namespace":
            assert obj["metadata"].get("namespace") == NAMESPACE, what
        assert PART_OF.items() <= obj["metadata"].get("labels", {}).items(), what


def check_inference_service(obj: dict[str, Any], version: str) -> None:
    """KServe's CRD takes any spec (x-kubernetes-preserve-unknown-fields); what its webhook
    and controller require is checked here (serving.kserve.io/v1beta1)."""
    assert obj["apiVersion"] == "serving.kserve.io/v1beta1"
    name = obj["metadata"]["name"]
    # KServe's name rule (a DNS-1035 label), which rules out our model names (char_lstm_en)
    assert re.fullmatch(r"[a-z]([-a-z0-9]*[a-z0-9])?", name) and len(name) <= 63
    assert obj["metadata"].get("namespace") == NAMESPACE
    assert PART_OF.items() <= obj["metadata"].get("labels", {}).items()
    annotations = obj["metadata"].get("annotations", {})
    mode = annotations.get("serving.kserve.io/deploymentMode", "Serverless")
    assert mode in {"RawDeployment", "Serverless", "ModelMesh"}
    predictor = obj["spec"]["predictor"]  # required
    assert set(obj["spec"]) <= {"predictor", "transformer", "explainer"}
    implementations = [k for k in predictor if k in KSERVE_IMPLEMENTATIONS]
    custom = "containers" in predictor
    assert len(implementations) + custom == 1, "exactly one predictor implementation"
    minimum, maximum = predictor.get("minReplicas", 1), predictor.get("maxReplicas", 0)
    assert minimum >= 0 and maximum >= 0 and (maximum == 0 or minimum <= maximum)
    assert predictor.get("labels", {}).get("app.kubernetes.io/name"), "pods need our labels"
    if custom:
        containers = predictor["containers"]
        assert containers[0]["name"] == KSERVE_CONTAINER
        if mode == "Serverless":  # Knative: one port per pod
            assert sum(len(c.get("ports", [])) for c in containers) <= 1
        # the inline PodSpec is a PodSpec: the Kubernetes schema says what that is
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": f"{name}-predictor", "namespace": NAMESPACE},
            "spec": kserve_pod_spec(predictor),
        }
        try:
            kubernetes_validate.validate(pod, version, strict=True)
        except kubernetes_validate.ValidationError as error:
            path = ".".join(str(p) for p in error.path)
            pytest.fail(f"InferenceService/{name} predictor ({version}): {path}: {error.message}")


# --- pods ---------------------------------------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_container_has_requests_limits_and_probes(
    rendered: dict[str, list[dict[str, Any]]], overlay: str
) -> None:
    pods = pods_of(rendered[overlay])
    assert {p.name for p in pods} == {*SERVICES, "tfserving", REDIS}
    models = models_in_config(SERVING / "models.config")
    assert len(models) >= 5
    for pod in pods:
        for container in pod.containers:
            what = f"{overlay}: {pod.owner} {container['name']}"
            resources = container.get("resources", {})
            requests, limits = resources.get("requests", {}), resources.get("limits", {})
            for resource in ("cpu", "memory"):
                assert resource in requests and resource in limits, f"{what}: {resource}"
            for resource, request in requests.items():
                if resource in limits:
                    assert quantity(request) <= quantity(limits[resource]), f"{what}: {resource}"
            for resource in limits:
                quantity(limits[resource])
            for probe in ("livenessProbe", "readinessProbe"):
                assert probe in container, f"{what}: no {probe}"
            service = service_image(container)
            if service is not None:
                # the services' own probes: alive on /healthz, ready on /readyz
                for probe, path in (
                    ("startupProbe", "/healthz"),
                    ("livenessProbe", "/healthz"),
                    ("readinessProbe", "/readyz"),
                ):
                    get = container[probe]["httpGet"]
                    assert get["path"] == path, f"{what}: {probe}"
                    assert pod.port(get["port"]) is not None, f"{what}: {probe} port"
            elif pod.name == REDIS:
                # alive while its port is open; ready when it answers PING to its password
                assert pod.port(container["livenessProbe"]["tcpSocket"]["port"]) == REDIS_PORT
                command = " ".join(container["readinessProbe"]["exec"]["command"])
                assert "redis-cli" in command and "ping" in command, what
                assert 'REDISCLI_AUTH="$REDIS_PASSWORD"' in command, f"{what}: no AUTH"
                assert 'test -n "$REDIS_PASSWORD"' in command, f"{what}: empty password"
            else:
                # TF Serving: ready when every model of models.config is AVAILABLE under
                # `stable`, on its REST status API (serving/healthcheck.sh)
                for probe in ("startupProbe", "readinessProbe"):
                    command = container[probe]["exec"]["command"]
                    assert command[:2] == ["bash", "/config/healthcheck.sh"], what
                    assert sorted(command[2:]) == sorted(models), f"{what}: {probe} models"
                startup = container["startupProbe"]
                assert startup["periodSeconds"] * startup["failureThreshold"] >= 300
                mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
                volumes = {v["name"]: v for v in pod.spec["volumes"]}
                config = volumes[mounts["/config"]]
                assert config["configMap"]["name"] == "tfserving-config"
                # a subPath mount would never see an updated models.config
                assert all("subPath" not in m for m in container["volumeMounts"])
                assert (
                    pod.port(8501) == 8501
                    and pod.port(8500) == 8500
                    and container_env(rendered[overlay], container)["TFSERVING_REST_PORT"] == "8501"
                )


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_pod_is_non_root_and_locked_down(
    rendered: dict[str, list[dict[str, Any]]], overlay: str
) -> None:
    """Pod Security's `restricted` profile (namespace.yaml enforces it) and more."""
    namespace = named(rendered[overlay], "Namespace", NAMESPACE)
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    for pod in pods_of(rendered[overlay]):
        spec, what = pod.spec, f"{overlay}: {pod.owner}"
        pod_context = spec.get("securityContext", {})
        assert pod_context.get("runAsNonRoot") is True, what
        assert pod_context.get("runAsUser", 0) > 0 and pod_context.get("runAsGroup", 0) > 0
        assert pod_context.get("seccompProfile", {}).get("type") == "RuntimeDefault", what
        assert spec.get("automountServiceAccountToken") is False, what
        # FOO_PORT=tcp://... from Service links would shadow GATEWAY_PORT and the like
        assert spec.get("enableServiceLinks") is False, what
        for key in ("hostNetwork", "hostPID", "hostIPC"):
            assert not spec.get(key), what
        for volume in spec.get("volumes", []):
            assert "hostPath" not in volume, what
            if "emptyDir" in volume:
                assert "sizeLimit" in volume["emptyDir"], f"{what}: {volume['name']}"
        for container in pod.containers:
            context = container.get("securityContext", {})
            where = f"{what} {container['name']}"
            assert context.get("allowPrivilegeEscalation") is False, where
            assert context.get("readOnlyRootFilesystem") is True, where
            assert context.get("privileged") is not True, where
            assert context.get("runAsNonRoot", True) is True, where
            assert context.get("capabilities", {}).get("drop") == ["ALL"], where
            assert not context.get("capabilities", {}).get("add"), where
            # read-only root: /tmp is a volume (for Redis, its working directory /data)
            writable = "/data" if pod.name == REDIS else "/tmp"
            assert writable in {m["mountPath"] for m in container.get("volumeMounts", [])}, where


def test_users_are_those_of_the_images_and_of_compose(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    tfserving_user = compose("docker-compose.yml")["services"]["tfserving"]["user"]
    for overlay in OVERLAYS:
        for pod in pods_of(rendered[overlay]):
            context = pod.spec["securityContext"]
            if pod.name == "tfserving":
                expected = tfserving_user
            elif pod.name in THIRD_PARTY_USERS:
                expected = THIRD_PARTY_USERS[pod.name]
            else:
                image = dockerfile(pod.name)
                uid = re.search(r"--uid (\d+)", image)
                gid = re.search(r"--gid (\d+)", image)
                assert uid and gid
                expected = f"{uid.group(1)}:{gid.group(1)}"
            assert f"{context['runAsUser']}:{context['runAsGroup']}" == expected, pod.owner


# --- wiring -------------------------------------------------------------------------------


def test_selectors_select_and_references_resolve(objects: list[dict[str, Any]]) -> None:
    pods = pods_of(objects)
    names = {(o["kind"], o["metadata"]["name"]) for o in objects}

    for deployment in by_kind(objects, "Deployment"):
        spec, what = deployment["spec"], f"Deployment/{deployment['metadata']['name']}"
        template_labels = spec["template"]["metadata"]["labels"]
        assert selects(spec["selector"], template_labels), f"{what}: selector"
        assert PART_OF.items() <= template_labels.items(), what
        # no other Deployment's pods fall under its selector
        assert len(selected(spec["selector"], pods)) == 1, f"{what}: selector overlaps"
        for pod in [p for p in pods if p.owner == what]:
            for volume in pod.spec.get("volumes", []):
                if "persistentVolumeClaim" in volume:
                    claim = volume["persistentVolumeClaim"]["claimName"]
                    assert ("PersistentVolumeClaim", claim) in names, f"{what}: {claim}"
                if "configMap" in volume:
                    assert ("ConfigMap", volume["configMap"]["name"]) in names, what
                if "secret" in volume:
                    assert ("Secret", volume["secret"]["secretName"]) in names, what
            for container in pod.containers:
                container_env(objects, container)  # every ConfigMap and Secret it names exists

    for service in services_of(objects).values():
        what = f"Service/{service['metadata']['name']}"
        assert service["spec"].get("selector"), f"{what} has no selector"
        targets = service_targets(service, pods)
        assert targets, f"{what} selects no pod"
        for port in service["spec"]["ports"]:
            target = port.get("targetPort", port["port"])
            for pod in targets:
                assert pod.port(target) is not None, f"{what}: {target} not on {pod.owner}"

    tfserving = services_of(objects).get("tfserving")
    if tfserving is not None:  # model-server/: headless, so DNS returns every pod
        assert tfserving["spec"]["clusterIP"] == "None"

    for budget in by_kind(objects, "PodDisruptionBudget"):
        what = f"PodDisruptionBudget/{budget['metadata']['name']}"
        targets = selected(budget["spec"]["selector"], pods)
        assert len(targets) == 1, f"{what} selects {len(targets)} pod templates"
        assert "maxUnavailable" in budget["spec"] or "minAvailable" in budget["spec"]

    autoscaled = set()
    for autoscaler in by_kind(objects, "HorizontalPodAutoscaler"):
        ref, spec = autoscaler["spec"]["scaleTargetRef"], autoscaler["spec"]
        assert (ref["kind"], ref["name"]) in names, f"HPA {ref['name']}: no target"
        target = named(objects, ref["kind"], ref["name"])
        # the HPA owns the replica count: a `replicas` here would reset it on every apply
        assert "replicas" not in target["spec"], f"Deployment/{ref['name']} has replicas"
        assert 1 <= spec.get("minReplicas", 1) <= spec["maxReplicas"]
        autoscaled.add(ref["name"])
    assert {"gateway", "caption-service", "textgen-service"} <= autoscaled

    bot = named(objects, "Deployment", "bot-service")
    # one writer of the SQLite state on a ReadWriteOnce volume: one pod, never two at once
    assert bot["spec"]["replicas"] == 1 and bot["spec"]["strategy"]["type"] == "Recreate"
    assert "bot-service" not in autoscaled

    ingresses = by_kind(objects, "Ingress")
    assert len(ingresses) == 1
    ingress = ingresses[0]["spec"]
    assert ingress.get("ingressClassName")
    hosts = {rule["host"] for rule in ingress["rules"]}
    assert ingress["tls"] and all(t["secretName"] for t in ingress["tls"])
    assert {h for t in ingress["tls"] for h in t["hosts"]} == hosts, "TLS for every host"
    services = services_of(objects)
    for rule in ingress["rules"]:
        for path in rule["http"]["paths"]:
            backend = path["backend"]["service"]
            assert backend["name"] == "gateway"
            ports = services[backend["name"]]["spec"]["ports"]
            wanted = backend["port"].get("name", backend["port"].get("number"))
            assert any(wanted in (p.get("name"), p["port"]) for p in ports)
    # card links point where the Ingress serves
    gateway = container_env(objects, named_container(objects, "gateway"))
    assert gateway["GATEWAY_PUBLIC_URL"] in {f"https://{h}" for h in hosts}


def named_container(objects: list[dict[str, Any]], service: str) -> dict[str, Any]:
    for pod in pods_of(objects):
        for container in pod.containers:
            if service_image(container) == service:
                return container
    raise AssertionError(f"no {service} container")


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_environment_is_the_services_real_settings(
    rendered: dict[str, list[dict[str, Any]]], overlay: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every variable is a field of the service's settings class (or a known other
    reader's), and the whole environment is accepted by that class."""
    import importlib

    objects = rendered[overlay]
    services = services_of(objects)
    seen = set()
    for pod in pods_of(objects):
        for container in pod.containers:
            env = container_env(objects, container)
            service = service_image(container)
            if pod.name == REDIS:
                # its password, for --requirepass and the readiness probe, and nothing else
                assert set(env) == {"REDIS_PASSWORD"}, f"{overlay}: Redis env {sorted(env)}"
                continue
            if service is None:
                assert set(env) <= OTHER_ENV, f"{overlay}: TF Serving env {sorted(env)}"
                continue
            seen.add(service)
            module, class_name, prefix = SERVICES[service]
            settings_class = getattr(importlib.import_module(module), class_name)
            fields = set(settings_class.model_fields)
            for name in env:
                if name in OTHER_ENV:
                    continue
                assert name.startswith(prefix), f"{service}: {name} lacks {prefix}"
                assert name[len(prefix) :].lower() in fields, (
                    f"{service}: {name} is no setting of {class_name}"
                )
            for name in list(os.environ):
                if name.startswith(prefix):
                    monkeypatch.delenv(name)
            for name, value in env.items():
                monkeypatch.setenv(name, value)
            settings = settings_class(_env_file=None)
            # the ports the settings give are the container's, under their names
            assert pod.port("http") == settings.port, f"{service}: port"
            assert settings.host == "0.0.0.0", f"{service}: listens on the pod IP"
            assert settings.metrics_port == METRICS_PORT == pod.port("metrics")
            check_service_urls(service, settings, services, pods_of(objects))
            if service == "bot-service":
                check_bot(objects, pod, container, settings)
            if service == "gateway":
                check_gateway_stores(settings)
            mounts = {m["mountPath"] for m in container.get("volumeMounts", [])}
            if hasattr(settings, "model_repository"):
                assert str(settings.model_repository) in mounts
    assert seen == set(SERVICES)


def test_redis_holds_the_stories_without_persistence_and_replaces_affinity(
    objects: list[dict[str, Any]],
) -> None:
    """One Redis, sized for GATEWAY_STORY_CAPACITY stories with their cards, evicting the
    keys nearest their expiry rather than refusing writes, keeping nothing on disk; and,
    since every replica now finds every story there, no client pinned to a replica."""
    from gateway_service.settings import GatewaySettings

    deployment = named(objects, "Deployment", REDIS)
    assert deployment["spec"]["replicas"] == 1
    assert all(
        a["spec"]["scaleTargetRef"]["name"] != REDIS
        for a in by_kind(objects, "HorizontalPodAutoscaler")
    )
    (pod,) = [p for p in pods_of(objects) if p.name == REDIS]
    (container,) = pod.spec["containers"]
    assert re.fullmatch(r"redis:[0-9.]+", container["image"]), container["image"]
    assert "command" not in container, "the image's entrypoint starts redis-server"
    args = container["args"]
    options = {args[i][2:]: args[i + 1] for i in range(0, len(args), 2) if args[i].startswith("--")}
    assert len(options) * 2 == len(args), f"--option value pairs: {args}"
    # stories are ephemeral (GATEWAY_STORY_TTL_S): no RDB snapshots, no AOF, no volume
    assert options["save"] == "" and options["appendonly"] == "no", options
    for volume in pod.spec["volumes"]:
        assert "persistentVolumeClaim" not in volume, volume["name"]
    # every story and rate count has a time to live: volatile-ttl can evict any of them
    assert options["maxmemory-policy"] == "volatile-ttl"
    number, unit = parse(r"([0-9]+)(mb|gb)", options["maxmemory"].lower())
    maxmemory = int(number) * {"mb": 2**20, "gb": 2**30}[unit]
    env = container_env(objects, named_container(objects, "gateway"))
    capacity = int(
        env.get("GATEWAY_STORY_CAPACITY", GatewaySettings.model_fields["story_capacity"].default)
    )
    assert maxmemory >= capacity * STORY_MAX_BYTES, (
        f"--maxmemory {options['maxmemory']} < {capacity} stories x {STORY_MAX_BYTES} bytes"
    )
    # room above maxmemory for Redis itself, its buffers and fragmentation
    limit = quantity(container["resources"]["limits"]["memory"])
    assert limit >= maxmemory * Fraction(5, 4), f"memory limit {limit} for {maxmemory}"

    # no affinity: a card is found through any replica
    gateway = named(objects, "Service", "gateway")["spec"]
    assert gateway.get("sessionAffinity", "None") == "None"
    (ingress,) = by_kind(objects, "Ingress")
    annotations = ingress["metadata"].get("annotations") or {}
    assert not [a for a in annotations if "affinity" in a or "session-cookie" in a]


def redis_password_variable(container: dict[str, Any]) -> tuple[str, str]:
    """The Secret and key of Redis's REDIS_PASSWORD: the only way it gets one."""
    (variable,) = [v for v in container.get("env", []) if v["name"] == "REDIS_PASSWORD"]
    assert "value" not in variable, "REDIS_PASSWORD written into the Deployment"
    ref = variable["valueFrom"]["secretKeyRef"]
    return ref["name"], ref["key"]


def test_redis_requires_a_password_from_a_secret(objects: list[dict[str, Any]]) -> None:
    """Redis starts with --requirepass, its value expanded by the kubelet from a variable
    that a Secret fills; the NetworkPolicy is no longer the only lock."""
    (pod,) = [p for p in pods_of(objects) if p.name == REDIS]
    (container,) = pod.spec["containers"]
    args = container["args"]
    assert args.count("--requirepass") == 1, args
    assert args[args.index("--requirepass") + 1] == "$(REDIS_PASSWORD)", args
    secret, key = redis_password_variable(container)
    assert secret.startswith("redis-auth"), secret  # the generated one (name + hash)
    assert secret_data(objects, secret)[key] == REDIS_PASSWORD
    assert container_env(objects, container)["REDIS_PASSWORD"] == REDIS_PASSWORD


def test_no_redis_url_is_in_a_config_map(objects: list[dict[str, Any]]) -> None:
    """A Redis URL carries the password (redis://:<password>@redis:6379/0): Secrets only."""
    for config_map in by_kind(objects, "ConfigMap"):
        for key, value in (config_map.get("data") or {}).items():
            what = f"ConfigMap/{config_map['metadata']['name']}: {key}"
            assert not REDIS_URL.search(str(value)), what
            assert REDIS_PASSWORD not in str(value), what


def test_every_deployment_that_uses_redis_gets_its_url_from_a_secret(
    objects: list[dict[str, Any]],
) -> None:
    """Whoever holds a Redis URL, or may reach Redis through the NetworkPolicies, reads
    each Redis URL from a secretKeyRef, never from a value or a ConfigMap."""
    policies = by_kind(objects, "NetworkPolicy")
    pods = pods_of(objects)
    (redis,) = [Peer(p.name, p.labels, ports=p.ports) for p in pods if p.name == REDIS]
    users = set()
    for pod in pods:
        if pod.name == REDIS:
            continue
        reaches = allowed(policies, Peer(pod.name, pod.labels, ports=pod.ports), redis, REDIS_PORT)
        for container in pod.containers:
            what = f"{pod.owner} {container['name']}"
            env = container_env(objects, container)
            urls = {name for name, value in env.items() if REDIS_URL.search(value)}
            if reaches or urls:
                users.add(pod.name)
                assert urls, f"{what} reaches Redis with no Redis URL"
            variables = {v["name"]: v for v in container.get("env", [])}
            for name in urls:
                assert name in variables, f"{what}: {name} not from a secretKeyRef"
                assert "secretKeyRef" in variables[name].get("valueFrom", {}), (
                    f"{what}: {name} not from a secretKeyRef"
                )
    # the gateway's store and rate counts; the bot keeps its lease in its own SQLite
    assert users == {"gateway"}, users


def test_no_password_is_written_into_a_deployment(objects: list[dict[str, Any]]) -> None:
    """Deployments (and KServe's predictor) name their Secrets; none carries a value of
    one: not Redis's password, not a URL with a password in it, not a --requirepass."""
    for obj in by_kind(objects, "Deployment") + by_kind(objects, "InferenceService"):
        what = f"{obj['kind']}/{obj['metadata']['name']}"
        assert REDIS_PASSWORD not in yaml.safe_dump(obj), what
    for pod in pods_of(objects):
        for container in pod.containers:
            what = f"{pod.owner} {container['name']}"
            written = [str(v.get("value", "")) for v in container.get("env", [])]
            written += [str(a) for a in container.get("command", []) + container.get("args", [])]
            for text in written:
                # a URL with user information: redis://:password@host, redis://u:p@host
                assert not re.search(r"://[^/@\s]*:[^/@\s]*@", text), f"{what}: {text}"
            args = container.get("args", [])
            for i, arg in enumerate(args):
                if arg in ("--requirepass", "--masterauth"):
                    assert re.fullmatch(r"\$\([A-Z_]+\)", args[i + 1]), f"{what}: {arg}"


def test_every_secret_file_is_documented() -> None:
    """An operator creates the files secrets/README.md and docs/kubernetes.md list: a
    file the generators read and they do not name fails the render on a fresh checkout."""
    readme = (SECRETS / "README.md").read_text()
    guide = (ROOT / "docs" / "kubernetes.md").read_text()
    for name in secret_files():
        assert name in readme, f"deploy/k8s/base/secrets/README.md: {name}"
        assert name in guide, f"docs/kubernetes.md: {name}"
    assert set(REDIS_SECRET_FILES) <= set(secret_files())


def check_service_urls(
    service: str, settings: Any, services: dict[str, dict[str, Any]], pods: list[Pod]
) -> None:
    """URLs and hosts in the settings name Services of the overlay, on ports they have."""
    targets: list[tuple[str, int]] = []
    if service == "gateway":
        for url in (settings.caption_url, settings.textgen_url):
            host, port = parse(r"http://([^:/]+):(\d+)", url)
            targets.append((host, int(port)))
        # the replicas' shared stories and rate counts: a Redis of the overlay, with the
        # password Redis itself is given (redis-auth's placeholder here)
        for url in (settings.store_url, settings.rate_limit_storage):
            parts = urlsplit(url)
            assert parts.scheme == "redis" and re.fullmatch(r"/\d+", parts.path), url
            assert parts.password == REDIS_PASSWORD, f"{url}: not Redis's password"
            assert parts.hostname and parts.port, url
            targets.append((parts.hostname, parts.port))
    elif service == "bot-service":
        host, port = parse(r"http://([^:/]+):(\d+)", settings.gateway_url)
        targets.append((host, int(port)))
    else:
        # The gRPC backend (the REST one's port differs with KServe: 80 through its
        # ClusterIP, 8501 when its Service is headless; docs/kubernetes.md, "KServe").
        # A gRPC target dns:///name resolves every address of a headless Service.
        assert settings.model_backend == "grpc"
        target = settings.model_server_grpc_target
        assert target, f"{service}: set *_MODEL_SERVER_GRPC_TARGET=dns:///<service>:<port>"
        host, port = parse(r"dns:///([^:/]+):(\d+)", target)
        targets.append((host, int(port)))
        targets.append((settings.model_server_host, settings.model_server_grpc_port))
    for target_host, target_port in targets:
        assert target_host in services, f"{service}: no Service {target_host}"
        target = services[target_host]
        ports = [p for p in target["spec"]["ports"] if p["port"] == target_port]
        assert ports, f"{service}: Service {target_host} has no port {target_port}"
        for pod in service_targets(target, pods):
            assert pod.port(ports[0].get("targetPort", target_port)) is not None


def check_gateway_stores(settings: Any) -> None:
    """The gateway's replicas (the HPA keeps at least two) share their stories and rate
    counts, and the gateway's own code opens both from these settings with the packages
    of its image (the gateway extra: redis-py); nothing connects here."""
    from limits.aio.storage import RedisStorage

    from gateway_service.store import open_store
    from talkative_common.access import rate_limit_storage

    store = open_store(settings)
    try:
        assert store.name == "redis", f"GATEWAY_STORE_URL: {store.name}, not shared"
    finally:
        asyncio.run(store.close())
    assert isinstance(rate_limit_storage(settings.rate_limit_storage), RedisStorage)


def check_bot(
    objects: list[dict[str, Any]], pod: Pod, container: dict[str, Any], settings: Any
) -> None:
    from bot_service.settings import SECRET_FIELDS, SECRETS_DIR

    env = container_env(objects, container)
    for field_name in SECRET_FIELDS:
        assert f"BOT_{field_name.upper()}" not in env, "credentials come as files, not env"
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod.spec["volumes"]}
    mount = mounts[str(SECRETS_DIR)]
    assert mount["readOnly"] is True
    secret = named(objects, "Secret", volumes[mount["name"]]["secret"]["secretName"])
    assert set(secret["data"]) == {f"bot_{f}" for f in SECRET_FIELDS}
    # the state, inbox and outbox on the bot's own volume, writable
    data = next(m for path, m in mounts.items() if str(settings.state_path).startswith(path + "/"))
    assert not data.get("readOnly") and "persistentVolumeClaim" in volumes[data["name"]]
    assert str(settings.inbox).startswith(data["mountPath"])
    assert str(settings.outbox).startswith(data["mountPath"])


# --- isolation ----------------------------------------------------------------------------


@dataclass
class Peer:
    """One end of a connection: a pod (here or in another namespace) or an address off
    the cluster (no namespace)."""

    name: str
    labels: dict[str, str] = field(default_factory=dict)
    namespace: str | None = NAMESPACE
    ip: str = "10.0.0.1"  # pods have private addresses
    ports: set[int] = field(default_factory=set)


def peer_matches(peer: dict[str, Any], other: Peer) -> bool:
    """A NetworkPolicyPeer of a policy of our namespace against a pod or an address."""
    if "ipBlock" in peer:
        block = peer["ipBlock"]
        address = ipaddress.ip_address(other.ip)
        return address in ipaddress.ip_network(block["cidr"]) and not any(
            address in ipaddress.ip_network(e) for e in block.get("except", [])
        )
    if other.namespace is None:
        return False  # selectors select pods only
    if "namespaceSelector" in peer:
        labels = {"kubernetes.io/metadata.name": other.namespace}
        if not selects(peer["namespaceSelector"], labels):
            return False
    elif other.namespace != NAMESPACE:
        return False
    return "podSelector" not in peer or selects(peer["podSelector"], other.labels)


def port_matches(rule_ports: list[dict[str, Any]] | None, port: int, protocol: str) -> bool:
    if not rule_ports:
        return True
    return any(
        p.get("protocol", "TCP") == protocol and ("port" not in p or p["port"] == port)
        for p in rule_ports
    )


def allowed(
    policies: list[dict[str, Any]], source: Peer, target: Peer, port: int, protocol: str = "TCP"
) -> bool:
    """Whether the policies let `source` open `target`:`port`: egress from the source's
    side (if the source is ours) and ingress on the target's side (if ours)."""

    def side(pod: Peer, direction: str, other: Peer) -> bool:
        if pod.namespace != NAMESPACE:
            return True  # not ours to fence (another namespace, or off the cluster)
        key = "ingress" if direction == "Ingress" else "egress"
        peer_key = "from" if direction == "Ingress" else "to"
        governing = [
            p
            for p in policies
            if selects(p["spec"]["podSelector"], pod.labels)
            and direction in p["spec"].get("policyTypes", ["Ingress"])
        ]
        if not governing:
            return True
        return any(
            (not rule.get(peer_key) or any(peer_matches(x, other) for x in rule[peer_key]))
            and port_matches(rule.get("ports"), port, protocol)
            for policy in governing
            for rule in policy["spec"].get(key) or []
        )

    return side(source, "Egress", target) and side(target, "Ingress", source)


def test_network_policies_reproduce_the_compose_isolation(objects: list[dict[str, Any]]) -> None:
    policies = by_kind(objects, "NetworkPolicy")
    pods = pods_of(objects)
    ours = [Peer(p.name, p.labels, ports=p.ports) for p in pods]

    for policy in policies:
        spec, what = policy["spec"], f"NetworkPolicy/{policy['metadata']['name']}"
        assert selected(spec["podSelector"], pods), f"{what} selects no pod"
        for rule in (spec.get("ingress") or []) + (spec.get("egress") or []):
            for peer in rule.get("from", []) + rule.get("to", []):
                if "namespaceSelector" in peer:
                    # a peer elsewhere must not be asked for our labels
                    labels = peer.get("podSelector", {}).get("matchLabels", {})
                    assert "app.kubernetes.io/part-of" not in labels, what
                elif "podSelector" in peer:
                    assert selected(peer["podSelector"], pods), f"{what}: a peer selects no pod"
                if "ipBlock" in peer:
                    excluded = [ipaddress.IPv4Network(n) for n in peer["ipBlock"]["except"]]
                    for private in PRIVATE_NETWORKS:
                        assert any(private.subnet_of(e) for e in excluded), f"{what}: {private}"

    # inside the namespace: exactly compose's connections, and the gateway's Redis
    connections = {
        (a.name, b.name, port)
        for a in ours
        for b in ours
        for port in b.ports
        if allowed(policies, a, b, port)
    }
    assert connections == EXPECTED_CONNECTIONS

    # from outside: the Ingress controller reaches the gateway's API, Prometheus the
    # metrics ports, nothing reaches TF Serving
    controller = Peer(
        "controller", {"app.kubernetes.io/name": "ingress-nginx"}, namespace="ingress-nginx"
    )
    prometheus = Peer("prometheus", {"app.kubernetes.io/name": "prometheus"}, "monitoring")
    stranger = Peer("stranger", {"app": "other"}, namespace="default")
    for pod in ours:
        for port in pod.ports:
            assert allowed(policies, controller, pod, port) == (
                (pod.name, port) == ("gateway", 8000)
            ), (pod.name, port)
            assert allowed(policies, prometheus, pod, port) == (
                port == METRICS_PORT and pod.name != "tfserving"
            ), (pod.name, port)
            assert not allowed(policies, stranger, pod, port), (pod.name, port)

    # out: DNS for everyone; the internet for the bot only, never private addresses
    dns = Peer("dns", {"k8s-app": "kube-dns"}, namespace="kube-system")
    internet = Peer("mastodon", namespace=None, ip="203.0.113.10")
    metadata = Peer("metadata", namespace=None, ip="169.254.169.254")
    node = Peer("node", namespace=None, ip="10.1.2.3")
    for pod in ours:
        assert allowed(policies, pod, dns, 53, "UDP") and allowed(policies, pod, dns, 53, "TCP")
        assert allowed(policies, pod, internet, 443) == (pod.name == "bot-service"), pod.name
        for address in (metadata, node):
            assert not allowed(policies, pod, address, 80), (pod.name, address.name)

    # Redis wants a password, and still the gateway on 6379 is the one way in, from
    # anywhere, and Redis itself reaches nothing but DNS
    (redis,) = [p for p in ours if p.name == REDIS]
    assert redis.ports == {REDIS_PORT}
    outside = [controller, prometheus, stranger, dns, internet, metadata, node]
    ports = {REDIS_PORT, METRICS_PORT, 53, 80, 443} | {p for pod in ours for p in pod.ports}
    for other in ours + outside:
        for port in sorted(ports):
            assert allowed(policies, other, redis, port) == (
                (other.name, port) == ("gateway", REDIS_PORT)
            ), (other.name, port)
            if other is not dns:
                assert not allowed(policies, redis, other, port), (other.name, port)


# --- GPU and CPU --------------------------------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_only_the_gpu_overlays_ask_for_a_gpu(
    rendered: dict[str, list[dict[str, Any]]], overlay: str
) -> None:
    objects = rendered[overlay]
    tfserving = tfserving_pod(objects)
    for pod in pods_of(objects):
        for container in pod.containers:
            resources = container.get("resources", {})
            gpus = quantity(resources.get("limits", {}).get(GPU, 0))
            if GPU in resources.get("requests", {}):  # extended resources: requests == limits
                assert quantity(resources["requests"][GPU]) == gpus
            wants_gpu = overlay in GPU_OVERLAYS and pod.owner == tfserving.owner
            assert (gpus >= 1) == wants_gpu, f"{overlay}: {pod.owner} {GPU}={gpus}"
    (container,) = tfserving.spec["containers"]
    image, args = container["image"], container["args"]
    env = container_env(objects, container)
    if overlay in GPU_OVERLAYS:
        assert image.endswith("-gpu"), image
        assert env["TFSERVING_REQUIRE_GPU"] == "1" and env["CUDA_CACHE_PATH"].startswith("/tmp/")
        assert "--tensorflow_session_config_file=/config/session_config.gpu.pbtxt" in args
        assert any(a.startswith("--per_process_gpu_memory_fraction=") for a in args)
        assert any(t.get("key") == GPU for t in tfserving.spec.get("tolerations", []))
    else:
        assert re.fullmatch(r"tensorflow/serving:[0-9.]+", image), image
        assert env["TFSERVING_REQUIRE_GPU"] == "0"
        assert not any("gpu" in a for a in args)
        assert any(a.startswith("--tensorflow_intra_op_parallelism=") for a in args)
        hpa = named(objects, "HorizontalPodAutoscaler", "tfserving")
        assert hpa["spec"]["scaleTargetRef"]["name"] == "tfserving"


def test_tfserving_flags_users_and_memory_mirror_compose(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    """The overlays run TF Serving as docker-compose.yml (gpu) and its CPU override do,
    plus the one Kubernetes-only flag (gRPC connections aged out, so clients re-resolve
    the headless Service); and each service gets compose's memory limit and variables."""
    k8s_only = ("--grpc_channel_arguments=",)
    gpu_compose = compose("docker-compose.yml")["services"]
    cpu_compose = compose("docker-compose.cpu.yml")["services"]
    for overlay, command in (
        ("gpu", gpu_compose["tfserving"]["command"]),
        ("kserve", gpu_compose["tfserving"]["command"]),
        ("cpu", cpu_compose["tfserving"]["command"]),
    ):
        (container,) = tfserving_pod(rendered[overlay]).spec["containers"]
        image = (cpu_compose if overlay == "cpu" else gpu_compose)["tfserving"]["image"]
        assert container["image"] == interpolate(image), overlay
        args = [a for a in container["args"] if not a.startswith(k8s_only)]
        assert sorted(args) == sorted(interpolate(c) for c in command), overlay
        assert any(a.startswith(k8s_only) for a in container["args"])

    def mebibytes(value: str) -> Fraction:
        number, unit = parse(r"([0-9.]+)([kmg])", value.lower())
        return (
            Fraction(number) * {"k": Fraction(1, 1024), "m": Fraction(1), "g": Fraction(1024)}[unit]
        )

    for overlay in OVERLAYS:
        objects = rendered[overlay]
        for pod in pods_of(objects):
            (container,) = pod.spec["containers"]
            name = pod.name  # compose's service names are ours
            if name not in gpu_compose:
                # Kubernetes only: one host (compose) shares nothing, so needs no Redis
                assert name == REDIS, f"{overlay}: {pod.owner} is not in docker-compose.yml"
                continue
            limit = interpolate(gpu_compose[name]["deploy"]["resources"]["limits"]["memory"])
            ours = quantity(container["resources"]["limits"]["memory"]) / 2**20
            assert ours == mebibytes(limit), f"{overlay}: {pod.owner} memory"
            if pod.name == "tfserving":
                continue
            environment = gpu_compose[name]["environment"]
            keys = (
                {e.split("=", 1)[0] for e in environment}
                if isinstance(environment, list)
                else set(environment)
            )
            assert keys <= set(container_env(objects, container)), f"{overlay}: {name}"


def test_the_kserve_predictor_runs_the_gpu_overlays_tf_serving(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    """Two copies of one pod (kustomize v2 cannot share a container between a Deployment
    and a custom resource): they must not drift apart."""
    (deployment,) = tfserving_pod(rendered["gpu"]).spec["containers"]
    kserve_pod = tfserving_pod(rendered["kserve"])
    (predictor,) = kserve_pod.spec["containers"]
    gpu_pod = tfserving_pod(rendered["gpu"])
    assert predictor["name"] == KSERVE_CONTAINER
    for key in ("image", "args", "resources", "securityContext", "volumeMounts"):
        assert predictor[key] == deployment[key], key
    assert sorted(predictor["env"], key=str) == sorted(deployment["env"], key=str)

    def resolved(pod: Pod, probe: dict[str, Any]) -> dict[str, Any]:
        probe = dict(probe)
        for action in ("httpGet", "tcpSocket"):
            if action in probe:
                probe[action] = {**probe[action], "port": pod.port(probe[action]["port"])}
        return probe

    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert resolved(kserve_pod, predictor[probe]) == resolved(gpu_pod, deployment[probe])
    for key in ("securityContext", "volumes", "tolerations", "terminationGracePeriodSeconds"):
        assert kserve_pod.spec[key] == gpu_pod.spec[key], key
    replicas = named(rendered["gpu"], "Deployment", "tfserving")["spec"]["replicas"]
    service = named(rendered["kserve"], "InferenceService", "tfserving")["spec"]["predictor"]
    assert service["minReplicas"] == service["maxReplicas"] == replicas
