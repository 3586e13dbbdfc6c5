"""Memory and start-up time of caption-service and textgen-service in the grpc backend.

Starts `talkative model-server` (TF Serving's protocol, on 127.0.0.1) with the captioner
and the text models of a repository, then starts each service as its own process, as
its container does, in two variants, one at a time, alternating:

- before: the same service with `tensorflow` imported first (`python -c "import
  tensorflow; from caption_service.main import run; run()"`), which is what every
  service paid when its protobuf classes came from TensorFlow's packages;
- after: the service as it is (`from caption_service.main import run; run()`), whose
  gRPC client builds TF Serving's messages from talkative_common/model_client/protos.

For each it measures the start-up time (process start to the first /readyz 200: the
imports, settings, the contract check and warm-up calls to the model server), sends
--requests real requests, then reads VmRSS (resident now) and VmHWM (peak resident)
from /proc/<pid>/status and looks for TensorFlow's libraries in /proc/<pid>/maps.
Figures are medians over --repeats; the ratios before/after are measured in the same
run, and the machine's load average is printed, since other work on the machine
slows start-up (the ratio is the figure to compare between runs).

Exit status 1 if an "after" service maps TensorFlow or exceeds --limit-mb (VmRSS or
VmHWM, in MB of 10^6 bytes).

    python bench/remote_rss.py [--repository serving/models] [--caption-model captioner]
                               [--text-models char_lstm_en,...] [--requests 5] [--repeats 3]
                               [--limit-mb 250]
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import bench_parser, repository_option  # noqa: E402
from tests.support.model_server import ModelServerProcess, write_config  # noqa: E402
from tests.support.service_process import ServiceProcess, grpc_backend_env  # noqa: E402

MB = 1_000_000
VARIANTS = {"before": ("tensorflow",), "after": ()}
SERVICES = ("caption-service", "textgen-service")


@dataclass
class Sample:
    startup_s: list[float] = field(default_factory=list)
    rss: list[int] = field(default_factory=list)
    hwm: list[int] = field(default_factory=list)
    tensorflow_libraries: list[int] = field(default_factory=list)


def text_models(repository: Path) -> list[str]:
    """The models of the repository whose newest version's card names a text model family."""
    from textgen_service.models import FAMILIES

    names = []
    for base in sorted(p for p in repository.iterdir() if p.is_dir()):
        versions = sorted((int(v.name) for v in base.iterdir() if v.name.isdigit()), reverse=True)
        if not versions:
            continue
        card = base / str(versions[0]) / "assets.extra" / "model_card.json"
        if card.exists() and json.loads(card.read_text(encoding="utf-8")).get("kind") in FAMILIES:
            names.append(base.name)
    return names


def photo_bytes() -> bytes:
    """A real photo (scikit-image's chelsea, 451 x 300, as JPEG), as a user would send."""
    from tests.support.captioner import photo

    return photo("chelsea", "JPEG")


def caption_requests(url: str, count: int) -> None:
    image = photo_bytes()
    with httpx.Client(base_url=url, timeout=120) as http:
        for _ in range(count):
            answer = http.post(
                "/v1/captions", files={"image": ("chelsea.jpg", image, "image/jpeg")}
            )
            answer.raise_for_status()


def textgen_requests(models: list[str]) -> Callable[[str, int], None]:
    def send(url: str, count: int) -> None:
        with httpx.Client(base_url=url, timeout=120) as http:
            for i in range(count):
                body = {
                    "prompt": "Once upon a time",
                    "model": models[i % len(models)],
                    "max_new_tokens": 40,
                    "seed": i,
                }
                http.post("/v1/generations", json=body).raise_for_status()

    return send


