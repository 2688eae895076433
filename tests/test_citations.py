"""The project's docs and docstrings cite only what the project has: the pages they name are
in the repository, and a function a harness docstring names as `name()` is defined."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TEXTS = sorted(path for pattern in ("harness/**/*.py", "stages/*.py", "scenarios/*.py", "bench/*.py",
                                     "*.md", "docs/*.md", "bench/*.md") for path in REPO.glob(pattern))
# pages runs write under reports/, named bare: not the project's files
WRITTEN = {"timings.md", "latest.md", "soak.md"}


def test_every_page_cited_is_in_the_project() -> None:
    assert len(TEXTS) > 50, f"found nothing to read under {REPO}"
    missing = [f"{path.relative_to(REPO)} cites {page}" for path in TEXTS
               for page in re.findall(r"[\w./-]*[\w-]\.md\b", path.read_text())
               if not page.startswith("reports/") and Path(page).name not in WRITTEN
               and not any((base / page).is_file() for base in (REPO, path.parent, REPO / "docs"))]
    assert not missing, ("a page of the project cites a file the project does not have: move what it "
                         "needs to know into the page or the docstring itself (or, for a page a run "
                         f"writes under reports/, add its name to WRITTEN); {missing}")


def test_every_function_a_harness_docstring_names_exists() -> None:
    sources = {path: path.read_text() for path in [*REPO.glob("harness/**/*.py"), *REPO.glob("stages/*.py")]}
    defined = {name for text in sources.values()
               for name in re.findall(r"^\s*(?:def|class) (\w+)", text, re.M)}
    missing = [f"{path.relative_to(REPO)} names `{name}()`" for path, text in sources.items()
               if path.is_relative_to(REPO / "harness")
               for name in re.findall(r"`([\w.]+)\(\)`", text) if name.split(".")[-1] not in defined]
    assert not missing, f"a docstring names a function that no longer exists: {missing}"
