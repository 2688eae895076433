"""Rooms in the report: each check's distribution as a table and a plot, from the times
`harness.machines.fleet.timed_each` recorded (`harness.machines.spread.add_recorder`).

`table` is one HTML table for every check of a test (machines, p50, p95, max, the allowance
it was checked against and its outliers by name); `plot` is one SVG per check, written here
with no plotting library: a bar per machine, slowest first, with the room's p50, p95 and
allowance (k times the median) drawn across, and the outliers in red. The pytest plugin
attaches both to the test's allure result (`harness.pytest.reporting`), passed or failed.

>>> from harness.machines.spread import Spread
>>> room = Measured(Spread("5 lookups", {"pas-r11p1": 0.05, "pas-r11p2": 0.9}), k=4, floor=0.2)
>>> room.outliers
[('pas-r11p2', 0.9)]
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass

from harness.machines.spread import Spread

WIDTH = 640
LABEL = 150  # px for the machine names on the left
ROW = 16
TOP, BOTTOM = 34, 30
SLOW, EVEN, LINE = "#c0392b", "#5b8def", "#555"


@dataclass(frozen=True)
class Measured:
    """A spread and what it was checked against (``k`` None: measured, not checked)."""

    spread: Spread
    k: float | None = None
    floor: float = 0.0

    @property
    def outliers(self) -> list[tuple[str, float]]:
        """The machines `Spread.check` names (none when not checked)."""
        return self.spread.outliers(self.k, self.floor) if self.k is not None else []

    @property
    def allowance(self) -> str:
        """The rule the check applied, as a reader would say it."""
        if self.k is None:
            return "not checked"
        return f"{self.k:g} times the others' median" + (f", and over {self.floor:g} s" if self.floor else "")


def _natural(name: str) -> tuple[object, ...]:
    return tuple(int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name))


def table(checks: list[Measured]) -> str:
    """One HTML page: a row per check with its p50, p95, max, allowance and outliers by name."""
    rows = []
    for m in checks:
        s = m.spread
        slow = ", ".join(f"{name} ({took:.3f} s)" for name, took in m.outliers) or "none"
        rows.append(f"<tr><td>{html.escape(s.what)}</td><td>{len(s.times)}</td><td>{s.p50:.3f}</td>"
                    f"<td>{s.p95:.3f}</td><td>{s.max:.3f}</td><td>{html.escape(m.allowance)}</td>"
                    f"<td class=\"{'slow' if m.outliers else ''}\">{html.escape(slow)}</td></tr>")
    return ("<!DOCTYPE html><html><head><meta charset=\"utf-8\"><style>"
            "body{font:13px sans-serif}table{border-collapse:collapse}"
            "td,th{border:1px solid #ccc;padding:3px 8px;text-align:left}"
            f".slow{{color:{SLOW};font-weight:bold}}</style></head><body><table>"
            "<tr><th>check</th><th>machines</th><th>p50 (s)</th><th>p95 (s)</th><th>max (s)</th>"
            "<th>allowed</th><th>outliers</th></tr>" + "".join(rows) + "</table></body></html>\n")


def plot(m: Measured) -> str:
    """One SVG: a bar per machine (slowest first), the p50, p95 and allowance as lines."""
    s = m.spread
    names = sorted(s.times, key=lambda n: (-s.times[n], _natural(n)))
    slow = {name for name, _ in m.outliers}
    # the allowance drawn is the slower of k times the room's median and the floor: the line a
    # reader compares the bars with (each machine is checked against the median of the
    # others, which is the room's for all but the middle one)
    allowed = max(m.k * s.p50, m.floor) if m.k is not None else None
    scale_max = max(s.max, allowed or 0.0, 1e-9) * 1.05
    span = WIDTH - LABEL - 70

    def x(seconds: float) -> float:
        return LABEL + span * seconds / scale_max

    height = TOP + ROW * len(names) + BOTTOM
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
             f'viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="11">',
             f'<title>{html.escape(s.what)}</title>',
             f'<text x="4" y="14" font-size="12" font-weight="bold">{html.escape(s.what)}</text>']
    for i, name in enumerate(names):
        y = TOP + i * ROW
        took = s.times[name]
        colour = SLOW if name in slow else EVEN
        fill = f' fill="{SLOW}"' if name in slow else ""
        parts.append(f'<text x="{LABEL - 6}" y="{y + 11}" text-anchor="end"{fill}>{html.escape(name)}</text>')
        parts.append(f'<rect class="machine" data-name="{html.escape(name)}" x="{LABEL}" y="{y + 2}" '
                     f'width="{max(x(took) - LABEL, 1):.1f}" height="{ROW - 4}" fill="{colour}"/>')
        parts.append(f'<text x="{x(took) + 4:.1f}" y="{y + 11}">{took:.3f} s</text>')
    bottom = TOP + ROW * len(names)
    marks = [("p50", s.p50, LINE, ""), ("p95", s.p95, LINE, "4 3")]
    if allowed is not None:
        marks.append(("allowed", allowed, SLOW, "2 2"))
    for label, at, colour, dash in marks:
        dashes = f' stroke-dasharray="{dash}"' if dash else ""
        parts.append(f'<line x1="{x(at):.1f}" y1="{TOP - 4}" x2="{x(at):.1f}" y2="{bottom}" '
                     f'stroke="{colour}"{dashes}/>')
        parts.append(f'<text x="{x(at):.1f}" y="{TOP - 8}" text-anchor="middle" '
                     f'fill="{colour}">{label}</text>')
    parts.append(f'<line x1="{LABEL}" y1="{bottom}" x2="{LABEL + span}" y2="{bottom}" stroke="{LINE}"/>')
    for tick in range(5):
        at = scale_max * tick / 4
        parts.append(f'<text x="{x(at):.1f}" y="{bottom + 14}" text-anchor="middle">{at:.2f} s</text>')
    parts.append("</svg>\n")
    return "\n".join(parts)
