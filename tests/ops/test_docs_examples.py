"""Every code snippet in docs/ is a file that runs: this runs them."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "docs" / "examples").glob("*.py"))


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_the_example_runs(example: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(example)], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip()


def test_the_write_and_read_example_shows_both_versions() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "docs/examples/write_and_read.py")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert "now: openai/gpt-4o-mini; at version 1: scripted/m1" in result.stdout
    assert "2 AgentReconfigured ada" in result.stdout


def test_docs_reference_only_examples_that_exist() -> None:
    pages = [*(ROOT / "docs").rglob("*.md"), ROOT / "README.md"]
    named = {
        (page.name, name) for page in pages for name in re.findall(r"docs/examples/([\w.-]+\.py)", page.read_text())
    }
    assert named, "no page names an example"
    for page, name in named:
        assert (ROOT / "docs" / "examples" / name).exists(), f"{page} names a missing example {name}"
