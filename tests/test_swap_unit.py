"""What `harness apply` refuses to swap into a running lab (harness/engine/swap.py): pure
logic, no root needed; each refusal one line saying what to do."""

from __future__ import annotations

from harness.engine.swap import owner_refusal, refusal, swapped, taken
from harness.model.pipeline import Pipeline
from harness.model.stage import Stage


def mark(build: object) -> None:
    """a Python step"""


PIPELINE = Pipeline([Stage("base", base=lambda root: {}), Stage("alpha", machines=("alpha",), steps=(mark,)),
                     Stage("beta", machines=("beta",), steps=(mark,))])  # type: ignore[arg-type]
AGAIN = "`harness down l1` then `harness up` rebuilds it and boots a new lab"


def test_a_changed_last_stage_can_be_swapped_in() -> None:
    held = ["base", "alpha", "beta"]
    assert refusal(PIPELINE, PIPELINE["beta"], ["module toy_beta changed"], held, "l1") is None


def test_an_unchanged_stage_has_nothing_to_apply() -> None:
    assert refusal(PIPELINE, PIPELINE["beta"], [], ["base", "alpha", "beta"], "l1") == (
        "nothing to apply: stage beta has not changed since lab l1's snapshot of it (a Python stage is "
        "built again only when its inputs changed)")


def test_a_network_change_needs_a_new_lab() -> None:
    assert refusal(PIPELINE, PIPELINE["beta"], ["module toy_beta changed", "machine beta changed"],
                   ["base", "alpha", "beta"], "l1") == (
        "stage beta: machine beta changed (interfaces, links, sysctls), which a lab makes before its "
        f"machines boot: {AGAIN}")


def test_stages_built_on_the_stage_or_the_base_image_need_a_new_lab() -> None:
    assert refusal(PIPELINE, PIPELINE["alpha"], ["module toy_alpha changed"], ["base", "alpha", "beta"],
                   "l1") == f"lab l1 holds stage(s) beta built on alpha, which apply does not build again: " \
                            f"{AGAIN}"
    assert refusal(PIPELINE, PIPELINE["alpha"], ["module toy_alpha changed"], ["base", "alpha"], "l1") is None
    assert refusal(PIPELINE, PIPELINE["base"], ["definition changed"], ["base"], "l1") == (
        f"stage base is the base image every machine is cloned from: {AGAIN}")


def test_a_lab_a_pytest_run_owns_is_left_alone() -> None:
    assert owner_refusal({"id": "l1", "pid": None}) is None
    assert owner_refusal({"id": "l1", "pid": 4242}) == (
        "lab l1 belongs to the pytest run of pid 4242: apply changes only labs started with `harness up` "
        "(start one with it)")
    assert owner_refusal({"id": "l1", "pid": None, "warm": {"until": 1}}) == (
        "lab l1 is a warm lab a pytest run left for the next to adopt: apply changes labs started with "
        "`harness up`")


def test_a_swapped_stage_s_inputs_come_from_the_lab_s_record() -> None:
    record = {"id": "l1", "swapped": {"beta": {"inputs": {"module toy_beta": "1"}, "machines": ["beta"]}}}
    assert taken(swapped(record), "beta") == {"module toy_beta": "1"}
    assert taken(swapped(record), "alpha") is None
    assert swapped({"id": "l1"}) == {}
