"""Regenerate docs/lab.dot and docs/lab.svg from the inventory: ``python -m stages.docs``."""

from __future__ import annotations

from pathlib import Path

from harness import proc
from stages.generate import topology_dot
from stages.inventory import INVENTORY

DOCS = Path(__file__).resolve().parent.parent / "docs"


def main() -> None:
    dot = DOCS / "lab.dot"
    dot.write_text(topology_dot(INVENTORY))
    proc.run(["dot", "-Tsvg", "-o", str(DOCS / "lab.svg"), str(dot)])
    print(f"wrote {dot} and {DOCS / 'lab.svg'}")


if __name__ == "__main__":
    main()
