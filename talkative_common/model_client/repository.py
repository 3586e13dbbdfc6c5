"""The model repository on disk: <root>/<name>/<version>/ with assets.extra/ beside the graph.

TF Serving mounts the same directory; services read model cards and vocabularies
from it whichever backend runs the graphs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from talkative_common.model_client.base import ModelNotFound


class ModelRepository:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def models(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and self.versions(p.name))

    def versions(self, name: str) -> list[int]:
        base = self.root / name
        if not base.is_dir():
            return []
        return sorted(
            int(p.name)
            for p in base.iterdir()
            if p.name.isdigit() and (p / "saved_model.pb").exists()
        )

    def resolve(self, name: str, version: int | None = None) -> int:
        """The version to use: the one asked for, else the newest (TF Serving's default policy)."""
        versions = self.versions(name)
        if not versions:
            raise ModelNotFound(f"no model {name!r} in {self.root}")
        if version is None:
            return versions[-1]
        if version not in versions:
            raise ModelNotFound(f"model {name!r} has no version {version} (has {versions})")
        return version

    def path(self, name: str, version: int | None = None) -> Path:
        return self.root / name / str(self.resolve(name, version))

    def asset(self, name: str, filename: str, version: int | None = None) -> Path:
        path = self.path(name, version) / "assets.extra" / filename
        if not path.exists():
            raise ModelNotFound(f"model {name!r} lacks assets.extra/{filename}")
        return path

    def card(self, name: str, version: int | None = None) -> dict[str, Any]:
        card: dict[str, Any] = json.loads(
            self.asset(name, "model_card.json", version).read_text(encoding="utf-8")
        )
        return card
