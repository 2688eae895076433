"""Stages: what each builds, in which order, and the key its snapshot is stored under.

A stage's key hashes its definition (module source, packages, inventory entries, harness
version) chained with the previous stage's key, so a change to one stage invalidates its
snapshot and every later one, nothing before it. The snapshot of stage S with key K is
published in the store as ``S/K``.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import harness

ORDER = ("bootstrap", "gw", "rhfs", "web", "pas")
KEY_LENGTH = 16


def stage_key(definition: Any, parent: str | None) -> str:
    """Key of a stage from its JSON-able ``definition`` and its ``parent``'s key.

    >>> stage_key({"packages": ["bind9"]}, "1a2b") != stage_key({"packages": []}, "1a2b")
    True
    """
    blob = json.dumps({"definition": definition, "parent": parent,
                       "harness": harness.__version__}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:KEY_LENGTH]


def snapshot_name(stage: str, key: str) -> str:
    """Where stage ``stage`` with ``key`` is published: ``<stage>/<key>``."""
    return f"{stage}/{key}"
