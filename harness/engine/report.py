"""The HTML report: Allure Report 3 (npm package ``allure``, run by node, no Java), offline.

The report is one self-contained ``index.html`` (the awesome plugin's single-file mode):
it opens from disk, from a CI artifact or a mail attachment, with no server and no
network. The npm tools live in ``tools/`` (``make setup`` installs them).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from harness.core import proc
from harness.core.errors import HarnessError

TOOLS = Path(__file__).resolve().parents[2] / "tools"
CONFIG = TOOLS / "allurerc.json"


def tool(name: str) -> Path:
    """An npm tool's executable: ``tools/node_modules/.bin/<name>``, else on PATH."""
    local = TOOLS / "node_modules" / ".bin" / name
    if local.exists():
        return local
    found = shutil.which(name)
    if found is None:
        raise HarnessError(f"{name} is not installed: run `make setup` "
                           f"(or `npm ci --prefix {TOOLS}`; needs node and npm)")
    return Path(found)


def generate(results: Path, output: Path) -> Path:
    """Build the HTML report of allure ``results`` into directory ``output``; return its index.html."""
    if not results.is_dir() or not any(results.glob("*-result.json")):
        raise HarnessError(f"no allure results in {results}: run the tests first "
                           "(they write reports/allure-results), or give --results DIR")
    shutil.rmtree(output, ignore_errors=True)
    env = proc.host_env({"HOME": os.environ.get("HOME", "/root"), "NO_COLOR": "1"})
    proc.run([str(tool("allure")), "generate", str(results), "--output", str(output),
              "--config", str(CONFIG)], env=env, timeout=300)
    index = output / "index.html"
    if not index.exists():
        raise HarnessError(f"allure wrote no {index}: see its output above")
    return index
