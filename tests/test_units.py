"""bench/units.py: one machine's cgroup figures taken apart by unit (no root)."""

from bench.units import SUPERVISOR, by_unit, markdown, role


def test_units_pid1_and_what_exited_unseen_per_slice() -> None:
    figures = {".": 1_000_000, "supervisor": 3_000, "payload": 990_000,
               "payload/init.scope": 400_000, "payload/system.slice": 500_000,
               "payload/system.slice/a.service": 300_000, "payload/system.slice/b.service": 150_000,
               "payload/dev-hugepages.mount": 2_000}
    rows = by_unit(figures)
    assert rows[SUPERVISOR] == 3
    assert rows["PID 1 (init.scope)"] == 400
    assert rows["a.service"] == 300 and rows["b.service"] == 150 and rows["dev-hugepages.mount"] == 2
    assert rows["exited, unseen, system.slice"] == 50  # the slice keeps its dead children's count
    assert rows["payload, outside any unit (before PID 1, exited units)"] == 88
    assert "system.slice" not in rows  # a slice is its children, not a row


def test_a_room_member_is_a_seat() -> None:
    rooms = {"r11": ("pas-r11p1", "pas-r11p2")}
    assert role("pas-r11p2", rooms) == "seat"
    assert role("gw", rooms) == "gw"


def test_markdown_sums_the_units_past_those_shown() -> None:
    table = markdown({"gw": {"total ms": 10.0, "n": 1, "units": {"a": 6.0, "b": 3.0, "c": 1.0}}}, shown=1)
    assert "| gw (n=1) | 10 ms | a 6, 2 more 4 |" in table
