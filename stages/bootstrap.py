"""Stage bootstrap: the Debian base every machine of the lab is cloned from.

The harness's Debian base stage (`harness.engine.build.debian`): bookworm, minbase plus what a booted,
testable machine needs, from the mirror the host's apt already uses. Published read-only
as ``bootstrap/<key>``, with one member, ``base``.
"""

from __future__ import annotations

from harness.engine.build import debian

STAGE = debian.base_stage("bootstrap")
