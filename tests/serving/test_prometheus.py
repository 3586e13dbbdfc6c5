"""deploy/prometheus/: the scrape config and the alert rules, checked by promtool (Debian's
`prometheus` package, in the Makefile's DEBIAN_PACKAGES), and the alert rules' metric
names checked against what the services export."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS = ROOT / "deploy" / "prometheus"


def promtool(*args: str) -> str:
    tool = shutil.which("promtool")
    if tool is None:
        pytest.skip(
            "promtool is missing: apt-get install --no-install-recommends prometheus "
            "(make system-deps)"
        )
    result = subprocess.run(
        [tool, *args], cwd=PROMETHEUS, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout + result.stderr


def test_promtool_check_config() -> None:
    assert "SUCCESS" in promtool("check", "config", "prometheus.yml")


def test_promtool_check_rules() -> None:
    assert "SUCCESS: 6 rules found" in promtool("check", "rules", "alerts.yml")


def test_promtool_test_rules() -> None:
    """alerts_test.yml: every alert fires on its series, with its labels and summary."""
    out = promtool("test", "rules", "alerts_test.yml")
    assert "SUCCESS" in out
    tested = set(re.findall(r"alertname: (\w+)", (PROMETHEUS / "alerts_test.yml").read_text()))
    rules = yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())["groups"][0]["rules"]
    assert tested == {rule["alert"] for rule in rules}  # no rule without a test


def test_the_rules_use_metrics_the_services_export() -> None:
    exported = (ROOT / "talkative_common" / "observability.py").read_text(encoding="utf-8")
    rules = (PROMETHEUS / "alerts.yml").read_text(encoding="utf-8")
    for name in sorted(set(re.findall(r"\b(http_[a-z_]+?)(?:_bucket)?\b", rules))):
        assert f'"{name}"' in exported, f"alerts.yml uses {name}, which no service exports"
