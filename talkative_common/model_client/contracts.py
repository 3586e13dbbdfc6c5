"""The model contracts of DESIGN.md, and their check against a backend's signature metadata."""

from __future__ import annotations

from dataclasses import dataclass

from talkative_common.model_client.base import ContractMismatch
from talkative_common.model_client.types import SignatureInfo


@dataclass(frozen=True)
class SignatureContract:
    name: str
    inputs: dict[str, tuple[str, int]]  # name -> (dtype, rank); dimension 0 is the batch
    outputs: dict[str, tuple[str, int]]

    def check(self, model: str, info: SignatureInfo) -> None:
        problems = []
        for kind, wanted, got in (
            ("input", self.inputs, info.inputs),
            ("output", self.outputs, info.outputs),
        ):
            for key, (dtype, rank) in wanted.items():
                spec = got.get(key)
                if spec is None:
                    problems.append(f"{kind} {key!r} is missing")
                    continue
                if spec.dtype != dtype:
                    problems.append(f"{kind} {key!r} is {spec.dtype}, expected {dtype}")
                if spec.shape is not None:
                    if len(spec.shape) != rank:
                        problems.append(
                            f"{kind} {key!r} has rank {len(spec.shape)}, expected {rank}"
                        )
                    elif kind == "input" and spec.shape[0] not in (None, -1):
                        problems.append(
                            f"input {key!r} has a fixed batch dimension {spec.shape[0]}"
                        )
            extra = set(got) - set(wanted)
            if kind == "input" and extra:
                problems.append(f"unexpected inputs {sorted(extra)}")
        if problems:
            raise ContractMismatch(
                f"model {model!r} signature {self.name!r} does not meet the contract: "
                + "; ".join(problems)
            )


GENERATE = SignatureContract(
    name="generate",
    inputs={
        "prompt_ids": ("int32", 2),
        "prompt_lengths": ("int32", 1),
        "max_new_tokens": ("int32", 1),
        "temperature": ("float32", 1),
        "top_k": ("int32", 1),
        "top_p": ("float32", 1),
        "seed": ("int64", 1),
    },
    outputs={"token_ids": ("int32", 2), "lengths": ("int32", 1)},
)

# Offered beside `generate` by models whose card lists it (card["signatures"]): the same
# inputs plus the repetition controls (1.0 and 0 turn them off).
GENERATE_CONTROLLED = SignatureContract(
    name="generate_controlled",
    inputs=GENERATE.inputs
    | {"repetition_penalty": ("float32", 1), "no_repeat_ngram_size": ("int32", 1)},
    outputs=GENERATE.outputs,
)

CAPTIONER = SignatureContract(
    name="serving_default",
    inputs={"image_bytes": ("string", 1)},
    outputs={"captions": ("string", 2), "log_probs": ("float32", 2)},
)

# Offered beside `serving_default` by exports whose card has `detections` (the people and cat
# faces caption-service finds with OpenCV, talkative_common/detectors.py): the photo, its
# detections (float32[B, 16, 6], rows [kind, score, x0, y0, x1, y1]) and a beam width per image.
CAPTION_SCENE = SignatureContract(
    name="caption_scene",
    inputs={
        "image_bytes": ("string", 1),
        "detections": ("float32", 3),
        "beam_size": ("int32", 1),
    },
    outputs=CAPTIONER.outputs,
)
