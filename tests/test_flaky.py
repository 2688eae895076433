"""--flake-check and pytest's cache on the toy pipeline (tests/toy.py): real labs.

``test_sometimes`` fails on odd attempts (a counter on the host), ``test_always`` always:
the first is flaky, the second a real failure, and each rerun gets a lab of its own.
"""

from __future__ import annotations

import json

import pytest

from tests.toy import Toy

pytestmark = pytest.mark.integration

FLAKY = '''
import os

def test_sometimes(alpha, lab):
    with open(os.environ["TOY_COUNT"], "a") as out:
        out.write(lab.id + "\\n")
    attempts = open(os.environ["TOY_COUNT"]).read().split()
    assert len(attempts) % 2 == 0, f"attempt {len(attempts)} fails"

def test_always(alpha):
    assert alpha.succeed("cat /etc/alpha-built").strip() == "never", "alpha was built"

def test_fine(alpha):
    assert alpha.succeed("hostname").strip() == "alpha"
'''


def test_flake_check_tells_flaky_from_failing_and_lf_reruns_the_failures(toy: Toy) -> None:
    toy.pytester.makepyfile(test_flaky=FLAKY)
    count = toy.pytester.path / "attempts"
    results = toy.pytester.path / "allure"
    run = toy.run("test_flaky.py", "--flake-check=3", f"--alluredir={results}", "-rf",
                  env={"TOY_COUNT": str(count)}, cache=True)
    run.assert_outcomes(failed=2, passed=1)
    run.stdout.fnmatch_lines(["*harness flake check*", "flaky 1/3    test_flaky.py::test_sometimes",
                              "fails 3/3    test_flaky.py::test_always"])
    labs = count.read_text().split()
    assert len(labs) == 4 and len(set(labs)) == 4  # the shared lab, then three private ones
    verdicts = {r["name"]: r.get("statusDetails", {}).get("flaky", False)
                for r in map(json.loads, (p.read_text() for p in results.glob("*-result.json")))}
    assert verdicts == {"test_sometimes": True, "test_always": False, "test_fine": False}
    again = toy.run("test_flaky.py", "--lf", env={"TOY_COUNT": str(count)}, cache=True)
    again.assert_outcomes(failed=2, deselected=1)  # the two that failed (attempt 5 is odd), not test_fine
