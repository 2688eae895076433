"""Stage bootstrap: the Debian base every machine of the lab is cloned from.

The harness's Debian base stage (`harness.engine.build.debian`): bookworm, minbase plus what a booted,
testable machine needs, from the mirror the host's apt already uses. Published read-only
as ``bootstrap/<key>``, with one member, ``base``. Every machine is cloned from it lean: the
units and generators of `harness.engine.build.debian.LEAN` masked (none of them is seen by a scenario).
"""

from __future__ import annotations

from harness.engine.build import debian

# A lean lab (bench/README.md, issue 29). And no SysV init scripts: every service of this lab
# has a unit of its own (the one script without, hwclock.sh, is for hardware).
STAGE = debian.base_stage("bootstrap", lean=(*debian.LEAN, "systemd-sysv-generator"))
