"""Per-call overhead of the gRPC and REST model clients, and the model server's throughput.

1. Overhead. One run, one model, the same `generate` requests through three backends:
   in-process (the SavedModel called in this process), gRPC and REST (the
   PredictionService and TF Serving's REST API, served on 127.0.0.1 by `talkative
   model-server`, which runs the same SavedModel). The graph work is identical, so the
   difference is what the wire costs: serialisation (protobuf or JSON + base64), the
   loopback hop and the server's request handling. A real tensorflow_model_server is C++
   and answers faster than this Python server, so the remote figures are an upper bound
   of the clients' overhead.
2. Throughput. `talkative model-server` with batching off, then on (serving/
   batching_parameters.txt), over gRPC: requests per second with one client (batch 1,
   one call in flight) and with 8 concurrent clients; ratios against batching off at 1
   client, measured in the same run, median of --repeats runs.

    python bench/clients.py [--repository serving/models] [--model char_lstm_en]
                            [--calls 50] [--tokens 1,200] [--batch 1]
                            [--throughput-calls 48] [--throughput-tokens 200] [--repeats 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import bench_parser, repository_option  # noqa: E402
from talkative_common.model_client import ModelClient, ModelRepository  # noqa: E402
from talkative_common.model_client.grpc import GrpcClient  # noqa: E402
from talkative_common.model_client.inprocess import InProcessClient  # noqa: E402
from talkative_common.model_client.rest import RestClient  # noqa: E402
from tests.support.model_server import ModelServerProcess, write_config  # noqa: E402

BATCHING = ROOT / "serving" / "batching_parameters.txt"


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


async def bench(
    args: argparse.Namespace, server: ModelServerProcess, vocab: int
) -> list[dict[str, Any]]:
    repository = ModelRepository(args.repository)
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


async def throughput(
    target: str, model: str, request: dict[str, np.ndarray], calls: int, clients: int
) -> float:
    """Requests per second: `calls` requests spread over `clients` concurrent callers."""
    client = GrpcClient(target)
    try:
        await client.predict(model, request, signature="generate")  # connect and warm up
        left = list(range(calls))

        async def worker() -> None:
            while left:
                left.pop()
                await client.predict(model, request, signature="generate")

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(clients)))
        return calls / (time.perf_counter() - started)
    finally:
        await client.close()


def bench_throughput(args: argparse.Namespace, config: Path, vocab: int) -> dict[str, float]:
    request = inputs(1, args.throughput_tokens, vocab)
    out: dict[str, float] = {}
    for mode, flags in (
        ("off", []),
        ("on", ["--enable_batching", f"--batching_parameters_file={BATCHING}"]),
    ):
        with ModelServerProcess(config, extra_flags=flags, rest=False) as server:
            for clients in (1, 8):
                runs = [
                    asyncio.run(
                        throughput(
                            server.grpc_target, args.model, request, args.throughput_calls, clients
                        )
                    )
                    for _ in range(args.repeats)
                ]
                out[f"{mode}/{clients}"] = statistics.median(runs)
    return out


def main(argv: list[str] | None = None) -> int:
    """Latency of one `generate` call through the in-process, gRPC and REST model clients on the
    same SavedModel, with ratios to the in-process baseline measured in the same run."""
    parser = bench_parser(main)
    repository_option(parser)
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
    parser.add_argument(
        "--throughput-calls",
        type=int,
        default=48,
        help="requests per throughput run (default: %(default)s)",
    )
    parser.add_argument(
        "--throughput-tokens",
        type=int,
        default=200,
        help="max_new_tokens of each throughput request (default: %(default)s)",
    )
    parser.add_argument(
        "--repeats", type=int, default=3, help="throughput runs per setting, median reported"
    )
    args = parser.parse_args(argv)
    if args.calls < 1 or args.batch < 1 or min(args.tokens) < 1:
        parser.error("--calls, --batch and --tokens take positive integers")
    if not ModelRepository(args.repository).versions(args.model):
        parser.error(f"no model {args.model!r} in {args.repository} (make models)")

    card = ModelRepository(args.repository).card(args.model)
    vocab = int(card.get("tokenizer", {}).get("size", 32))
    work = Path(tempfile.mkdtemp(prefix="bench-clients-"))
    config = write_config(work / "models.config", args.repository, {args.model: None})
    with ModelServerProcess(config) as server:
        rows = asyncio.run(bench(args, server, vocab))
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
    rates = bench_throughput(args, config, vocab)
    print(
        f"\nthroughput of talkative model-server over gRPC, {args.throughput_tokens} new tokens "
        f"a request, {args.throughput_calls} requests a run, median of {args.repeats} runs"
    )
    print(f"{'batching':<9} {'clients':>7} {'req/s':>8} {'x off,1':>8}")
    for key, rate in rates.items():
        mode, clients = key.split("/")
        print(f"{mode:<9} {clients:>7} {rate:>8.2f} {rate / rates['off/1']:>8.2f}")
    print(f"batching on vs off at 8 clients: {rates['on/8'] / rates['off/8']:.2f}x")
    return 0 if all(r["same_output"] for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
