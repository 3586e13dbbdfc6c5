"""models.config: the text-format ModelServerConfig, its checks, and the versions each model serves.

- Parsing: the same proto TF Serving reads (tensorflow_serving/config/model_server_config.proto,
  shipped in tensorflow-serving-api), with errors that give the line and column.
- Checks: model_servers/server_core.cc ValidateModelConfigList (names listed once, base
  paths absolute). Only the tensorflow platform is served, so upstream's
  ValidateNoModelsChangePlatforms can never refuse anything here.
- Versions: sources/storage_path/file_system_storage_path_source.cc: a version is a
  sub-directory of the base path whose name is a non-negative integer; the policy
  `latest` (num_versions, default 1), `all` or `specific` picks among those on disk.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from model_server.errors import ServingError, failed_precondition, invalid_argument, not_found
from model_server.protos import ConfigError, parse_text

PLATFORM = "tensorflow"


def model_server_config_class() -> Any:
    from tensorflow_serving.config import model_server_config_pb2

    return model_server_config_pb2.ModelServerConfig


def read_config(path: Path) -> Any:
    """Parse a models.config file; ConfigError (with line and column) when it does not parse."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot be read: {exc}", source=str(path)) from exc
    return parse_text(model_server_config_class(), text, str(path))


def rewrite_base_paths(config: Any, rule: str) -> None:
    """Apply --model_base_path_rewrite=FROM=TO to every base path that starts with FROM."""
    source, sep, target = rule.partition("=")
    if not sep or not source or not target.startswith("/"):
        raise ConfigError(
            "--model_base_path_rewrite must be FROM=TO with an absolute TO", source=rule
        )
    source = source.rstrip("/")
    for entry in model_entries(config).values():
        if entry.base_path == source or entry.base_path.startswith(source + "/"):
            entry.base_path = target.rstrip("/") + entry.base_path[len(source) :]


def single_model_config(name: str, base_path: str) -> Any:
    """--model_name/--model_base_path without a config file (server.cc BuildSingleModelConfig)."""
    config = model_server_config_class()()
    entry = config.model_config_list.config.add()
    entry.name, entry.base_path, entry.model_platform = name, base_path, PLATFORM
    return config


def validate(config: Any) -> None:
    """The checks ServerCore::ReloadConfig makes before it accepts a config."""
    which = config.WhichOneof("config")
    if which == "custom_model_config":
        raise invalid_argument("ModelServer does not yet support custom model config.")
    if which is None:
        return
    names: set[str] = set()
    for entry in config.model_config_list.config:
        if entry.name in names:
            raise invalid_argument(
                f"Illegal to list model {entry.name} multiple times in config list"
            )
        names.add(entry.name)
        if not entry.base_path.startswith("/") and "://" not in entry.base_path:
            raise invalid_argument(
                f"Expected model {entry.name} to have an absolute path or URI; "
                f"got base_path()={entry.base_path}"
            )
        if "://" in entry.base_path:
            raise invalid_argument(
                f"model {entry.name}: base_path {entry.base_path} is a URI; this model server "
                "reads local paths only (TF Serving also reads s3:// and gs://)"
            )
        platform = entry.model_platform or PLATFORM
        if platform != PLATFORM:
            raise failed_precondition(f"PlatformConfigMap has no entry for platform {platform}")


def versions_on_disk(base_path: str) -> list[int]:
    """Version directories under a model's base path (all-digit names), ascending."""
    root = Path(base_path)
    if not root.is_dir():
        return []
    found = []
    for child in root.iterdir():
        if child.name.isdigit() and child.is_dir():
            found.append(int(child.name))
    return sorted(found)


def version_path(base_path: str, version: int) -> Path:
    """The directory of a version (leading zeros, as in "0001", are allowed on disk)."""
    root = Path(base_path)
    plain = root / str(version)
    if plain.is_dir():
        return plain
    for child in root.iterdir() if root.is_dir() else ():
        if child.name.isdigit() and int(child.name) == version:
            return child
    return plain


def aspired_versions(entry: Any, on_disk: list[int]) -> list[int]:
    """The versions a model's policy serves among those on disk.

    sources/storage_path/file_system_storage_path_source.cc."""
    policy = entry.model_version_policy
    which = policy.WhichOneof("policy_choice")
    if which == "all":
        return list(on_disk)
    if which == "specific":
        wanted = set(policy.specific.versions)
        return [v for v in on_disk if v in wanted]
    count = policy.latest.num_versions if which == "latest" else 0
    count = count or 1
    return on_disk[-count:] if on_disk else []


def model_entries(config: Any) -> dict[str, Any]:
    if config is None or config.WhichOneof("config") != "model_config_list":
        return {}
    return {entry.name: entry for entry in config.model_config_list.config}


def no_versions_error(entry: Any) -> ServingError:
    return not_found(
        f"No versions of servable {entry.name} found under base path {entry.base_path}"
    )


__all__ = [
    "ConfigError",
    "aspired_versions",
    "model_entries",
    "read_config",
    "single_model_config",
    "validate",
    "version_path",
    "versions_on_disk",
]
