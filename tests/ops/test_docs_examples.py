"""Every code snippet in docs/ is a file that runs: this runs them."""

from __future__ import annotations

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
    for page in (ROOT / "docs").rglob("*.md"):
        for line in page.read_text().splitlines():
            if "docs/examples/" in line:
                name = line.split("docs/examples/")[1].split()[0].strip("`)")
                assert (ROOT / "docs" / "examples" / name).exists(), f"{page.name} names a missing example {name}"
