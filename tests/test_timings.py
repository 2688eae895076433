"""The order a run takes (`harness.pytest.timings.order`) and the table of where its time went."""

from __future__ import annotations

from harness.pytest import timings


def arrange(names: list[str], durations: dict[str, float]) -> list[str]:
    """Private-lab tests are the names in capitals."""
    return timings.order(names, name=str, private=str.isupper, durations=durations)


def test_shared_lab_tests_run_longest_first_and_unknown_ones_before_them() -> None:
    assert arrange(["a", "b", "c", "d"], {"a": 1, "b": 5, "c": 3}) == ["d", "b", "c", "a"]


def test_without_durations_the_collection_order_stays() -> None:
    assert arrange(["c", "a", "b"], {}) == ["c", "a", "b"]


def test_private_lab_tests_are_spread_evenly_and_none_comes_first() -> None:
    shared = [f"s{i}" for i in range(9)]
    arranged = arrange(["A", "B", *shared, "C"], {"A": 9, "B": 1, "C": 5})
    positions = [arranged.index(name) for name in ("A", "C", "B")]  # longest first
    assert positions == [2, 5, 9]  # after 2, then 4, then 7 shared tests: gaps of 2 or 3
    assert sorted(arranged) == sorted(["A", "B", "C", *shared])


def test_only_private_lab_tests_keep_all_of_them() -> None:
    assert arrange(["A", "B"], {"A": 1, "B": 2}) == ["B", "A"]


def test_the_table_puts_the_slowest_test_first_and_sums_each_phase() -> None:
    text = timings.table({"t::fast": {"setup": 0.1, "call": 0.2, "teardown": 0.1},
                          "t::slow": {"setup": 2.0, "call": 3.0, "teardown": 0.5}})
    assert text.index("t::slow") < text.index("t::fast")
    assert "| **all tests** | 2.10 | 3.20 | 0.60 | 5.90 |" in text
