"""Which pipeline a project uses: named in its pytest ini, read alike by pytest and by the
``harness`` command (`harness.model.project`, `harness.cli.args`); none named is a one-line error."""

from __future__ import annotations

import argparse
import textwrap
from pathlib import Path

import pytest

from harness import cli
from harness.cli import args as cli_args
from harness.core.errors import UsageError
from harness.core.settings import BY_NAME
from harness.model import project

PIPELINE_ENV = BY_NAME["pipeline"].env

PIPELINE = '''
from harness.model.stage import Stage
from harness.model.pipeline import Pipeline

def base(root):
    return {}

PIPELINE = Pipeline([Stage("bootstrap", base=base), Stage("alpha", machines=("alpha",))], {})
'''


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def test_the_nearest_ini_with_a_pytest_section_is_the_project(tmp_path: Path) -> None:
    write(tmp_path / "pyproject.toml", '[tool.pytest.ini_options]\nharness_pipeline = "outer"\n')
    write(tmp_path / "sub/pyproject.toml", '[project]\nname = "x"\n')  # no pytest section: skipped
    write(tmp_path / "sub/setup.cfg", "[metadata]\nname = x\n")  # nor here
    found = project.find(tmp_path / "sub")
    assert (found.root, found.option("harness_pipeline")) == (tmp_path, "outer")
    write(tmp_path / "sub/tox.ini", "[pytest]\nharness_pipeline = from_tox\n")
    assert project.find(tmp_path / "sub").option("harness_pipeline") == "from_tox"
    write(tmp_path / "sub/pytest.ini", "[pytest]\nharness_room_size = 3\n")  # first in pytest's order
    found = project.find(tmp_path / "sub")
    assert (found.ini, found.option("harness_pipeline"), found.option("harness_room_size")) == \
        (tmp_path / "sub/pytest.ini", "", "3")


def test_pytest_9s_native_toml_table_is_read_too(tmp_path: Path) -> None:
    write(tmp_path / "pyproject.toml", '[tool.pytest]\nharness_pipeline = "native"\nmarkers = ["a", "b"]\n')
    assert project.find(tmp_path).options == {"harness_pipeline": "native", "markers": "a b"}


def test_no_ini_anywhere_is_a_project_without_options(tmp_path: Path) -> None:
    found = project.find(tmp_path)
    assert found.ini is None and found.options == {} and found.root == tmp_path.resolve()


def test_a_broken_ini_says_which_file(tmp_path: Path) -> None:
    write(tmp_path / "pyproject.toml", "[tool.pytest.ini_options\n")
    with pytest.raises(UsageError, match=f"{tmp_path}/pyproject.toml: cannot read it as pytest's ini"):
        project.find(tmp_path)


def args(**given: str | None) -> argparse.Namespace:
    return argparse.Namespace(**{"pipeline": None, "room_size": None, **given})


def test_the_command_uses_the_pipeline_the_ini_names(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(PIPELINE_ENV, raising=False)
    write(tmp_path / "pyproject.toml", '[tool.pytest.ini_options]\nharness_pipeline = "mylab"\n')
    write(tmp_path / "mylab.py", PIPELINE)
    monkeypatch.chdir(write(tmp_path / "docs/x", "").parent)  # from a subdirectory, as pytest would
    monkeypatch.setattr("sys.path", list(__import__("sys").path))
    assert cli_args.pipeline(args()).names == ("bootstrap", "alpha")
    monkeypatch.setenv(PIPELINE_ENV, "elsewhere")
    assert cli_args.pipeline_name(args()) == "elsewhere"
    assert cli_args.pipeline_name(args(pipeline="given")) == "given"


def test_without_a_pipeline_the_command_says_where_to_name_one(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv(PIPELINE_ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    assert cli.main(["mutate", "--list"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "no pipeline: name your project's in a pytest ini in" in err
    assert 'harness_pipeline = "MODULE"' in err and "--pipeline MODULE" in err


def test_without_a_pipeline_pytest_stops_before_a_test_that_needs_a_lab(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_lab="def test_needs_a_lab(lab):\n    pass\n",
                        test_plain="def test_plain():\n    pass\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "test_plain.py")
    result.assert_outcomes(passed=1)  # a project's tests that use no lab need no pipeline
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "no pipeline: the selected tests use labs" in result.stderr.str()
    pytester.makeini("[pytest]\nharness_pipeline = nosuchmodule\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "test_plain.py")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    said = result.stderr.str()
    assert "harness_pipeline = 'nosuchmodule'" in said and "no such module" in said
