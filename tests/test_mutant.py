"""harness.model.mutant, the pipeline's mutants and harness.engine.mutate's verdicts: pure logic, no root."""

from __future__ import annotations

import dataclasses
import importlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.core.errors import HarnessError, UsageError
from harness.engine import mutate
from harness.engine.mutate import Outcome, Status, Summary, judge
from harness.model.mutant import Mutant, declared, mutant
from harness.model.pipeline import Pipeline
from harness.model.stage import Stage


def base(root: Path) -> dict[str, str]:
    return {}


@mutant("gw forgets its route")
def drop_route(lab: object) -> None:
    pass


@mutant.at_build("web is built without its step")
def no_steps(stage: Stage) -> Stage:
    return dataclasses.replace(stage, steps=())


def pipeline(*gw_mutants: Mutant) -> Pipeline:
    return Pipeline([Stage("bootstrap", base=base), Stage("gw", machines=("gw",)),
                     Stage("web", machines=("web",)), Stage("pas", machines=("pas",))], {},
                    mutants={"gw": gw_mutants, "web": (no_steps,)})


def test_the_decorator_names_a_mutant_after_its_function() -> None:
    assert (drop_route.name, drop_route.regression, drop_route.at_build) == \
        ("drop-route", "gw forgets its route", False)
    assert no_steps.name == "no-steps" and no_steps.at_build
    line = Path(__file__).read_text().splitlines().index('@mutant("gw forgets its route")') + 1
    assert drop_route.origin == f"{__file__}:{line}"


def test_a_mutant_is_applied_or_built_not_both_nor_neither() -> None:
    with pytest.raises(HarnessError, match=r"exactly one of apply= .* or variant="):
        Mutant("x", "y")
    with pytest.raises(HarnessError, match="use lowercase letters, digits and dashes"):
        Mutant("a b", "y", apply=lambda lab: None)


def test_the_pipeline_lists_mutants_in_order_and_rejects_duplicates() -> None:
    assert list(pipeline(drop_route).mutants) == ["drop-route", "no-steps"]
    assert pipeline(drop_route).mutant("no-steps") == ("web", no_steps)
    with pytest.raises(UsageError, match="unknown mutant 'nope': `harness mutate --list`"):
        pipeline().mutant("nope")
    twice = dataclasses.replace(no_steps, origin="gw.py:3")
    with pytest.raises(UsageError, match=r"test_mutant.py:\d+: mutant no-steps is declared twice "
                                         r"\(stages gw and web\)"):
        pipeline(twice)
    with pytest.raises(UsageError, match="mutants of 'dns', which is no stage: the stages are bootstrap, gw"):
        Pipeline([Stage("bootstrap", base=base), Stage("gw", machines=("gw",))], {}, mutants={"dns": ()})


def test_a_build_time_mutant_gets_keys_of_its_own_from_its_stage_on() -> None:
    plain = pipeline(drop_route)
    assert plain.mutated("drop-route").keys() == plain.keys()  # applied to a booted lab
    variant = plain.mutated("no-steps")
    assert [variant.keys()[s] == plain.keys()[s] for s in plain.names] == [True, True, False, False]
    assert variant["web"].steps == () and variant["web"].definition["mutant"] == "no-steps"
    assert plain.keys() == pipeline(drop_route).keys()  # the pipeline itself is untouched


STAGE = "from harness.model.stage import Stage\n{imports}STAGE = Stage.here('alpha', machines=('alpha',))\n"
LOSE = "@mutant('alpha loses a file')\ndef lose(lab):\n    lab['alpha'].succeed('rm /x')\n"


@pytest.fixture
def toymut(tmp_path: Path) -> Iterator[Path]:
    """Where to write package ``toymut`` (a stage and its mutants), imported afresh each time."""
    yield tmp_path

    for name in [n for n in sys.modules if n == "toymut" or n.startswith("toymut.")]:
        del sys.modules[name]


def load_toymut(root: Path, stage: str, mutants: str) -> Pipeline:
    """Package ``toymut`` written under ``root`` (its stage, its mutants module) as a pipeline."""
    package = root / "toymut"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(stage)
    (package / "mutants.py").write_text(f"from harness.model.mutant import mutant\n\n{mutants}")
    for name in [n for n in sys.modules if n == "toymut" or n.startswith("toymut.")]:
        del sys.modules[name]
    sys.path.insert(0, str(root))
    try:
        alpha = importlib.import_module("toymut").STAGE
        return Pipeline([Stage("bootstrap", base=base), alpha], {},
                        mutants={"alpha": declared(importlib.import_module("toymut.mutants"))})
    finally:
        sys.path.remove(str(root))


def test_mutants_are_not_part_of_a_stage_key(toymut: Path) -> None:
    keys = []
    for version, text in enumerate(["", LOSE, LOSE.replace("/x", "/y")]):
        toy = load_toymut(toymut / f"v{version}", STAGE.format(imports=""), text)
        assert list(toy["alpha"].modules) == ["toymut"]  # its own source only, never its mutants'
        assert list(toy.mutants) == (["lose"] if text else [])
        keys.append(toy.keys())
    assert keys[0] == keys[1] == keys[2]  # declaring or editing a mutant rebuilds nothing


