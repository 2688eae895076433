"""What every systemd-nspawn run of the harness shares: its base flags and its cleanup.

The host's PID 1 need not be systemd (NOTES.md), so nspawn runs with ``--register=no
--keep-unit``: no machined, no scope. nspawn keeps per-machine state under
``/run/systemd/nspawn`` that it cannot remove when /run is not a tmpfs ("Attempted to
remove disk file system under .../propagate/NAME"); `forget()` removes it after the run.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

STATE = Path("/run/systemd/nspawn")


def base_argv(unit: str, root: Path) -> list[str]:
    """``systemd-nspawn`` with the flags every run needs: quiet, unregistered, no host journal."""
    return ["systemd-nspawn", "--quiet", "--register=no", "--keep-unit",
            f"--machine={unit}", f"--directory={root}", "--link-journal=no", "--timezone=off"]


def lock_file(root: Path) -> Path:
    """The image lock nspawn takes on ``root`` (named after its device and inode)."""
    st = os.stat(root)
    return STATE / "locks" / f"inode-{st.st_dev}:{st.st_ino}"


def forget(unit: str, root: Path | None = None) -> None:
    """Remove what nspawn left of machine ``unit`` (and its lock on ``root``), once it exited."""
    with contextlib.suppress(FileNotFoundError):
        (STATE / "propagate" / unit).rmdir()
    if root is not None:
        with contextlib.suppress(FileNotFoundError):
            lock_file(root).unlink()
