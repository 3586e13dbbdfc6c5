"""Each service's OpenAPI document says what really goes over the wire.

Routes name the problems their own code raises with `problem_responses`. What the
shared edges (talkative_common.app) can answer is added to every operation by `install_openapi`,
so no route repeats it:

- a request body: 400 when it cannot be parsed, 408 when it does not arrive in time,
  413 when it is too large, 422 when a field is wrong, 429 when the client is already
  sending as many bodies as it may;
- behind the concurrency bound (everything but the probes and the metrics): 503 with
  Retry-After when the service is at capacity;
- as the settings switch them on: 401 without a valid API key, 429 over the rate
  limit, 403 for a cross-site POST.

Every error is an application/problem+json `Problem`. The document is also made to
say what the code checks: limits that come from the settings (`limit_request_fields`),
integer bounds written as integers (FastAPI writes bounds as floats, and a float cannot
hold 2**63 - 1), form fields as they may be sent (never null; an optional one may be
empty, which is taken as omitted) and form bodies closed to unknown fields.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from fastapi import FastAPI

from talkative_common.access import ALWAYS_OPEN, OriginCheck
from talkative_common.observability import ConcurrencyLimit
from talkative_common.problems import PROBLEM_JSON
from talkative_common.settings import ServiceSettings

PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
SCHEMAS: dict[str, dict[str, Any]] = {
    "Problem": {
        "title": "Problem",
        "description": "RFC 9457 problem details: how every service reports every error.",
        "type": "object",
        "required": ["type", "title", "status", "detail"],
        "properties": {
            "type": {"type": "string", "description": "about:blank: the status says it all"},
            "title": {"type": "string", "description": "a short summary of the status"},
            "status": {"type": "integer", "minimum": 400, "maximum": 599},
            "detail": {"type": "string", "description": "what was wrong, and what to do"},
            "instance": {"type": "string", "description": "the path that was requested"},
            "errors": {
                "type": "array",
                "description": "one entry per field at fault (validation problems)",
                "items": {"$ref": "#/components/schemas/FieldError"},
            },
        },
    },
    "FieldError": {
        "title": "FieldError",
        "type": "object",
        "required": ["field", "message"],
        "properties": {
            "field": {"type": "string", "description": "the field, or `body` for the whole"},
            "message": {"type": "string"},
        },
    },
}
RETRY_AFTER = {
    "Retry-After": {
        "description": "seconds to wait before trying again",
        "required": True,
        "schema": {"type": "integer", "minimum": 1},
    }
}
WWW_AUTHENTICATE = {
    "WWW-Authenticate": {
        "description": "names the header that carries the API key",
        "required": True,
        "schema": {"type": "string"},
    }
}
_FORMS = ("multipart/form-data", "application/x-www-form-urlencoded")
_ANNOTATIONS = ("title", "description", "default")
_BOUNDS = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf")
# FastAPI's own 422, which says application/json; ours are problem documents.
_FASTAPI_422 = "#/components/schemas/HTTPValidationError"


def problem_response(description: str, status: int | None = None) -> dict[str, Any]:
    """One documented problem; 429 and 503 carry Retry-After."""
    response: dict[str, Any] = {
        "description": description,
        "content": {PROBLEM_JSON: {"schema": PROBLEM_REF}},
    }
    if status in (429, 503):
        response["headers"] = dict(RETRY_AFTER)
    elif status == 401:
        response["headers"] = dict(WWW_AUTHENTICATE)
    return response


def problem_responses(statuses: Mapping[int, str]) -> dict[int | str, dict[str, Any]]:
    """A route's `responses=`: each status it raises itself, with what it means there."""
    return {status: problem_response(why, status) for status, why in statuses.items()}


def photo_upload(field: str = "image") -> dict[str, Any]:
    """A route's `openapi_extra` for a multipart photo: the picture types the part may be."""
    types = "image/jpeg, image/png, image/webp, image/gif"
    encoding = {field: {"contentType": types}}
    return {"requestBody": {"content": {"multipart/form-data": {"encoding": encoding}}}}


def limit_request_fields(app: FastAPI, **limits: Mapping[str, Any]) -> None:
    """Keywords for request fields whose limits come from the settings, e.g.
    `limit_request_fields(app, prompt={"maxLength": 2000})`: every request body
    property of that name gets them."""
    app.state.openapi_field_limits = {**getattr(app.state, "openapi_field_limits", {}), **limits}
    app.openapi_schema = None  # made again, with these


def install_openapi(
    app: FastAPI, settings: ServiceSettings, *, open_paths: Iterable[str] = ()
) -> None:
    """Make `app.openapi()` (and so /openapi.json) FastAPI's document, refined as above."""
    generate = app.openapi
    opened = [re.compile(p) for p in open_paths]
    refined: list[dict[str, Any]] = []  # the document already refined (FastAPI caches it)

    def is_open(path: str, method: str) -> bool:
        reading = method in ("get", "head")
        return bool(ALWAYS_OPEN.match(path)) or (reading and any(p.fullmatch(path) for p in opened))

    def openapi() -> dict[str, Any]:
        document = generate()
        if not refined or refined[0] is not document:
            limits = getattr(app.state, "openapi_field_limits", {})
            _refine(document, settings, is_open, limits)
            refined[:] = [document]
        return document

    app.openapi = openapi  # type: ignore[method-assign]


