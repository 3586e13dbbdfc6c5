"""Captioner speed: in-graph beam search against Show and Tell's one-call-per-word inference.

Both run on the same SavedModel and weights: the exported `serving_default`
(encoder, beam search and decoding in one graph call) against the reference client
loop (`feed_image`, then `inference_step` once per word with the LSTM state fed
back from Python; training/captioner/reference.py). Each is measured twice: through
the in-process model client, and over TF Serving's gRPC protocol (the Python test
model server of tests/serving on 127.0.0.1, so every reference step is an RPC, as
when the model lives in TF Serving; that server is slower than the C++ one, which
favours the in-graph search). Prints the per-image latency of each and their ratio
(target: 5x or more), the time beyond the encoder, and images per second at batch 8.

Then the scene captioner (issue 20) against the whole-image one, in the same run and
through the same two clients: per-image latency at batch 1 of the whole-image model's
`serving_default` (version 1) and of the scene model's `caption_scene` (the newest
version) plus the OpenCV cascades that caption-service runs before calling it (target:
under 3x), and images per second at batch 8 of each.

    python bench/caption.py [--repository serving/models] [--model captioner] [--repeats 5]
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import bench_parser, repository_option  # noqa: E402

if TYPE_CHECKING:
    from training.captioner.vocab import WordVocab

TARGET_RATIO = 5.0
SCENE_TARGET = 3.0  # the scene captioner's latency, at most this many times the whole-image one


def _median_seconds(fn: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


class Calls:
    """The captioner's signatures through one model client, called synchronously."""

    def __init__(self, loop: asyncio.AbstractEventLoop, client: Any, model: str) -> None:
        self.loop, self.client, self.model = loop, client, model

    def __call__(
        self, signature: str, version: int | None = None, **inputs: np.ndarray
    ) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = self.loop.run_until_complete(
            self.client.predict(self.model, inputs, signature=signature, version=version)
        )
        return out

    def in_graph(self, images: list[bytes]) -> dict[str, np.ndarray]:
        return self("serving_default", image_bytes=np.array(images, dtype=object))

    def feed_image(self, image: bytes) -> dict[str, np.ndarray]:
        return self("feed_image", image_bytes=np.array([image], dtype=object))

    def reference(self, image: bytes, beam: int, max_len: int) -> list[Any]:
        from training.captioner import reference

        state = self.feed_image(image)

        def step(tokens: np.ndarray, h: np.ndarray, c: np.ndarray) -> tuple[Any, Any, Any]:
            out = self("inference_step", input_feed=tokens, state_h=h, state_c=c)
            return out["log_probs"], out["state_h"], out["state_c"]

        initial = (state["state_h"], state["state_c"])
        return reference.beam_search(initial, step, beam_size=beam, max_len=max_len)


def run_backend(
    backend: str,
    calls: Calls,
    card: dict[str, Any],
    vocab: WordVocab,
    photos: dict[str, bytes],
    repeats: int,
) -> None:
    beam, max_len = int(card["beam_size"]), int(card["max_len"])
    rows, agree = [], 0
    for name, data in photos.items():
        graph_out, ref_out = calls.in_graph([data]), calls.reference(data, beam, max_len)
        top = graph_out["captions"][0][0]
        graph_top = top.decode() if isinstance(top, bytes) else str(top)
        ref_top = vocab.decode(ref_out[0][0])
        agree += graph_top == ref_top
        rows.append(
            (
                name,
                _median_seconds(partial(calls.in_graph, [data]), repeats),
                _median_seconds(partial(calls.reference, data, beam, max_len), repeats),
                _median_seconds(partial(calls.feed_image, data), repeats),
                len(ref_out[0][0]),
            )
        )
    print(f"\n[{backend}]")
    print(f"{'photo':14s} {'words':>5s} {'in-graph ms':>12s} {'reference ms':>13s} {'ratio':>7s}")
    for name, g, r, _, words in rows:
        print(f"{name:14s} {words:5d} {g * 1e3:12.1f} {r * 1e3:13.1f} {r / g:6.2f}x")
    graph_ms = statistics.median(row[1] for row in rows) * 1e3
    ref_ms = statistics.median(row[2] for row in rows) * 1e3
    enc_ms = statistics.median(row[3] for row in rows) * 1e3
    ratio = ref_ms / graph_ms
    verdict = "met" if ratio >= TARGET_RATIO else "not met"
    print(
        f"median per image: in-graph {graph_ms:.1f} ms, reference {ref_ms:.1f} ms -> "
        f"{ratio:.2f}x (target {TARGET_RATIO:.0f}x: {verdict})"
    )
    print(
        f"encoder call alone {enc_ms:.1f} ms; beyond it, decoding costs {graph_ms - enc_ms:.1f} ms "
        f"in-graph and {ref_ms - enc_ms:.1f} ms in the reference loop "
        f"({(ref_ms - enc_ms) / max(graph_ms - enc_ms, 1e-3):.1f}x)"
    )
    print(f"same top caption from both: {agree}/{len(rows)}")
    batch = list(photos.values())[:8]
    calls.in_graph(batch)
    seconds = _median_seconds(partial(calls.in_graph, batch), repeats)
    print(f"batch 8, in-graph: {8 / seconds:.1f} images/s ({seconds * 1e3:.0f} ms per batch)")


