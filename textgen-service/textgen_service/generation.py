"""The generation use case: limits that depend on settings and on the model, then the call.

The model instance (one version) is taken once, so the limits, the vocabulary, the
graph and the reported version all belong to the version that served the request.
The prompt arrives as its writer wrote it; the model fits it (models/*.normalise) and
the answer's `normalisation` says what it read.
"""

from __future__ import annotations

import secrets

from talkative_common.errors import InvalidInput
from talkative_common.generation_schema import GenerationRequest, GenerationResponse, Normalisation
from textgen_service.models import GenerationParams
from textgen_service.registry import TextModelRegistry
from textgen_service.settings import TextgenSettings


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
    if errors:
        raise InvalidInput(
            "; ".join(f"{e['field']}: {e['message']}" for e in errors), errors=errors
        )
    rng_seed = request.seed if request.seed is not None else secrets.randbits(63)
    result = await model.generate(
        request.prompt,
        GenerationParams(
            request.max_new_tokens, request.temperature, request.top_k, request.top_p, rng_seed
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
