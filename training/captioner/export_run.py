"""Export a finished captioner training run as a TF Serving model version.

The same as `python -m training.captioner.train ... --export-to DIR`, for a run
trained earlier: the run's decoder, vocabulary and metrics, with the encoder,
become one SavedModel under the `captioner` contract.
"""

from __future__ import annotations

from pathlib import Path

from talkative_common.cli import command_parser
from training.captioner.train import export_run
from training.cli_common import export_options, print_json


def main(argv: list[str] | None = None) -> int:
    """Export a captioner run directory (from python -m training.captioner.train) as a SavedModel
    with serving_default and caption_beam signatures, assets.extra/vocab.json and
    assets.extra/model_card.json (holding the run's metrics). TF Serving's warm-up requests are a
    separate step: python -m training.serving_warmup OUT."""
    p = command_parser(
        main,
        parents=[
            export_options(
                out_example="serving/models/captioner/2",
                name="captioner",
                language="en",
                what="the captions",
            )
        ],
    )
    overrides = p.add_argument_group("the run's choices, overridden (default: the run's)")
    overrides.add_argument(
        "--encoder-weights",
        type=Path,
        default=None,
        help="Keras encoder weights (converted when missing)",
    )
    overrides.add_argument("--beam-size", type=int, default=None, help="beam width in the graph")
    overrides.add_argument("--max-len", type=int, default=None, help="most words per caption")
    overrides.add_argument(
        "--length-alpha", type=float, default=None, help="beam-search length normalisation"
    )
    a = vars(p.parse_args(argv))
    print_json(export_run(a.pop("run_dir"), a.pop("out"), **a))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
