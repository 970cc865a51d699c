"""`aiwp` starts quickly: the LLM SDKs, the web stack and boto3 are imported only by the commands that use them."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("openai", "anthropic", "litestar", "uvicorn", "boto3")


def test_the_command_line_does_not_import_what_only_some_commands_need() -> None:
    probe = f"import sys, ops.cli; print(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60)
    assert loaded.stdout.split() == []
