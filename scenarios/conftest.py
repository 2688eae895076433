"""Shared helpers for the reference lab's scenarios (fixtures come from the harness plugin)."""

from __future__ import annotations

from dataclasses import dataclass, field

from harness.machine import Machine


@dataclass(frozen=True)
class Answer:
    """A DNS answer as a client saw it; ``raw`` is dig's output, shown when an assertion fails."""

    status: str
    records: list[str]
    raw: str = field(default="", compare=False)

    def __repr__(self) -> str:
        return f"Answer({self.status}, {self.records})\n--- dig said ---\n{self.raw}"


def dig(client: Machine, *query: str, server: str) -> Answer:
    """The answer ``client`` gets from DNS ``server`` to ``query`` (dig arguments)."""
    __tracebackhide__ = True
    out = client.succeed(f"dig +time=2 +tries=2 +noall +comments +answer @{server} {' '.join(query)}")
    status = next((line.split("status: ")[1].split(",")[0] for line in out.splitlines()
                   if "status: " in line), "NO ANSWER")
    records = [line.split()[-1] for line in out.splitlines() if line and not line.startswith(";")]
    return Answer(status, records, out)
