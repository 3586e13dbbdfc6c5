"""The generation use case: limits that depend on settings and on the model, then the call.

The model instance (one version) is taken once, so the limits, the vocabulary, the
graph and the reported version all belong to the version that served the request.
The prompt arrives as its writer wrote it; the model fits it (models/*.normalise) and
the answer's `normalisation` says what it read.
"""

from __future__ import annotations

import secrets

from talkative_common.errors import InvalidInput
from talkative_common.generation_schema import (
    REPETITION_CONTROLS_OFF,
    GenerationRequest,
    GenerationResponse,
    Normalisation,
)
from textgen_service.models import GenerationParams, TextModel
from textgen_service.registry import TextModelRegistry
from textgen_service.settings import TextgenSettings


def repetition_controls(
    request: GenerationRequest, model: TextModel, errors: list[dict[str, str]]
) -> dict[str, float]:
    """Each control's value for this model: the request's, else the model's default; a
    model without `generate_controlled` takes only the off values (errors says why not)."""
    options = model.generation_options
    values: dict[str, float] = {}
    for name, off in REPETITION_CONTROLS_OFF.items():
        asked = getattr(request, name)
        option = options.get(name)
        if option is None:
            if asked is not None and asked != off:
                errors.append(
                    {
                        "field": name,
                        "message": f"{model.name} v{model.version} does not offer it (no "
                        f"generate_controlled signature); omit it or send {off}",
                    }
                )
            values[name] = off
            continue
        value = option.get("default", off) if asked is None else asked
        low, high = option.get("minimum", value), option.get("maximum", value)
        if not low <= value <= high:
            errors.append({"field": name, "message": f"between {low:g} and {high:g}"})
        values[name] = value
    return values


async def generate(
    request: GenerationRequest, registry: TextModelRegistry, settings: TextgenSettings
) -> GenerationResponse:
    model = registry.get(request.model)
    errors = []
    if len(request.prompt) > settings.max_prompt_chars:
        errors.append(
            {
                "field": "prompt",
                "message": f"at most {settings.max_prompt_chars} characters "
                f"(got {len(request.prompt)})",
            }
        )
    limit = min(settings.max_new_tokens_limit, model.max_new_tokens)
    if request.max_new_tokens > limit:
        errors.append({"field": "max_new_tokens", "message": f"at most {limit} for {model.name}"})
    controls = repetition_controls(request, model, errors)
    if request.style is not None and request.style not in model.styles:
        known = ", ".join(model.styles) if model.styles else "none: it has no style tokens"
        errors.append({"field": "style", "message": f"{model.name} v{model.version} knows {known}"})
    if errors:
        raise InvalidInput(
            "; ".join(f"{e['field']}: {e['message']}" for e in errors), errors=errors
        )
    rng_seed = request.seed if request.seed is not None else secrets.randbits(63)
    result = await model.generate(
        request.prompt,
        GenerationParams(
            request.max_new_tokens,
            request.temperature,
            request.top_k,
            request.top_p,
            rng_seed,
            float(controls["repetition_penalty"]),
            int(controls["no_repeat_ngram_size"]),
            style=request.style,
        ),
    )
    return GenerationResponse(
        text=result.text,
        model=model.name,
        version=model.version,
        tokens=result.tokens,
        finish_reason=result.finish_reason,
        seed=rng_seed,
        normalisation=Normalisation(
            changed=result.prompt.changed,
            prompt=result.prompt.text,
            replaced=result.prompt.replaced,
        ),
    )
