"""The layering of DESIGN.md §2, checked on the source: the domain is pure, and nothing imports ops/."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
OURS = {"domain", "commands", "projections", "adapters", "gateways", "ops", "migrations", "tests"}
ALLOWED = {
    "domain": {"domain"},
    "commands": {"domain", "commands"},
    "projections": {"domain", "projections"},
    "adapters": {"domain", "commands", "projections", "adapters"},
    "gateways": {"domain", "commands", "gateways"},
}
DOMAIN_THIRD_PARTY = {"msgspec", "eventsourcing"}


def imported_roots(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    roots: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


def sources(folder: str) -> list[Path]:
    return sorted((ROOT / folder).rglob("*.py"))


@pytest.mark.parametrize("folder", sorted(ALLOWED))
def test_each_layer_imports_only_what_it_may(folder: str) -> None:
    for path in sources(folder):
        ours = imported_roots(path) & OURS
        assert ours <= ALLOWED[folder], f"{path.relative_to(ROOT)} imports {sorted(ours - ALLOWED[folder])}"


def test_the_domain_imports_only_the_standard_library_msgspec_and_eventsourcing() -> None:
    import sys

    for path in sources("domain"):
        foreign = {
            root
            for root in imported_roots(path)
            if root not in sys.stdlib_module_names and root not in OURS and root != "__future__"
        }
        assert foreign <= DOMAIN_THIRD_PARTY, f"{path.relative_to(ROOT)} imports {sorted(foreign)}"


def test_the_domain_reads_no_clock_and_no_randomness() -> None:
    forbidden = ("datetime.now(", "datetime.utcnow(", "uuid4(", "time.time(", "random.")
    for path in sources("domain"):
        text = path.read_text()
        found = [word for word in forbidden if word in text]
        assert not found, f"{path.relative_to(ROOT)} uses {found}"


def test_the_checker_sees_a_forbidden_import(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("from adapters.event_store import store\nimport litestar\n")
    assert imported_roots(bad) == {"adapters", "litestar"}
