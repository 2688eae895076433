"""Names with structure, each built and parsed here and nowhere else.

- `LabName`: ``harness-<lab>-<part>``, the name of a lab's machine unit (``harness-1a2b-gw``)
  and of its network namespaces (``harness-1a2b-gw``, ``harness-1a2b-sw``). A lab id has
  no dash, so the part after it may have some: ``harness-1a2b-pas-r11p7`` is machine
  ``pas-r11p7`` of lab ``1a2b``.
- `SnapshotRef`: where a snapshot is published: a stage's ``<stage>/<key>``, or a kept
  failure's ``failed/<test-id>`` (a failure is not a stage).

Besides `errors`, this module imports nothing of the package.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from harness.core.errors import UsageError

PREFIX = "harness-"
FAILED = "failed"
PREP = "prep"  # harness-prep-<pid>-<token>: a short-lived nspawn run in an unbooted root, no lab
_LAB_ID = re.compile(r"[a-z0-9]+")
_PART = re.compile(r"[a-z0-9][a-z0-9-]*")


@dataclass(frozen=True, order=True)
class LabName:
    """``harness-<lab>-<part>``: a unit or namespace of lab ``lab``.

    >>> LabName.parse("harness-1a2b-pas-r11p7")
    LabName(lab='1a2b', part='pas-r11p7')
    >>> str(LabName("1a2b", "sw"))
    'harness-1a2b-sw'
    """

    lab: str
    part: str

    def __post_init__(self) -> None:
        if not self.is_lab_id(self.lab):
            raise UsageError(f"bad lab id {self.lab!r}: use [a-z0-9] (no dash), not {PREP!r}")
        if not _PART.fullmatch(self.part):
            raise UsageError(f"bad name {self.part!r} in lab {self.lab}: use [a-z0-9-]")

    def __str__(self) -> str:
        return f"{PREFIX}{self.lab}-{self.part}"

    @staticmethod
    def is_lab_id(text: str) -> bool:
        """Whether ``text`` can be a lab id (a build's or a test's scratch owner cannot)."""
        return bool(_LAB_ID.fullmatch(text)) and text != PREP

    @staticmethod
    def prefix(lab: str) -> str:
        """What every name of lab ``lab`` starts with."""
        return f"{PREFIX}{lab}-"

    @classmethod
    def parse(cls, text: str) -> LabName | None:
        """The lab name ``text`` is, or None if it is not one (another tool's, a build's)."""
        if not text.startswith(PREFIX):
            return None
        lab, _, part = text[len(PREFIX):].partition("-")
        try:
            return cls(lab, part)
        except UsageError:
            return None


@dataclass(frozen=True)
class WorkOwner:
    """``<kind>-<label>-<pid>-<token>``: who holds working clones in a store besides labs (a base
    stage being built, a bundle being imported, a failure being kept), and which process: the
    store's sweep releases them once that process is gone.

    >>> WorkOwner.parse("build-bootstrap-1234-ab12")
    WorkOwner(kind='build', label='bootstrap', pid=1234, token='ab12')
    """

    kind: str
    label: str
    pid: int
    token: str

    KINDS = ("build", "import", "keep", "apply")

    def __str__(self) -> str:
        return f"{self.kind}-{self.label}-{self.pid}-{self.token}"

    @classmethod
    def parse(cls, text: str) -> WorkOwner | None:
        kind, _, rest = text.partition("-")
        label, _, tail = rest.rpartition("-")
        label, _, pid = label.rpartition("-")
        if kind not in cls.KINDS or not label or not pid.isdigit() or not tail:
            return None
        return cls(kind, label, int(pid), tail)


def prep_unit(pid: int, token: str) -> str:
    """The nspawn machine name of a command run in an unbooted root: no lab's (`LabName.parse`
    says None), so `harness destroy` leaves a live build's preparation alone."""
    return f"{PREFIX}{PREP}-{pid}-{token}"


@dataclass(frozen=True, order=True)
class SnapshotRef:
    """A published snapshot's name: stage ``group`` with key ``key``, or, when ``group`` is
    ``failed``, the kept failure of test ``key`` (a safe form of its node id).

    >>> SnapshotRef.parse("gw/1a2b3c")
    SnapshotRef(group='gw', key='1a2b3c')
    >>> SnapshotRef.failure("scenarios-test_dns.py-test_x").is_failure
    True
    """

    group: str
    key: str

    def __str__(self) -> str:
        return f"{self.group}/{self.key}"

    @classmethod
    def of_stage(cls, stage: str, key: str) -> SnapshotRef:
        """Where stage ``stage`` with ``key`` is published."""
        if stage == FAILED:
            raise UsageError(f"{FAILED!r} cannot be a stage's name: it holds kept failures")
        return cls(stage, key)

    @classmethod
    def failure(cls, test: str) -> SnapshotRef:
        """Where the lab of failing test ``test`` (a safe name) is kept."""
        return cls(FAILED, test)

    @classmethod
    def parse(cls, text: str) -> SnapshotRef:
        """``<stage>/<key>`` or ``failed/<test>``; `UsageError` if ``text`` is neither."""
        group, sep, key = text.partition("/")
        if not sep or not group or not key or "/" in key:
            raise UsageError(f"bad snapshot name {text!r}: give <stage>/<key> or failed/<test-id>")
        return cls(group, key)

    @property
    def is_failure(self) -> bool:
        """Whether it is a kept failure rather than a stage's snapshot."""
        return self.group == FAILED

    @property
    def stage(self) -> str | None:
        """The stage it is a snapshot of (None for a kept failure)."""
        return None if self.is_failure else self.group


_SNAPSHOT_NAME = re.compile(r"[a-z0-9][a-z0-9._-]*(/[a-z0-9][a-z0-9._-]*)*")


def check_name(name: str) -> str:
    """Return ``name`` if it is a valid snapshot name, else raise a `UsageError` saying the rule."""
    if not _SNAPSHOT_NAME.fullmatch(name) or ".." in name:
        raise UsageError(f"bad snapshot name {name!r}: use lowercase parts of [a-z0-9._-] "
                         "separated by '/', e.g. 'bootstrap/1a2b' or 'failed/test_dns'")
    return name
