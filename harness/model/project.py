"""The project a ``harness`` command runs in: its pytest ini, found the way pytest finds it.

`harness build` and `pytest` must build the same pipeline from the same directory, so the
command reads the options pytest would (``harness_pipeline``, ``harness_room_size``) from the
same file: walking up from the current directory, the first of ``pytest.ini``,
``.pytest.ini``, ``pyproject.toml`` (with ``[tool.pytest.ini_options]`` or pytest 9's
``[tool.pytest]``), ``tox.ini`` (with ``[pytest]``) or ``setup.cfg`` (with ``[tool:pytest]``).
Its directory is the project's root, where the pipeline module is imported from.
"""

from __future__ import annotations

import configparser
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from harness.core.errors import UsageError

INI_FILES = ("pytest.ini", ".pytest.ini", "pyproject.toml", "tox.ini", "setup.cfg")
_SECTIONS = {"pytest.ini": "pytest", ".pytest.ini": "pytest", "tox.ini": "pytest", "setup.cfg": "tool:pytest"}


@dataclass(frozen=True)
class Project:
    """A project: its root directory, its ini file (None: it has none), the ini's options."""

    root: Path
    ini: Path | None = None
    options: Mapping[str, str] = field(default_factory=dict)

    def option(self, name: str) -> str:
        """Option ``name`` of the ini, "" if unset."""
        return self.options.get(name, "")

    @property
    def where(self) -> str:
        """Where an option of this project is set, for messages."""
        if self.ini is None:
            return f"a pytest ini in {self.root} (pyproject.toml, [tool.pytest.ini_options])"
        return str(self.ini)


def find(start: Path) -> Project:
    """The project ``start`` is in: the nearest directory, from ``start`` up, with a pytest
    ini; a project without one (rooted at ``start``) if there is none."""
    start = start.resolve()
    for directory in (start, *start.parents):
        for name in INI_FILES:
            path = directory / name
            if path.is_file():
                options = read(path)
                if options is not None:
                    return Project(directory, path, options)
    return Project(start)


def read(path: Path) -> dict[str, str] | None:
    """The pytest options in ini file ``path``, None if it holds no pytest section (pytest
    then looks further; a ``pytest.ini`` counts even when empty)."""
    try:
        if path.name == "pyproject.toml":
            table = tomllib.loads(path.read_text()).get("tool", {}).get("pytest")
            if not isinstance(table, dict):
                return None
            options = table.get("ini_options", table)
            return {k: _text(v) for k, v in options.items() if k != "ini_options"}
        parser = configparser.ConfigParser(interpolation=None)
        parser.read(path)
    except (OSError, tomllib.TOMLDecodeError, configparser.Error) as exc:
        raise UsageError(f"{path}: cannot read it as pytest's ini ({exc}); fix it") from None
    section = _SECTIONS[path.name]
    if not parser.has_section(section):
        return {} if path.name.endswith("pytest.ini") else None
    return dict(parser[section])


def _text(value: object) -> str:
    return " ".join(map(str, value)) if isinstance(value, list) else str(value)
