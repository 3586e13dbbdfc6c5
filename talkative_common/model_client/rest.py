"""TensorFlow Serving over its documented REST API (httpx, one pooled async client).

- status:   GET  /v1/models/{name}[/versions/{v}|/labels/{l}]
- metadata: GET  /v1/models/{name}[/versions/{v}|/labels/{l}]/metadata
- predict:  POST /v1/models/{name}[/versions/{v}|/labels/{l}]:predict
  with the columnar body {"signature_name": ..., "inputs": {name: nested lists}} and
  string/bytes values as {"b64": standard base64}.

JSON numbers do not say whether they are int32 or float32, so outputs are typed
with the signature's metadata, fetched once per model, version and signature.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx

from talkative_common.model_client.base import ModelClient, ModelNotFound, ModelUnavailable
from talkative_common.model_client.remote import (
    RemoteOptions,
    Retryable,
    Selector,
    select,
    with_retries,
)
from talkative_common.model_client.tensors import from_json, signature_from_json, to_json
from talkative_common.model_client.types import Inputs, Outputs, SignatureInfo


class RestClient(ModelClient):
    backend = "rest"

    def __init__(
        self, base_url: str, options: RemoteOptions | None = None, *, max_connections: int = 64
    ) -> None:
        self.base_url, self.options = base_url.rstrip("/"), options or RemoteOptions()
        self._limits = httpx.Limits(
            max_connections=max_connections, max_keepalive_connections=max_connections
        )
        self._http: httpx.AsyncClient | None = None
        self._signatures: dict[tuple[str, Selector, str], SignatureInfo] = {}

    def _client(self) -> httpx.AsyncClient:
        if self._http is None:
            self._http = httpx.AsyncClient(base_url=self.base_url, limits=self._limits)
        return self._http

    @staticmethod
    def _path(model: str, selector: Selector) -> str:
        path = f"/v1/models/{quote(model, safe='')}"
        if selector.version is not None:
            return f"{path}/versions/{selector.version}"
        if selector.label:
            return f"{path}/labels/{quote(selector.label, safe='')}"
        return path

    async def _request(self, method: str, path: str, what: str, body: Any = None) -> dict[str, Any]:
        http = self._client()

        async def attempt(left: float) -> dict[str, Any]:
            try:
                response = await http.request(method, path, json=body, timeout=left)
            except httpx.TimeoutException as exc:
                raise ModelUnavailable(f"{what}: no answer in time ({type(exc).__name__})") from exc
            except httpx.TransportError as exc:  # refused, reset, closed mid-answer
                raise Retryable(f"{what}: {type(exc).__name__} {exc}") from exc
            try:
                answer = response.json()
            except ValueError:
                answer = {"error": response.text[:200]}
            if response.status_code == 200 and isinstance(answer, dict):
                return answer
            raise _translate(response.status_code, str(answer.get("error", answer)), what)

        return await with_retries(attempt, self.options, what)

    async def _signature(self, model: str, selector: Selector, signature: str) -> SignatureInfo:
        key = (model, selector, signature)
        if key not in self._signatures:
            what = f"metadata of model {model!r} ({selector})"
            meta = await self._request("GET", self._path(model, selector) + "/metadata", what)
            signatures = meta.get("metadata", {}).get("signature_def", {}).get("signature_def")
            if not isinstance(signatures, dict):
                raise ModelUnavailable(f"{what}: the answer has no signature_def")
            if signature not in signatures:
                raise ModelNotFound(
                    f"model {model!r} has no signature {signature!r} (has {sorted(signatures)})"
                )
            self._signatures[key] = signature_from_json(signatures[signature])
        return self._signatures[key]

    async def signature(
        self, model: str, signature: str, version: int | None = None
    ) -> SignatureInfo:
        selector = select(self.options, version)
        self._signatures.pop((model, selector, signature), None)  # a readiness check reads anew
        return await self._signature(model, selector, signature)

    async def served_version(self, model: str) -> int:
        selector = select(self.options, None)
        what = f"metadata of model {model!r} ({selector})"
        meta = await self._request("GET", self._path(model, selector) + "/metadata", what)
        return int(meta["model_spec"]["version"])

    async def status(self, model: str, version: int | None = None) -> list[dict[str, Any]]:
        """TF Serving's model status: one entry per version with its state (AVAILABLE...)."""
        selector = select(self.options, version)
        answer = await self._request(
            "GET", self._path(model, selector), f"status of model {model!r} ({selector})"
        )
        versions: list[dict[str, Any]] = answer.get("model_version_status", [])
        return versions

    async def predict(
        self, model: str, inputs: Inputs, *, signature: str, version: int | None = None
    ) -> Outputs:
        selector = select(self.options, version)
        info = await self._signature(model, selector, signature)
        body = {"signature_name": signature, "inputs": {k: to_json(v) for k, v in inputs.items()}}
        answer = await self._request(
            "POST", self._path(model, selector) + ":predict", f"model {model!r} ({selector})", body
        )
        outputs = answer.get("outputs")
        if len(info.outputs) == 1 and not (
            isinstance(outputs, dict) and set(outputs) == set(info.outputs)
        ):
            outputs = {next(iter(info.outputs)): outputs}  # a lone output comes unwrapped
        if not isinstance(outputs, dict) or set(outputs) != set(info.outputs):
            raise ModelUnavailable(f"model {model!r} answered outputs that its signature lacks")
        return {key: from_json(value, info.outputs[key]) for key, value in outputs.items()}

    async def close(self) -> None:
        if self._http is not None:
            await self._http.aclose()
        self._http = None


def _translate(status: int, error: str, what: str) -> Exception:
    message = f"{what}: HTTP {status} {error}"
    if status == 503:
        return Retryable(message)
    if status == 404 or (status == 400 and "version label" in error):
        return ModelNotFound(message)
    if 400 <= status < 500 and status not in (408, 429):
        return ValueError(message)  # the service built a bad request: a bug, not an outage
    return ModelUnavailable(message)