def _takes_upload(body: Mapping[str, Any]) -> bool:
    return "multipart/form-data" in body.get("content", {})


def _refine(
    document: dict[str, Any],
    settings: ServiceSettings,
    is_open: Callable[[str, str], bool],
    limits: Mapping[str, Mapping[str, Any]],
) -> None:
    components = document.setdefault("components", {}).setdefault("schemas", {})
    components.update(SCHEMAS)
    json_limit = min(settings.max_json_bytes, settings.max_request_bytes)
    for path, item in document.get("paths", {}).items():
        for method, operation in item.items():
            responses = operation.setdefault("responses", {})
            for status, response in list(responses.items()):
                schema = response.get("content", {}).get("application/json", {}).get("schema")
                if schema == {"$ref": _FASTAPI_422}:
                    responses[status] = problem_response(
                        "a field is missing, malformed, out of range or unknown; "
                        "`errors` names each"
                    )
            edges: list[tuple[int, str]] = []
            body = operation.get("requestBody")
            if body is not None:
                edges += [
                    (400, "the body cannot be parsed (malformed JSON or multipart)"),
                    (408, f"the body did not arrive within {settings.body_timeout_s:g} s"),
                    (
                        413,
                        # the limit of this endpoint: validation.BodySizeLimit decides so
                        "the body is larger than "
                        f"{settings.max_request_bytes if _takes_upload(body) else json_limit:,}"
                        " bytes",
                    ),
                    (422, "a field is missing, malformed, out of range or unknown"),
                    (429, "this client is already sending as many bodies as it may at once"),
                ]
                _limit_body(body, components, limits)
            if path not in ConcurrencyLimit.EXEMPT:
                edges.append((503, "the service is at capacity"))
            if not is_open(path, method):
                if settings.api_key_hashes:
                    edges.append((401, "the X-API-Key header is missing or not a valid key"))
                if settings.rate_limit:
                    edges.append((429, "too many requests from this client"))
            if settings.cors_origins and method.upper() in OriginCheck.UNSAFE:
                edges.append((403, "sent from a page of a site that is not allowed"))
            for status, why in edges:
                _add(responses, status, why)
            for status in ("429", "503"):  # each of them says when to try again
                if status in responses:
                    responses[status]["headers"] = {
                        **RETRY_AFTER,
                        **responses[status].get("headers", {}),
                    }
            operation["responses"] = dict(sorted(responses.items()))
    for name in ("HTTPValidationError", "ValidationError"):
        components.pop(name, None)
    for schema in _walk(document):
        if schema.get("type") == "integer":
            for bound in _BOUNDS:
                value = schema.get(bound)
                if isinstance(value, float) and value.is_integer():
                    schema[bound] = int(value)


def _add(responses: dict[str, Any], status: int, why: str) -> None:
    """Document `status` for `why`, beside whatever the route documents for it already."""
    current = responses.get(str(status))
    if current is None:
        responses[str(status)] = problem_response(why, status)
        return
    if why not in current.get("description", ""):
        current["description"] = f"{current.get('description', '')}; or {why}".lstrip("; ")
    current.setdefault("content", {}).setdefault(PROBLEM_JSON, {"schema": PROBLEM_REF})


def _limit_body(
    body: dict[str, Any],
    components: dict[str, Any],
    limits: Mapping[str, Mapping[str, Any]],
) -> None:
    for media_type, content in body.get("content", {}).items():
        schema = _resolve(content.get("schema", {}), components)
        if media_type in _FORMS:
            # Closed: every form route refuses unknown fields with a 422 naming them
            # (talkative_common.validation.only_form_fields), where FastAPI would ignore them.
            schema["additionalProperties"] = False
        required = set(schema.get("required", []))
        for name, prop in schema.get("properties", {}).items():
            if name in limits:
                for branch in prop.get("anyOf", [prop]):
                    if branch.get("type") != "null":
                        branch.update(limits[name])
            if media_type in _FORMS:
                if prop.get("contentMediaType") == "application/octet-stream":
                    prop["format"] = "binary"  # OpenAPI 3.0 tools read this spelling
                _form_field(prop, optional=name not in required)


def _form_field(prop: dict[str, Any], *, optional: bool) -> None:
    """What a form field may be sent as. Never null: a field is sent or omitted. An
    optional one may also be empty, which FastAPI takes as omitted (its default)."""
    branches = [b for b in prop.pop("anyOf", []) if b.get("type") != "null"]
    if not branches:  # one schema: its keywords are the field's own
        branches = [{k: v for k, v in prop.items() if k not in _ANNOTATIONS}]
        for keyword in branches[0]:
            del prop[keyword]
    if optional:
        branches.append({"const": "", "description": "empty: as if omitted"})
    if len(branches) == 1:
        prop.update(branches[0])
    else:
        prop["anyOf"] = branches


def _resolve(schema: dict[str, Any], components: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref", "")
    if ref.startswith("#/components/schemas/"):
        resolved: dict[str, Any] = components.get(ref.rsplit("/", 1)[1], {})
        return resolved
    return schema


def _walk(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)
