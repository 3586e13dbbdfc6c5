"""HTTP routes of textgen-service: thin, the work is in generation.py and the model classes."""

from __future__ import annotations

from fastapi import APIRouter

from talkative_common.generation_schema import (
    GenerationRequest,
    GenerationResponse,
    ModelInfo,
    ModelList,
)
from talkative_common.openapi import problem_responses
from textgen_service import generation
from textgen_service.api.deps import RegistryDep, SettingsDep

router = APIRouter(prefix="/v1", tags=["generation"])
# What the routes raise themselves; talkative_common.openapi adds what the edges answer.
PROBLEMS = problem_responses(
    {
        404: "no such model; /v1/models lists them",
        422: "a field is out of range or unknown, max_new_tokens is over the model's own "
        "limit (in /v1/models), a repetition control is asked of a model that does not "
        "offer it (`generation_options` in /v1/models), or the prompt has no character "
        "the model knows",
        503: "the models are loading, or the model server is unavailable",
    }
)


@router.post(
    "/generations",
    response_model=GenerationResponse,
    responses=PROBLEMS,
    summary="Continue a prompt with a text model",
    description="The prompt is sent as written: the service fits it to the model (see "
    "`tokenizer` and `alphabet` in /v1/models) and `normalisation.prompt` in the answer "
    "is the text the model read.",
)
async def create_generation(
    body: GenerationRequest, registry: RegistryDep, settings: SettingsDep
) -> GenerationResponse:
    return await generation.generate(body, registry, settings)


@router.get(
    "/models",
    response_model=ModelList,
    responses=problem_responses({503: "the models are loading"}),
    summary="The text models served, from their cards, and what each can read",
)
async def list_models(registry: RegistryDep, settings: SettingsDep) -> ModelList:
    return ModelList(
        default=registry.default,
        models=[
            ModelInfo(
                name=m.name,
                version=m.version,
                kind=m.family,
                language=m.language,
                description=str(m.card.get("description", "")),
                parameters=int(m.card.get("parameters", 0)),
                held_out_loss=_figures(m.card.get("held_out_loss", {})),
                # What a request may ask, whatever its prompt: the service's cap included.
                max_new_tokens=min(settings.max_new_tokens_limit, m.max_new_tokens),
                generation_options=m.generation_options,
                styles=m.styles,
                tokenizer=m.tokenizer_kind,
                alphabet=m.alphabet_chars,
                card=m.card,
            )
            for m in registry.models.values()
        ],
    )


def _figures(report: object) -> dict[str, float]:
    """The numbers of a card's held-out report; its notes and nested parts stay in `card`."""
    if not isinstance(report, dict):
        return {}
    return {
        k: float(v)
        for k, v in report.items()
        if isinstance(v, int | float) and not isinstance(v, bool)
    }
