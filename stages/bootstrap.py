"""Stage bootstrap: the Debian base every machine of the lab is cloned from.

The harness's Debian base stage (`harness.debian`): bookworm, minbase plus what a booted,
testable machine needs, from the mirror the host's apt already uses. Published read-only
as ``bootstrap/<key>``, with one member, ``base``. Every machine is cloned from it lean: the
units and generators of `harness.debian.LEAN` masked (none of them is seen by a scenario).
"""

from __future__ import annotations

from harness import debian

STAGE = debian.base_stage("bootstrap", lean=debian.LEAN)  # a lean lab: bench/README.md, issue 29
