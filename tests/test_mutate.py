"""`pytest --mutant` and `harness mutate` on the toy pipeline (tests/toy.py), real labs.

alpha has five mutants, in a module of their own that the pipeline attaches to it: one a
scenario kills on a booted lab, one built into alpha's snapshot as a variant (and killed),
one no scenario notices, one that cannot be applied (broken, never a kill) and one marked
equivalent.
"""

from __future__ import annotations

import json

import pytest

from harness import cli
from tests.toy import PIPELINE, Toy

pytestmark = pytest.mark.integration

MUTANTS = '''
import dataclasses
from harness.model.mutant import mutant, run, edit


@mutant("alpha forgets that it was built")
def alpha_forgets(lab):
    run(lab["alpha"], "rm /etc/alpha-built")


@mutant.at_build("alpha's build step is lost")
def alpha_unbuilt(stage):
    return dataclasses.replace(stage, steps=())


@mutant("alpha gets a message of the day nobody reads")
def alpha_motd(lab):
    run(lab["alpha"], "echo hello > /etc/motd")


@mutant("alpha's configuration moved: this mutant no longer applies")
def alpha_stale(lab):
    edit(lab["alpha"], "/etc/alpha-built", "no such text", "x")


@mutant("alpha's build log is rotated", equivalent="no scenario can see the host's build log")
def alpha_rotated(lab):
    pass


'''


@pytest.fixture
def mutated(toy: Toy) -> Toy:
    imports = "import toy_alpha, toy_alpha_mutants, toy_beta\nfrom harness.model.mutant import declared"
    attached = PIPELINE.replace("import toy_alpha, toy_beta", imports).replace(
        "\n)\n", '\n    mutants={"alpha": declared(toy_alpha_mutants)},\n)\n')
    toy.pytester.makepyfile(toy_alpha_mutants=MUTANTS, toystages=attached)
    return toy


def test_pytest_with_a_mutant_fails_the_scenario_that_watches_it(mutated: Toy) -> None:
    result = mutated.run("--mutant=alpha-forgets", "-v")
    result.assert_outcomes(failed=1, passed=4)
    result.stdout.fnmatch_lines(["*CheckFailed: alpha: command `cat /etc/alpha-built` failed*"])
    # applied to the shared lab and to the fresh_lab test's private one
    applied = "[harness] mutant alpha-forgets: apply (alpha forgets that it was built) done"
    assert result.stdout.str().count(applied) == 2
    assert mutated.run().ret == 0  # an ordinary run is untouched: no mutant, nothing rebuilt
    unknown = mutated.run("--mutant=nope")
    assert unknown.ret == pytest.ExitCode.USAGE_ERROR
    unknown.stderr.fnmatch_lines(["*--mutant=nope: unknown mutant 'nope': `harness mutate --list`*"])


def test_harness_mutate_tells_killed_survived_broken_and_equivalent(
        mutated: Toy, capsys: pytest.CaptureFixture[str]) -> None:
    reports = mutated.pytester.path / "reports"
    argv = ["--store", str(mutated.store.root), "--pipeline", "toystages", "mutate", "test_toy.py",
            "--reports", str(reports), "-j", "2"]
    assert cli.main([*argv, "--list"]) == 0
    listed = capsys.readouterr().out
    assert "alpha-unbuilt  alpha   build" in listed and "5 mutant(s)" in listed
    assert cli.main(argv) == 1  # 2 killed of 4 counted: under 95%
    out, err = capsys.readouterr()
    table = json.loads((reports / "mutants.json").read_text())
    verdicts = {m["mutant"]: (m["status"], m["test"]) for m in table["mutants"]}
    assert verdicts == {"alpha-forgets": ("killed", "test_toy.py::test_alpha"),
                        "alpha-unbuilt": ("killed", "test_toy.py::test_alpha"),
                        "alpha-motd": ("SURVIVED", ""),
                        "alpha-stale": ("broken", "test_toy.py::test_alpha"),
                        "alpha-rotated": ("equivalent", "")}
    assert (table["killed"], table["counted"]) == (2, 4)
    assert "2 of 4 counted mutant(s) killed (50.0%, minimum 95%), 1 equivalent" in out
    assert "under --min-kill 95%" in err
    # the variant was built and cached under a key of its own; the plain alpha is still there
    assert mutated.published().count("alpha") == 2 and mutated.published().count("beta") == 2
    # the last killer runs first next time; a lower bar passes
    assert cli.main([*argv, "-k", "alpha-f", "-k", "unbuilt", "--min-kill", "0.5"]) == 0
    assert "2 of 2 counted" in capsys.readouterr().out
