"""Per-call overhead of the gRPC and REST model clients against the in-process backend.

One run, one model, the same `generate` requests through three backends:
in-process (the SavedModel called in this process), gRPC and REST (the
PredictionService and TF Serving's REST API, served on 127.0.0.1 by the test
model server of tests/serving, which runs the same SavedModel). The graph work
is identical, so the difference is what the wire costs: serialisation (protobuf
or JSON + base64), the loopback hop and the server's request handling. A real
tensorflow_model_server is C++ and answers faster than this Python stand-in, so
the remote figures are an upper bound of the clients' overhead.

    python bench/clients.py [--repository serving/models] [--model char_lstm_en]
                            [--calls 50] [--tokens 1,200] [--batch 1]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from services.model_client import ModelClient, ModelRepository  # noqa: E402
from services.model_client.grpc import GrpcClient  # noqa: E402
from services.model_client.inprocess import InProcessClient  # noqa: E402
from services.model_client.rest import RestClient  # noqa: E402
from tests.serving.model_server import TestModelServer  # noqa: E402


def inputs(batch: int, tokens: int, vocab: int) -> dict[str, np.ndarray]:
    prompt = (np.arange(batch * 32).reshape(batch, 32) % max(vocab - 1, 1) + 1).astype(np.int32)
    return {
        "prompt_ids": prompt,
        "prompt_lengths": np.full(batch, 32, np.int32),
        "max_new_tokens": np.full(batch, tokens, np.int32),
        "temperature": np.full(batch, 0.7, np.float32),
        "top_k": np.zeros(batch, np.int32),
        "top_p": np.ones(batch, np.float32),
        "seed": np.arange(batch, dtype=np.int64),
    }


async def timed_calls(
    client: ModelClient, model: str, request: dict[str, np.ndarray], calls: int
) -> tuple[list[float], dict[str, np.ndarray]]:
    out = await client.predict(model, request, signature="generate")  # warm-up, not timed
    times = []
    for _ in range(calls):
        started = time.perf_counter()
        out = await client.predict(model, request, signature="generate")
        times.append(time.perf_counter() - started)
    return times, out


async def bench(args: argparse.Namespace, server: TestModelServer) -> list[dict[str, Any]]:
    repository = ModelRepository(args.repository)
    card = repository.card(args.model)
    vocab = int(card.get("tokenizer", {}).get("size", 32))
    rows = []
    for tokens in args.tokens:
        request = inputs(args.batch, tokens, vocab)
        clients: dict[str, ModelClient] = {
            "inprocess": InProcessClient(repository),
            "grpc": GrpcClient(server.grpc_target),
            "rest": RestClient(server.rest_url),
        }
        reference = None
        for name, client in clients.items():
            try:
                times, out = await timed_calls(client, args.model, request, args.calls)
            finally:
                await client.close()
            if reference is None:
                reference = out
            same = all(np.array_equal(out[k], reference[k]) for k in reference)
            rows.append(
                {
                    "tokens": tokens,
                    "backend": name,
                    "median_ms": statistics.median(times) * 1000,
                    "p90_ms": float(np.percentile(times, 90)) * 1000,
                    "same_output": same,
                }
            )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python bench/clients.py",
        description="Latency of one `generate` call through the in-process, gRPC and REST "
        "model clients on the same SavedModel, with ratios to the in-process baseline "
        "measured in the same run.",
    )
    parser.add_argument(
        "--repository",
        type=Path,
        default=ROOT / "serving" / "models",
        help="model repository <name>/<version>/ (default: %(default)s)",
    )
    parser.add_argument("--model", default="char_lstm_en", help="text model to call")
    parser.add_argument("--calls", type=int, default=50, help="timed calls per backend")
    parser.add_argument(
        "--tokens",
        type=lambda s: [int(x) for x in s.split(",")],
        default=[1, 200],
        help="comma-separated max_new_tokens values: 1 shows the per-call overhead, "
        "200 a realistic story length (default: 1,200)",
    )
    parser.add_argument("--batch", type=int, default=1, help="rows per request (default: 1)")
    args = parser.parse_args(argv)
    if args.calls < 1 or args.batch < 1 or min(args.tokens) < 1:
        parser.error("--calls, --batch and --tokens take positive integers")
    if not ModelRepository(args.repository).versions(args.model):
        parser.error(f"no model {args.model!r} in {args.repository} (make models)")

    with TestModelServer(args.repository) as server:
        rows = asyncio.run(bench(args, server))
    print(f"model {args.model}, batch {args.batch}, {args.calls} calls per backend")
    print(
        f"{'tokens':>6} {'backend':<10} {'median ms':>10} {'p90 ms':>9} {'x inproc':>9} "
        f"{'overhead ms':>12} same"
    )
    base = {r["tokens"]: r["median_ms"] for r in rows if r["backend"] == "inprocess"}
    for r in rows:
        ratio = r["median_ms"] / base[r["tokens"]]
        print(
            f"{r['tokens']:>6} {r['backend']:<10} {r['median_ms']:>10.2f} {r['p90_ms']:>9.2f} "
            f"{ratio:>9.2f} {r['median_ms'] - base[r['tokens']]:>12.2f} {r['same_output']}"
        )
    return 0 if all(r["same_output"] for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
