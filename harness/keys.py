"""Stage keys: what a snapshot's name promises about how it was built.

A stage's key hashes everything its build depends on: its definition (the source of the
module declaring it and of the modules of its package it uses, by module name: see
`sources_used`; its packages, the inventory
entries of its machines, the files it reads, see `files_digest`), its parent's key, and the
source of the harness modules that shape a build (`harness_code_key`). Equal keys, equal
builds: a snapshot is reused only under the key it was built for.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import json
import sys
import types
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import harness

KEY_LENGTH = 16

# The harness modules whose code shapes what a build leaves in a snapshot: how a stage is
# described and keyed (stage, keys, inventory), how machine roots are filled (rootfs), how a
# build runs (build, scripts), how the machines it runs in boot and are wired (lab, machine,
# nspawn, network) and how the result is published (store). Editing one of them rebuilds
# every stage; the front ends, reports, evidence, waits and the rest do not.
BUILD_MODULES = ("build", "inventory", "inventory_file", "keys", "lab", "lean", "machine", "network",
                 "nspawn", "rootfs", "scripts", "playbook", "ansible_plugins/harness_machine", "stage",
                 "store")


def code_key(package: Path, modules: Sequence[str] = BUILD_MODULES) -> str:
    """A hash of the source of ``modules`` in ``package``: the harness's part of every stage's
    key (it replaced a version string that never moved, so a changed harness reused stale
    snapshots)."""
    digest = hashlib.sha256()
    for name in modules:
        digest.update(f"{name}\0".encode())
        digest.update((package / f"{name}.py").read_bytes())
    return digest.hexdigest()[:KEY_LENGTH]


@functools.cache
def harness_code_key() -> str:
    """`code_key` of this harness, computed once per process."""
    return code_key(Path(harness.__file__).parent)


def stage_key(definition: Any, parent: str | None) -> str:
    """Key of a stage from its JSON-able ``definition``, its ``parent``'s key and the code of
    the harness that builds it (`harness_code_key`).

    >>> stage_key({"packages": ["bind9"]}, "1a2b") != stage_key({"packages": []}, "1a2b")
    True
    """
    blob = json.dumps({"definition": definition, "parent": parent,
                       "harness": harness_code_key()}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:KEY_LENGTH]


def sources_used(module: types.ModuleType) -> dict[str, str]:
    """The source of ``module`` and of each module of its top-level package that it uses,
    directly or through one another (found from what their globals refer to), by module name.

    Only what is used counts: a module no stage imports (the reference lab's mutants, in
    ``stages/mutants/``) is in no key, and editing it rebuilds nothing."""
    package = module.__name__.split(".")[0]
    seen: dict[str, types.ModuleType] = {}
    todo = [module]
    while todo:
        current = todo.pop()
        if current.__name__ in seen:
            continue
        seen[current.__name__] = current
        for value in vars(current).values():
            used = value if isinstance(value, types.ModuleType) else \
                sys.modules.get(getattr(value, "__module__", None) or "")
            if used is not None and used.__name__.split(".")[0] == package \
                    and getattr(used, "__file__", None):
                todo.append(used)
    return {name: inspect.getsource(seen[name]) for name in sorted(seen)}


def files_digest(paths: Iterable[Path]) -> dict[str, str]:
    """Per file under ``paths`` (files, or directories walked in full), a hash of its content
    and whether it is executable: what a stage that reads them must be rebuilt for. Hidden
    files and directories (``.git``, editor swap files) and Python's byte code (written by
    whatever imports a file of the directory: an Ansible filter plugin) do not count."""
    digests: dict[str, str] = {}
    for path in paths:
        files = [path] if path.is_file() else sorted(
            p for p in path.rglob("*") if p.is_file() and p.suffix != ".pyc"
            and not any(part.startswith(".") or part == "__pycache__" for part in p.relative_to(path).parts))
        for file in files:
            mode = "x" if file.stat().st_mode & 0o111 else "-"
            name = file.relative_to(path.parent)  # not where the project is checked out
            digests[str(name)] = f"{mode}{hashlib.sha256(file.read_bytes()).hexdigest()}"
    return digests


def inputs(definition: Mapping[str, Any], parent: str | None) -> dict[str, str]:
    """A stage's key taken apart: each input of ``definition`` (each module of its source,
    each file it reads, each machine's inventory entry...), its parent's key and the harness's
    build code, hashed one by one. A snapshot records them, so that a rebuild can say which
    changed (`changes`)."""

    def digest(value: Any) -> str:
        return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:12]

    labels = {"modules": "module", "files": "file", "machines": "machine", "definition": "definition"}
    parts: dict[str, str] = {}
    for field, value in definition.items():
        if field in labels and isinstance(value, Mapping):
            parts.update({f"{labels[field]} {name}": digest(item) for name, item in value.items()})
        else:
            parts[field] = digest(value)
    parts["parent stage"] = parent or "-"
    parts["harness build code"] = harness_code_key()
    return parts


def changes(before: Mapping[str, str], now: Mapping[str, str]) -> list[str]:
    """What differs between two `inputs`, in words: ``file office/server/10-site.sh changed``."""
    said = [f"{part} changed" for part in now if part in before and before[part] != now[part]]
    said += [f"{part} added" for part in now if part not in before]
    said += [f"{part} removed" for part in before if part not in now]
    return said
