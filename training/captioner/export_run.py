"""Export a finished captioner training run as a TF Serving model version.

The same as `python -m training.captioner.train ... --export-to DIR`, for a run
trained earlier: the run's decoder, vocabulary and metrics, with the encoder,
become one SavedModel under the `captioner` contract.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from training.captioner.train import export_run


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m training.captioner.export_run",
        description="Export a captioner run directory (from python -m training.captioner.train) "
        "as a SavedModel with serving_default and caption_beam signatures, "
        "assets.extra/vocab.json and assets.extra/model_card.json (holding the run's metrics). "
        "TF Serving's warm-up requests are a separate step: python -m training.serving_warmup OUT.",
    )
    p.add_argument("--run-dir", type=Path, required=True, help="the finished training run")
    p.add_argument(
        "--out",
        type=Path,
        required=True,
        help="model version directory to create, e.g. serving/models/captioner/2",
    )
    p.add_argument("--name", default="captioner", help="model name as served")
    p.add_argument("--language", default="en", help="ISO 639-1 language of the captions")
    p.add_argument(
        "--encoder-weights",
        type=Path,
        default=None,
        help="Keras encoder weights (default: the run's; converted when missing)",
    )
    p.add_argument(
        "--beam-size", type=int, default=None, help="beam width fixed in the graph (default: run's)"
    )
    p.add_argument(
        "--max-len", type=int, default=None, help="most words per caption (default: the run's)"
    )
    p.add_argument(
        "--length-alpha",
        type=float,
        default=None,
        help="beam-search length normalisation (default: the run's)",
    )
    a = p.parse_args(argv)
    card = export_run(
        a.run_dir,
        a.out,
        name=a.name,
        language=a.language,
        encoder_weights=a.encoder_weights,
        beam_size=a.beam_size,
        max_len=a.max_len,
        length_alpha=a.length_alpha,
    )
    print(json.dumps(card, indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
