"""HTTP routes of textgen-service: thin, the work is in generation.py and the model classes."""

from __future__ import annotations

from fastapi import APIRouter

from textgen_service import generation
from textgen_service.api.deps import RegistryDep, SettingsDep
from textgen_service.schemas import GenerationRequest, GenerationResponse, ModelInfo, ModelList

router = APIRouter(prefix="/v1", tags=["generation"])
PROBLEMS = {
    code: {"description": text, "content": {"application/problem+json": {}}}
    for code, text in {
        404: "unknown model",
        413: "body too large",
        422: "invalid prompt or knobs",
        503: "model unavailable",
    }.items()
}


@router.post(
    "/generations",
    response_model=GenerationResponse,
    responses=PROBLEMS,  # type: ignore[arg-type]
    summary="Continue a prompt with a text model",
)
async def create_generation(
    body: GenerationRequest, registry: RegistryDep, settings: SettingsDep
) -> GenerationResponse:
    return await generation.generate(body, registry, settings)


@router.get("/models", response_model=ModelList, summary="The text models served, from their cards")
async def list_models(registry: RegistryDep) -> ModelList:
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
                max_new_tokens=m.max_new_tokens,
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
