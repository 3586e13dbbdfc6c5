"""Give an exported GPT-2 version the current graph, as a new version, without retraining.

The weights, tokenizer and training figures of `--from` are kept; the graph is built
again by `export.export_weights`, so the new version gets what the generator gained
since (the sliding window past the context, `generate_controlled`'s repetition
controls). The card keeps every training and held-out figure of the old one and says
which version it was rebuilt from (`rebuilt_from`). Reproducible: the same committed
version in gives the same weights out.

    python -m training.gpt2.reexport --from serving/models/gpt2_fr/1 \
        --out serving/models/gpt2_fr/2
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from talkative_common.cli import command_parser
from training.cli_common import print_json

# What export_weights writes from the graph and the tokenizer; everything else of the
# old card (name, language, corpus, training, held-out loss, licence) is kept.
GRAPH_KEYS = (
    "kind",
    "signature",
    "signatures",
    "generation_options",
    "sliding_window",
    "architecture",
    "context",
    "parameters",
    "weights_dtype",
    "max_new_tokens_cap",
    "date",
    "warmup_requests",
    "styles",
)


def reexport(source: Path, out_dir: Path) -> dict[str, Any]:
    from training.gpt2.export import export_weights, weights_from_export

    old = json.loads((source / "assets.extra" / "model_card.json").read_text(encoding="utf-8"))
    if old.get("kind") != "gpt2":
        raise SystemExit(f"{source} is not a GPT-2 export (kind {old.get('kind')!r})")
    weights, config, _ = weights_from_export(source)
    card = {k: v for k, v in old.items() if k not in GRAPH_KEYS}
    card["rebuilt_from"] = {"version": source.name, "date": old.get("date")}
    full = export_weights(
        weights,
        config,
        source / "assets.extra" / "tokenizer.json",
        out_dir,
        card,
        old.get("weights_dtype", "float32"),
    )
    for extra in ("loss_curve.png",):
        if (source / "assets.extra" / extra).exists():
            shutil.copyfile(source / "assets.extra" / extra, out_dir / "assets.extra" / extra)
    if (source / "batching_params.pbtxt").exists():
        shutil.copyfile(source / "batching_params.pbtxt", out_dir / "batching_params.pbtxt")
    return full


def main(argv: list[str] | None = None) -> None:
    """Rebuild an exported GPT-2 version's graph as a new version: same weights, tokenizer
    and card figures; the current generator (sliding window, repetition controls)."""
    p = command_parser(main)
    p.add_argument(
        "--from",
        dest="source",
        type=Path,
        required=True,
        help="the exported version to rebuild, e.g. serving/models/gpt2_fr/1",
    )
    p.add_argument(
        "--out",
        type=Path,
        required=True,
        help="the new version's directory, e.g. serving/models/gpt2_fr/2 (must not exist)",
    )
    a = p.parse_args(argv)
    print_json(reexport(a.source, a.out))


if __name__ == "__main__":
    main()
