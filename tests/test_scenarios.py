"""What the reference lab's scenarios may read: the plan (stages/spec.py, the inventory, the
policy table) and the harness, never the generator whose output they check."""

from __future__ import annotations

import ast
from pathlib import Path

SCENARIOS = Path(__file__).resolve().parent.parent / "scenarios"


def imported(path: Path) -> set[str]:
    """Every module ``path`` imports, and every ``module.name`` it imports from one."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found |= {node.module, *(f"{node.module}.{alias.name}" for alias in node.names)}
    return found


def test_no_scenario_imports_the_generator() -> None:
    files = sorted(SCENARIOS.glob("*.py"))
    assert len(files) > 10, f"no scenarios found in {SCENARIOS}"
    culprits = {path.name: sorted(name for name in imported(path)
                                  if name == "stages.generate" or name.startswith("stages.generate."))
                for path in files}
    culprits = {name: found for name, found in culprits.items() if found}
    assert not culprits, ("a scenario takes its expectations from the generator it checks: read them "
                          f"from stages/spec.py or the inventory instead; {culprits}")


def test_the_check_sees_every_form_of_import(tmp_path: Path) -> None:
    path = tmp_path / "test_x.py"
    path.write_text("import stages.generate\nfrom stages import generate\n"
                    "from stages.generate import LEASE\n")
    assert imported(path) == {"stages", "stages.generate", "stages.generate.LEASE"}