def run_scene(
    backend: str,
    calls: Calls,
    versions: tuple[int, int],
    beam: int,
    photos: dict[str, bytes],
    repeats: int,
) -> None:
    """The whole-image captioner (`versions[0]`) against the scene one (`versions[1]`)."""
    from talkative_common.detectors import Detector

    whole_v, scene_v = versions
    detector = Detector()

    def whole(images: list[bytes]) -> object:
        return calls("serving_default", whole_v, image_bytes=np.array(images, dtype=object))

    def scene(images: list[bytes], detections: np.ndarray) -> object:
        return calls(
            "caption_scene",
            scene_v,
            image_bytes=np.array(images, dtype=object),
            detections=detections,
            beam_size=np.full(len(images), beam, np.int32),
        )

    detect = detector.detect_photo  # as caption-service reads the photo

    rows = []
    for name, data in photos.items():
        found = detect(data)[None]
        whole([data]), scene([data], found)  # warm
        rows.append(
            (
                name,
                _median_seconds(partial(whole, [data]), repeats),
                _median_seconds(partial(scene, [data], found), repeats),
                _median_seconds(partial(detect, data), repeats),
            )
        )
    print(f"\n[{backend}] whole-image v{whole_v} against scene v{scene_v}, batch 1")
    print(f"{'photo':14s} {'whole ms':>9s} {'scene ms':>9s} {'cascades ms':>12s} {'ratio':>7s}")
    for name, w, g, d in rows:
        print(f"{name:14s} {w * 1e3:9.1f} {g * 1e3:9.1f} {d * 1e3:12.1f} {(g + d) / w:6.2f}x")
    w_ms = statistics.median(w for _, w, _, _ in rows) * 1e3
    g_ms = statistics.median(g for _, _, g, _ in rows) * 1e3
    d_ms = statistics.median(d for _, _, _, d in rows) * 1e3
    ratio = (g_ms + d_ms) / w_ms
    verdict = "met" if ratio < SCENE_TARGET else "not met"
    print(
        f"median per image: whole-image {w_ms:.1f} ms; scene {g_ms:.1f} ms in the graph + "
        f"{d_ms:.1f} ms of cascades = {g_ms + d_ms:.1f} ms -> {ratio:.2f}x "
        f"(target under {SCENE_TARGET:.0f}x: {verdict}); the graph alone {g_ms / w_ms:.2f}x"
    )
    batch = list(photos.values())[:8]
    found = np.stack([detect(b) for b in batch])
    whole(batch), scene(batch, found)
    w_s = _median_seconds(partial(whole, batch), repeats)
    g_s = _median_seconds(partial(scene, batch, found), repeats)
    d_s = _median_seconds(lambda: [detect(b) for b in batch], repeats)
    print(
        f"batch 8: whole-image {8 / w_s:.1f} images/s; scene {8 / (g_s + d_s):.1f} images/s "
        f"({g_s * 1e3:.0f} ms graph + {d_s * 1e3:.0f} ms cascades per batch, cascades one image "
        "at a time)"
    )


def main(argv: list[str] | None = None) -> int:
    """Per-image latency of the exported in-graph beam search against the Show and Tell reference
    inference (Python beam search, one model call per word), and images per second at batch 8, on
    the same weights, called in this process and over TF Serving's gRPC protocol."""
    parser = bench_parser(main)
    repository_option(parser)
    parser.add_argument("--model", default="captioner", help="captioner name (default: captioner)")
    parser.add_argument(
        "--repeats", type=int, default=5, help="timed runs per photo, median kept (default: 5)"
    )
    parser.add_argument(
        "--whole-version",
        type=int,
        default=1,
        help="the whole-image captioner's version, compared with the scene one (default: 1)",
    )
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats takes a positive integer")

    from talkative_common.model_client import ModelRepository
    from talkative_common.model_client.grpc import GrpcClient
    from talkative_common.model_client.inprocess import InProcessClient
    from tests.support.model_server import ModelServerProcess, write_config
    from training.captioner import offline_photos
    from training.captioner.vocab import WordVocab

    repository = ModelRepository(args.repository)
    if not repository.versions(args.model):
        parser.error(f"no model {args.model!r} in {args.repository} (make captioner)")
    card = repository.card(args.model)
    version_dir = args.repository / args.model / str(repository.resolve(args.model))
    vocab = WordVocab.load(version_dir / "assets.extra" / "vocab.json")
    photos = {p.name: offline_photos.as_bytes(p, "JPEG") for p in offline_photos.PHOTOS}
    print(
        f"captioner {args.model} (beam {card['beam_size']}, at most {card['max_len']} words), "
        f"CPU, {len(photos)} photos, 1 image per call, median of {args.repeats}"
    )
    loop = asyncio.new_event_loop()
    workdir = Path(tempfile.mkdtemp(prefix="bench-caption-"))
    newest = repository.resolve(args.model)
    scene = "detections" in card and args.whole_version in repository.versions(args.model)
    served = sorted({args.whole_version, newest}) if scene else [newest]
    config = write_config(workdir / "models.config", args.repository, {args.model: served})
    with ModelServerProcess(config) as server:
        for name, client in (
            ("in-process", InProcessClient(repository)),
            ("gRPC", GrpcClient(server.grpc_target)),
        ):
            try:
                calls = Calls(loop, client, args.model)
                run_backend(name, calls, card, vocab, photos, args.repeats)
                if scene:
                    versions = (args.whole_version, newest)
                    run_scene(name, calls, versions, int(card["beam_size"]), photos, args.repeats)
            finally:
                loop.run_until_complete(client.close())
    if not scene:
        print(f"\n{args.model} v{newest} is no scene captioner: no whole-image comparison")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
