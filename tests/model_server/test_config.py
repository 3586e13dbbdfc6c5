"""models.config handling without a server: version policies, checks, the base-path rewrite."""

from __future__ import annotations

from pathlib import Path

import pytest
from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

from model_server import config as cfg
from model_server.errors import ServingError
from model_server.protos import ConfigError


def parse(text: str) -> model_server_config_pb2.ModelServerConfig:
    return text_format.Parse(text, model_server_config_pb2.ModelServerConfig())


def entry(policy: str = "") -> model_server_config_pb2.ModelConfig:
    text = f'model_config_list {{ config {{ name: "m" base_path: "/models/m" {policy} }} }}'
    return parse(text).model_config_list.config[0]


@pytest.mark.parametrize(
    ("policy", "aspired"),
    [
        ("", [3]),  # file_system_storage_path_source.cc: the default policy is latest { 1 }
        ("model_version_policy { latest { num_versions: 2 } }", [2, 3]),
        ("model_version_policy { all {} }", [1, 2, 3]),
        ("model_version_policy { specific { versions: 1 versions: 7 } }", [1]),
    ],
)
def test_version_policies_pick_among_the_versions_on_disk(policy: str, aspired: list[int]) -> None:
    assert cfg.aspired_versions(entry(policy), [1, 2, 3]) == aspired
    assert cfg.aspired_versions(entry(policy), []) == []


def test_versions_on_disk_are_all_digit_directories(tmp_path: Path) -> None:
    for name in ("1", "0003", "12", "v4", "5.tmp"):
        (tmp_path / name).mkdir()
    (tmp_path / "7").write_text("a file, not a version")
    assert cfg.versions_on_disk(str(tmp_path)) == [1, 3, 12]
    assert cfg.version_path(str(tmp_path), 3) == tmp_path / "0003"
    assert cfg.versions_on_disk(str(tmp_path / "missing")) == []


def test_rewrite_maps_the_container_paths_only(tmp_path: Path) -> None:
    config = parse(
        'model_config_list { config { name: "a" base_path: "/models/a" } '
        'config { name: "b" base_path: "/elsewhere/b" } '
        'config { name: "c" base_path: "/modelsx/c" } }'
    )
    cfg.rewrite_base_paths(config, f"/models/={tmp_path}")
    paths = [c.base_path for c in config.model_config_list.config]
    assert paths == [f"{tmp_path}/a", "/elsewhere/b", "/modelsx/c"]


@pytest.mark.parametrize("rule", ["/models", "=/x", "/models=relative/dir", ""])
def test_a_bad_rewrite_rule_is_refused(rule: str) -> None:
    with pytest.raises(ConfigError, match="FROM=TO"):
        cfg.rewrite_base_paths(parse("model_config_list {}"), rule)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('config { name: "m" base_path: "/m" } config { name: "m" base_path: "/n" }',
         "Illegal to list model m multiple times in config list"),
        ('config { name: "m" base_path: "m" }', "to have an absolute path or URI"),
        ('config { name: "m" base_path: "s3://bucket/m" }', "local paths only"),
        ('config { name: "m" base_path: "/m" model_platform: "tflite" }',
         "PlatformConfigMap has no entry for platform tflite"),
    ],
)  # fmt: skip
def test_configs_server_core_refuses(text: str, message: str) -> None:
    with pytest.raises(ServingError, match=message):
        cfg.validate(parse(f"model_config_list {{ {text} }}"))


def test_read_config_gives_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "models.config"
    path.write_text('model_config_list {\n  config { nme: "m" }\n}\n', encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        cfg.read_config(path)
    assert (caught.value.line, caught.value.source) == (2, str(path))
    with pytest.raises(ConfigError, match="cannot be read"):
        cfg.read_config(tmp_path / "absent.config")
