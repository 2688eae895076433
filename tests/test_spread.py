"""harness.machines.spread: a room's times as a distribution (pure: no root, no machines)."""

from __future__ import annotations

import pytest

from harness.core.errors import CheckFailed, UsageError
from harness.machines.spread import Spread, percentile


def test_percentiles_are_measured_values() -> None:
    values = [float(n) for n in range(1, 101)]
    assert (percentile(values, 0.5), percentile(values, 0.95), percentile(values, 1.0)) == (50, 95, 100)
    assert percentile([3.0], 0.95) == 3.0


def test_a_slow_seat_is_named_even_in_a_room_of_two() -> None:
    room = Spread("five lookups", {"pas-r12p1": 0.04, "pas-r12p2": 3.1})
    assert room.outliers(k=4, floor=0.2) == [("pas-r12p2", 3.1)]
    with pytest.raises(CheckFailed, match=r"five lookups: 1 of 2 machine\(s\) took more than 4 times the "
                                          r"others' median: pas-r12p2 \(3.100 s\); p50 0.040 s, p95 3.100 s"):
        room.check(k=4, floor=0.2)


def test_noise_under_the_floor_and_an_even_room_pass() -> None:
    Spread("x", {"a": 0.002, "b": 0.03}).check(k=4, floor=0.2)  # 15 times, but 30 ms: noise
    Spread("x", {f"s{n}": 1.0 + n / 100 for n in range(40)}).check(k=2)
    with pytest.raises(UsageError, match="more than 1"):
        Spread("x", {"a": 1.0}).check(k=1)


def test_the_table_lists_the_slowest_first_with_the_figures() -> None:
    table = Spread("leases", {"s2": 1.0, "s10": 2.0, "s1": 1.0}).table().splitlines()
    assert table[0] == "leases: 3 machine(s), p50 1.000 s, p95 2.000 s, max 2.000 s"
    assert [line.split()[0] for line in table[2:]] == ["s10", "s1", "s2"]