def test_a_mutant_a_stage_key_would_hash_is_refused(toymut: Path) -> None:
    with pytest.raises(UsageError, match=r"__init__.py:\d+: stage alpha: its module declares mutants "
                                         r"\(lose\), which its key would hash"):
        beside = STAGE.format(imports=f"from harness.model.mutant import mutant\n{LOSE}")
        load_toymut(toymut / "beside", beside, "")
    imported = STAGE.format(imports="from toymut import mutants\n")  # the stage uses its mutants' module
    with pytest.raises(UsageError, match=r"mutants.py:3: mutant lose is declared in toymut.mutants, which "
                                         "stage alpha's key covers: declare it in a module no stage imports"):
        load_toymut(toymut / "imported", imported, LOSE)


def test_the_reference_lab_hashes_no_mutant() -> None:
    from stages import PIPELINE

    hashed = {module for stage in PIPELINE.stages for module in stage.modules}
    assert {m.module for m in PIPELINE.mutants.values()} & hashed == set()
    assert not [m for m in hashed if m.startswith("stages.mutants")]


def record(test: str, outcome: str, when: str = "call", message: str = "") -> str:
    return json.dumps({"test": test, "when": when, "outcome": outcome, "message": message})


def test_a_failed_assertion_kills_and_anything_else_breaks() -> None:
    killed = judge("m", "gw", "r", 1, [record("a", "passed"), record("b", "failed", message="no")])
    assert (killed.status, killed.test, killed.message) == (Status.KILLED, "b", "no")
    broken = judge("m", "gw", "r", 1, [record("a", "broken", "setup", "HarnessError: mutant")])
    assert (broken.status, broken.message) == (Status.BROKEN, "setup: HarnessError: mutant")
    assert judge("m", "gw", "r", 0, [record("a", "passed")]).status is Status.SURVIVED
    nothing = judge("m", "gw", "r", 5, [], "no tests ran")
    assert (nothing.status, nothing.message) == (Status.BROKEN, "no scenario ran: no tests ran")
    usage = judge("m", "gw", "r", 4, [], "ERROR: --mutant=m: unknown mutant")
    assert usage.status is Status.BROKEN and "pytest exited 4" in usage.message


def test_equivalent_mutants_are_not_counted(tmp_path: Path) -> None:
    rows = [Outcome("a", "gw", "r", Status.KILLED, "t", "m", 1.0),
            Outcome("b", "gw", "r", Status.SURVIVED),
            Outcome("c", "gw", "r", Status.BROKEN, message="boot"),
            Outcome("d", "gw", "r", Status.EQUIVALENT, message="same")]
    summary = Summary(tuple(rows), 0.3)
    assert (summary.killed, summary.counted, round(summary.ratio, 3), summary.passed) == \
        (1, 3, 0.333, True)
    path = mutate.write_reports(summary, tmp_path, seconds=3.0)
    written = json.loads(path.read_text())
    assert [m["status"] for m in written["mutants"]] == ["killed", "SURVIVED", "broken", "equivalent"]
    assert mutate.previous_killers(tmp_path) == {"a": "t"}
    allure = {p.name: json.loads(p.read_text())["status"]
              for p in (tmp_path / "allure-results").glob("mutant-*-result.json")}
    assert allure == {"mutant-a-result.json": "passed", "mutant-b-result.json": "failed",
                      "mutant-c-result.json": "broken", "mutant-d-result.json": "skipped"}
    assert "SURVIVED" in mutate.table(rows).splitlines()[2]


def test_each_run_is_a_pytest_of_its_own_with_the_mutant() -> None:
    run = mutate.Run(("scenarios",), "stages", "/store", Path("reports"), ("-k", "dns"))
    argv = run.argv("dhcp-no-router", Path("log"), "scenarios/test_dhcp.py::test_x")
    assert argv[:4] == [sys.executable, "-m", "pytest", "scenarios"]
    assert {"--mutant=dhcp-no-router", "--mutant-log=log", "-x", "--store=/store",
            "--first=scenarios/test_dhcp.py::test_x", "--reports=reports/mutants/dhcp-no-router"} \
        <= set(argv)
    assert argv[-2:] == ["-k", "dns"]


def test_a_kill_counts_only_if_its_test_passes_without_the_mutant() -> None:
    rows = [Outcome("a", "gw", "r", Status.KILLED, "t1", "no answer"),
            Outcome("b", "gw", "r", Status.KILLED, "t2", "no lease"),
            Outcome("c", "gw", "r", Status.KILLED, "t3", "refused"),
            Outcome("d", "gw", "r", Status.SURVIVED)]
    baseline = [record("t1", "passed"), record("t2", "passed"), record("t2", "broken", "teardown")]
    checked = mutate.confirmed(rows, baseline)
    assert [(o.mutant, o.status) for o in checked] == [
        ("a", Status.KILLED), ("b", Status.BROKEN), ("c", Status.BROKEN), ("d", Status.SURVIVED)]
    assert checked[1].message == "no lease -- without any mutant, this test breaks too"
    assert checked[2].message.endswith("without any mutant, this test did not run")


def test_the_kills_are_checked_in_one_run_without_a_mutant() -> None:
    run = mutate.Run(("scenarios",), "stages", "/store", Path("reports"), ("-k", "dns"))
    argv = run.baseline_argv(["scenarios/test_a.py::t1", "scenarios/test_b.py::t2"], Path("log"))
    assert argv[:5] == [sys.executable, "-m", "pytest", "scenarios/test_a.py::t1", "scenarios/test_b.py::t2"]
    assert not any(a.startswith("--mutant=") for a in argv) and "-x" not in argv
    assert "--reports=reports/mutants/_without-mutant" in argv and argv[-2:] == ["-k", "dns"]
