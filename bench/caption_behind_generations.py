"""How long a caption waits while long text generations hold TF Serving's batch threads.

Starts `talkative model-server` (which batches like TF Serving: model-server/model_server/
batching.py) on the committed captioner and char_lstm_en, with the flags of
docker-compose.yml, in two variants, one after the other:

- shared: --enable_batching with serving/batching_parameters.txt only: one set of
  parameters, 2 batch threads, for every model (what the stack ran before);
- per-model: the same plus --enable_per_model_batching_parameters: char_lstm_en batches
  with its batching_params.pbtxt, the captioner (no file) is not batched.

Both servers run at once and are measured in turn, so both see the same load. Each
turn times a caption alone, then a caption sent while two long generations (--tokens new
characters each, sent 50 ms apart so that each is its own batch, one per batch thread)
are running. Requests are the models' own warm-up records (batch of 1), over gRPC.
Figures are medians over --repeats; the machine's load is printed, since other work
slows everything (the ratios are the figures to compare).

With --target HOST:PORT it measures a running TF Serving instead (the stack publishes its
gRPC port on the host's loopback, 127.0.0.1:8500): on a GPU host, a caption behind two
generations should then take about as long as a caption alone.

    python bench/caption_behind_generations.py [--tokens 2048] [--repeats 3] [--target H:P]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.model_server import ModelServerProcess, write_config  # noqa: E402

MODELS = ROOT / "serving" / "models"
BATCHING = ROOT / "serving" / "batching_parameters.txt"
VARIANTS = {
    "shared": ["--enable_batching", f"--batching_parameters_file={BATCHING}"],
    "per-model": [
        "--enable_batching",
        f"--batching_parameters_file={BATCHING}",
        "--enable_per_model_batching_parameters",
    ],
}


def first_warmup_request(model: str) -> Any:
    import tensorflow as tf
    from tensorflow_serving.apis import prediction_log_pb2

    path = MODELS / model / "1" / "assets.extra" / "tf_serving_warmup_requests"
    raw = next(iter(tf.data.TFRecordDataset(str(path))))
    request = prediction_log_pb2.PredictionLog.FromString(raw.numpy()).predict_log.request
    request.model_spec.name = model
    return request


def turn(stub: Any, caption: Any, generation: Any, figures: dict[str, list[float]]) -> None:
    """A caption alone, then one sent while two generations hold the two batch threads."""

    def timed(request: Any) -> float:
        started = time.perf_counter()
        stub.Predict(request, timeout=600)
        return time.perf_counter() - started

    def generate() -> None:
        figures["generation"].append(timed(generation))

    figures["caption alone"].append(timed(caption))
    threads = []
    for _ in range(2):
        threads.append(threading.Thread(target=generate))
        threads[-1].start()
        time.sleep(0.05)  # past the 2 ms batch timeout: a batch of its own
    time.sleep(0.2)
    figures["caption behind 2 generations"].append(timed(caption))
    for thread in threads:
        thread.join()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tokens", type=int, default=2048, help="new characters per generation")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--target",
        help="HOST:PORT of a running TF Serving (e.g. the stack's 127.0.0.1:8500) to measure "
        "as it is, instead of starting the two model-server variants",
    )
    args = parser.parse_args()

    import grpc
    import tensorflow as tf
    from tensorflow_serving.apis import prediction_service_pb2_grpc

    caption = first_warmup_request("captioner")
    generation = first_warmup_request("char_lstm_en")
    generation.inputs["max_new_tokens"].CopyFrom(
        tf.make_tensor_proto(tf.constant([args.tokens], tf.int32))
    )
    with tempfile.TemporaryDirectory() as work, ExitStack() as stack:
        targets = {}
        if args.target:
            targets["target"] = args.target
        else:
            config = write_config(
                Path(work) / "models.config", MODELS, {"captioner": [1], "char_lstm_en": [1]}
            )
            for variant, flags in VARIANTS.items():  # both up at once: measured in turns
                server = ModelServerProcess(config, extra_flags=flags, rest=False)
                targets[variant] = stack.enter_context(server).grpc_target
        stubs = {}
        for name, target in targets.items():
            channel = stack.enter_context(grpc.insecure_channel(target))
            stubs[name] = prediction_service_pb2_grpc.PredictionServiceStub(channel)
            stubs[name].Predict(caption, timeout=600)  # the first call after start-up
        samples: dict[str, dict[str, list[float]]] = {
            name: {"caption alone": [], "caption behind 2 generations": [], "generation": []}
            for name in stubs
        }
        for _ in range(args.repeats):
            for name, stub in stubs.items():
                turn(stub, caption, generation, samples[name])
    results = {
        name: {k: statistics.median(v) for k, v in figures.items()}
        for name, figures in samples.items()
    }
    print(
        f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs; "
        f"{args.tokens} new characters per generation; medians of {args.repeats}"
    )
    for name, figures in results.items():
        print(f"{name:>10}: " + ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in figures.items()))
    for name, figures in results.items():
        ratio = figures["caption behind 2 generations"] / figures["caption alone"]
        print(f"{name:>10}: a caption behind two generations takes {ratio:.1f}x its time alone")
    return 0


if __name__ == "__main__":
    sys.exit(main())