def measure(
    service: str,
    variant: str,
    env: dict[str, str],
    send: Callable[[str, int], None],
    requests: int,
    workdir: Path,
    sample: Sample,
) -> None:
    with ServiceProcess(service, env, preload=VARIANTS[variant], workdir=workdir) as process:
        send(process.url, requests)
        memory = process.memory()
        assert process.startup_s is not None
        sample.startup_s.append(process.startup_s)
        sample.rss.append(memory["VmRSS"])
        sample.hwm.append(memory["VmHWM"])
        sample.tensorflow_libraries.append(len(process.tensorflow_mappings()))


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main(argv: list[str] | None = None) -> int:
    """RSS and start-up time of caption-service and textgen-service in the grpc backend, with
    TensorFlow imported (before) and without (after), against `talkative model-server` on
    127.0.0.1."""
    parser = bench_parser(main)
    repository_option(
        parser,
        "model repository (<name>/<version>/) that the model server serves and the services "
        "read cards and vocabularies from",
    )
    parser.add_argument(
        "--caption-model",
        default="captioner",
        help="the captioner in the repository (default: captioner)",
    )
    parser.add_argument(
        "--text-models",
        default=None,
        help="comma-separated text models textgen-service serves and the requests go to, in "
        "turn (default: every text model of the repository, as the service would serve)",
    )
    parser.add_argument(
        "--requests",
        type=int,
        default=5,
        help="requests sent to each service before its memory is read (default: 5)",
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=3,
        help="starts of each service in each variant; figures are medians (default: 3)",
    )
    parser.add_argument(
        "--limit-mb",
        type=float,
        default=250.0,
        help="the most VmRSS and VmHWM an 'after' service may have, in MB of 10^6 bytes "
        "(default: 250); over it, exit status 1",
    )
    args = parser.parse_args(argv)
    repository = args.repository.resolve()
    models = args.text_models.split(",") if args.text_models else text_models(repository)
    if not models:
        parser.error(f"no text model in {repository}")

    print(f"load average at start (1, 5, 15 min): {load()}  cpus: {os.cpu_count()}")
    workdir = Path(tempfile.mkdtemp(prefix="remote-rss-"))
    samples: dict[tuple[str, str], Sample] = {(s, v): Sample() for s in SERVICES for v in VARIANTS}
    try:
        config = write_config(
            workdir / "models.config", repository, dict.fromkeys([args.caption_model, *models])
        )
        with ModelServerProcess(config, rest=False) as server:
            envs = {
                "caption-service": grpc_backend_env(
                    "caption-service", server.grpc_port, repository, MODEL=args.caption_model
                ),
                "textgen-service": grpc_backend_env(
                    "textgen-service",
                    server.grpc_port,
                    repository,
                    MODELS=json.dumps(models),
                    DEFAULT_MODEL=models[0],
                ),
            }
            senders: dict[str, Callable[[str, int], None]] = {
                "caption-service": caption_requests,
                "textgen-service": textgen_requests(models),
            }
            for repeat in range(args.repeats):
                # before, after, after, before...: a drift in the machine's load hits both
                order = list(VARIANTS) if repeat % 2 == 0 else list(reversed(VARIANTS))
                for variant in order:
                    for service in SERVICES:
                        measure(
                            service,
                            variant,
                            envs[service],
                            senders[service],
                            args.requests,
                            workdir,
                            samples[service, variant],
                        )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    print(
        f"\ngrpc backend, {args.requests} requests per start, median of {args.repeats} starts; "
        f"text models: {', '.join(models)}"
    )
    header = (
        f"{'service':<16} {'variant':<7} {'start-up s':>10} {'VmRSS MB':>9} {'VmHWM MB':>9} "
        f"{'TF files mapped':>15}"
    )
    print(header)
    print("-" * len(header))
    failures = []
    for service in SERVICES:
        for variant in VARIANTS:
            s = samples[service, variant]
            rss, hwm = statistics.median(s.rss) / MB, statistics.median(s.hwm) / MB
            print(
                f"{service:<16} {variant:<7} {statistics.median(s.startup_s):>10.2f} "
                f"{rss:>9.1f} {hwm:>9.1f} {max(s.tensorflow_libraries):>15}"
            )
            if variant == "after":
                if max(s.tensorflow_libraries):
                    failures.append(f"{service} maps TensorFlow")
                worst = max(max(s.rss), max(s.hwm)) / MB
                if worst > args.limit_mb:
                    failures.append(f"{service} reached {worst:.1f} MB > {args.limit_mb:g} MB")
    print()
    for service in SERVICES:
        before, after = samples[service, "before"], samples[service, "after"]
        startup = statistics.median(before.startup_s) / statistics.median(after.startup_s)
        rss = statistics.median(before.rss) / statistics.median(after.rss)
        print(f"{service}: start-up before/after {startup:.2f}x, VmRSS before/after {rss:.2f}x")
    print(f"\nload average at end (1, 5, 15 min): {load()}")
    verdict = "; ".join(failures) if failures else "no TensorFlow mapped"
    print(f"target: at most {args.limit_mb:g} MB per service in the grpc backend, {verdict}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
