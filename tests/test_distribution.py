"""harness.engine.distribution: a room's table and plot for the report, from given times (pure:
no root, no machines), the recorder that hands them to a pytest run, and a run of a toy room
(integration) whose allure results carry both."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from harness.core.errors import CheckFailed
from harness.engine.distribution import Measured, plot, table
from harness.machines import spread
from harness.machines.spread import Spread
from tests.test_bundle import ROOMS
from tests.toy import Toy

SVG = "{http://www.w3.org/2000/svg}"
ROOM = Spread("room r12: 5 lookups", {"pas-r12p1": 0.05, "pas-r12p2": 0.06, "pas-r12p10": 0.9,
                                      "pas-r12p3": 0.04})


def test_the_table_gives_each_checks_figures_and_names_its_outliers() -> None:
    page = table([Measured(ROOM, k=4, floor=0.2), Measured(Spread("leases", {"a": 1.0, "b": 1.2}))])
    rows = page.split("<tr>")[2:]
    assert rows[0].startswith("<td>room r12: 5 lookups</td><td>4</td><td>0.050</td><td>0.900</td>"
                              "<td>0.900</td><td>4 times the others&#x27; median, and over 0.2 s</td>")
    assert '<td class="slow">pas-r12p10 (0.900 s)</td>' in rows[0]
    assert "<td>not checked</td><td class=\"\">none</td>" in rows[1]


def test_the_plot_has_a_bar_per_machine_slowest_first_and_the_outlier_in_red() -> None:
    svg = ET.fromstring(plot(Measured(ROOM, k=4, floor=0.2)))
    bars = svg.findall(f"{SVG}rect")
    assert [b.get("data-name") for b in bars] == ["pas-r12p10", "pas-r12p2", "pas-r12p1", "pas-r12p3"]
    widths = [float(b.get("width", 0)) for b in bars]
    assert widths == sorted(widths, reverse=True) and widths[0] > 10 * widths[1]  # 0.9 s against 0.06 s
    colours = {b.get("data-name"): b.get("fill") for b in bars}
    assert colours["pas-r12p10"] != colours["pas-r12p1"] == colours["pas-r12p2"]
    texts = [t.text for t in svg.iter(f"{SVG}text")]
    assert {"p50", "p95", "allowed", "0.900 s", "room r12: 5 lookups"} <= set(texts)
    lines = {t.text: float(t.get("x", 0)) for t in svg.iter(f"{SVG}text") if t.text in ("p50", "allowed")}
    # allowed at 4 times the median, 0.05 s: 0.2 s, the floor too
    assert lines["allowed"] - 150 == pytest.approx(4 * (lines["p50"] - 150), rel=0.01)


def test_a_check_and_a_measure_reach_the_recorders() -> None:
    seen: list[tuple[str, float | None]] = []
    remove = spread.add_recorder(lambda s, k, floor: seen.append((s.what, k)))
    try:
        spread.record(ROOM)
        with pytest.raises(CheckFailed, match="pas-r12p10"):
            ROOM.check(k=4, floor=0.2)
    finally:
        remove()
    ROOM.outliers(k=4)  # no recorder left: nothing more is seen
    assert seen == [(ROOM.what, None), (ROOM.what, 4)]


ROOM_RUN = '''
from harness.machines.fleet import timed_each

def test_each_seat_runs_a_command(room):
    timed_each(room, lambda seat: seat.succeed("true"), what="a command per seat").check(k=1000)
'''


@pytest.mark.integration
def test_a_room_run_attaches_its_table_and_plot_to_each_rooms_result(toy: Toy, tmp_path: Path) -> None:
    toy.pytester.makepyfile(toystages=ROOMS, test_room=ROOM_RUN)
    results = tmp_path / "allure-results"
    toy.run("test_room.py", f"--alluredir={results}").assert_outcomes(passed=2)
    seen = {}
    for path in results.glob("*-result.json"):
        result = json.loads(path.read_text())
        kinds = {a["type"]: results / a["source"] for a in result.get("attachments", [])}
        assert {"text/html", "image/svg+xml"} <= set(kinds), f"{result['name']}: {kinds}"
        plot = ET.parse(kinds["image/svg+xml"]).getroot()
        seen[result["name"]] = sorted(str(bar.get("data-name")) for bar in plot.iter(f"{SVG}rect"))
        assert "a command per seat" in kinds["text/html"].read_text()
    assert sorted(seen.values()) == [["r1p1", "r1p2"], ["r2p1"]], seen
