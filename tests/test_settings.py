"""The run's settings (`harness.core.settings`): one table, from which both front ends' options are
made, and which both honour alike, from the flag, the environment and the ini."""

from __future__ import annotations

import argparse
import re
import warnings
from pathlib import Path
from typing import Any

import pytest
from _pytest.config.argparsing import Parser

from harness import cli, plugin
from harness.cli import args as cli_args
from harness.cli import labs as cli_labs
from harness.core import settings
from harness.core.errors import UsageError
from harness.core.links import Family
from harness.core.settings import SETTINGS, Front, Setting
from harness.engine import host
from harness.engine.build import builder as build_module

ROOT = Path(__file__).resolve().parent.parent

# A good value of each setting, as text, and what it parses to; a bad one, where there is one.
GOOD: dict[str, tuple[str, Any]] = {
    "store": ("/srv/store", "/srv/store"), "store_size": ("64G", "64G"), "pipeline": ("mylab", "mylab"),
    "room_size": ("5", 5), "families": ("ipv4", (Family.IPV4,)), "boot_timeout": ("90", 90.0),
    "reports": ("out", "out"), "mutant": ("gw-forgets", "gw-forgets"), "spare_labs": ("0", 0),
    "warm_labs": ("1", 1),
    "cache": ("/srv/cache", Path("/srv/cache")),
}
BAD = {"store_size": "lots", "pipeline": "my-lab", "room_size": "0", "families": "ip4",
       "boot_timeout": "soon", "spare_labs": "-1", "warm_labs": "some"}
ROWS = [pytest.param(s, id=s.name) for s in SETTINGS]
FRONTED = [pytest.param(s, f, id=f"{s.name}-{f.value}") for s in SETTINGS for f in Front
           if f in s.fronts and not s.flag_only]


def test_every_setting_has_a_sample_and_every_field_a_row() -> None:
    assert set(GOOD) == set(settings.BY_NAME)


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No HARNESS_* setting inherited from whatever runs these tests; put back after."""
    for setting in SETTINGS:
        monkeypatch.delenv(setting.env or f"HARNESS_{setting.name.upper()}", raising=False)
    return monkeypatch


def pytest_parser() -> Parser:
    with warnings.catch_warnings():  # pytest's Parser warns that it is private
        warnings.simplefilter("ignore")
        parser = Parser()
    plugin.pytest_addoption(parser)
    return parser


def cli_argv(setting: Setting, text: str | None) -> list[str]:
    """``harness`` words giving ``setting`` as ``text`` (none: not given), to a verb that takes it."""
    verb = setting.verbs[0] if setting.verbs else "ls"
    given = [f"{setting.flag}={text}"] if text is not None else []
    return [*given, verb] if not setting.verbs else [verb, *given]


def resolve_as(front: Front, setting: Setting, text: str | None, ini: dict[str, str],
               tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> settings.RunSettings:
    """The settings a front end resolves, given ``setting`` as ``text`` on its command line,
    with ``ini`` in the project's ini file: through the front end's own parser."""
    if front is Front.CLI:
        (tmp_path / "pytest.ini").write_text("[pytest]\n" + "".join(f"{k} = {v}\n" for k, v in ini.items()))
        monkeypatch.chdir(tmp_path)
        args = cli.parser().parse_args(cli_argv(setting, text))
        monkeypatch.setattr(settings, "export", lambda run, environ=None: None)  # not into this process
        return cli_args.run_settings(args)
    options = pytest_parser().parse([f"{setting.flag}={text}"] if text is not None else [])
    return settings.resolve(vars(options), lambda key: ini.get(key, ""), Front.PYTEST)


@pytest.mark.parametrize("setting, front", FRONTED)
def test_each_front_end_honours_the_flag_the_environment_and_the_ini_alike(
        setting: Setting, front: Front, clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    text, value = GOOD[setting.name]
    assert setting.ini is not None
    for given, env, ini, where in [(text, None, {}, setting.flag), (None, text, {}, setting.env),
                                   (None, None, {setting.ini: text}, f"ini {setting.ini}")]:
        if env is not None:
            clean_env.setenv(setting.env, env)
        run = resolve_as(front, setting, given, ini, tmp_path, clean_env)
        assert (getattr(run, setting.name), run.where[setting.name]) == (value, where)
        clean_env.delenv(setting.env, raising=False)
    run = resolve_as(front, setting, None, {}, tmp_path, clean_env)
    assert getattr(run, setting.name) == setting.default and setting.name not in run.where


def test_the_mutant_is_taken_from_its_flag_alone(clean_env: pytest.MonkeyPatch) -> None:
    # an exported HARNESS_MUTANT or an ini key would turn every run into a mutant run unawares
    mutant = settings.BY_NAME["mutant"]
    assert (mutant.env, mutant.ini) == (None, None)
    clean_env.setenv("HARNESS_MUTANT", "gw-forgets")
    assert settings.resolve({}, {"harness_mutant": "gw-forgets"}.get, Front.PYTEST).mutant is None
    assert settings.resolve({"mutant": "gw-forgets"}, {}.get, Front.PYTEST).mutant == "gw-forgets"


@pytest.mark.parametrize("setting", [pytest.param(s, id=s.name) for s in SETTINGS if not s.flag_only])
def test_the_option_wins_over_the_environment_which_wins_over_the_ini(
        setting: Setting, clean_env: pytest.MonkeyPatch) -> None:
    text, value = GOOD[setting.name]
    other = {"room_size": "7", "spare_labs": "3", "warm_labs": "2", "boot_timeout": "5",
             "families": "ipv6"}.get(
        setting.name, {"store_size": "1T"}.get(setting.name, "other"))
    ini = {setting.ini: other} if setting.ini else {}
    front = Front.PYTEST if Front.PYTEST in setting.fronts or not setting.fronts else Front.CLI
    if setting.fronts:
        assert getattr(settings.resolve({setting.name: text}, lambda key: ini.get(key, ""), front,
                                        environ={setting.env: other}), setting.name) == value
    assert getattr(settings.resolve({}, lambda key: ini.get(key, ""), front, environ={setting.env: text}),
                   setting.name) == value


@pytest.mark.parametrize("name", sorted(BAD))
def test_a_bad_value_is_one_line_naming_where_it_came_from(name: str) -> None:
    setting, bad = settings.BY_NAME[name], BAD[name]
    front = Front.PYTEST if Front.PYTEST in setting.fronts else Front.CLI
    for options, environ, ini, where in [({name: bad}, {}, {}, setting.flag),
                                         ({}, {setting.env: bad}, {}, setting.env),
                                         ({}, {}, {setting.ini: bad}, f"ini {setting.ini}")]:
        with pytest.raises(UsageError) as raised:
            settings.resolve(options, {"": "", **ini}.get, front, environ=environ)
        assert str(raised.value).startswith(f"{where}={bad!r}: give ") and "\n" not in str(raised.value)


def test_both_front_ends_options_are_made_from_the_table() -> None:
    top = cli.parser()
    verbs = next(a for a in top._actions if isinstance(a, argparse._SubParsersAction)).choices
    made = {a.option_strings[0]: (a.help, a.default, a.type) for a in top._actions if a.option_strings}
    for name, sub in verbs.items():
        for action in sub._actions:
            if action.option_strings and action.option_strings[0] in (s.flag for s in SETTINGS):
                assert made.setdefault(action.option_strings[0], (action.help, action.default, action.type)) \
                    == (action.help, None, None)
                assert name in settings.BY_NAME[action.dest].verbs
    cli_rows = {s.flag: (s.full_help(), None, None) for s in SETTINGS if Front.CLI in s.fronts}
    assert {flag: made[flag] for flag in cli_rows} == cli_rows
    parser = pytest_parser()
    added = {o.names()[0]: o.attrs().get("help") for o in parser.getgroup("harness").options}
    pytest_rows = [s for s in SETTINGS if Front.PYTEST in s.fronts]
    assert {s.flag: added[s.flag] for s in pytest_rows} == {s.flag: s.full_help() for s in pytest_rows}
    assert {s.ini for s in pytest_rows if s.ini} <= set(parser._inidict)
    assert not [s for s in SETTINGS if not s.fronts and (s.flag or s.ini)]  # environment only: no flag


def test_only_the_inherited_settings_reach_the_environment_and_come_back() -> None:
    run = settings.resolve({"room_size": "4", "families": "ipv6,ipv4", "boot_timeout": "9"},
                           {}.get, Front.PYTEST, environ={})
    environ: dict[str, str] = {}
    settings.export(run, environ)
    assert environ == {"HARNESS_ROOM_SIZE": "4", "HARNESS_FAMILIES": "ipv4,ipv6"}
    assert (settings.inherited("room_size", environ), settings.inherited("families", environ)) == \
        (4, (Family.IPV4, Family.IPV6))


# -- the disagreements the table ended ----------------------------------------------------------


def test_the_command_s_store_size_honours_the_environment(clean_env: pytest.MonkeyPatch,
                                                          tmp_path: Path) -> None:
    clean_env.setenv("HARNESS_STORE_SIZE", "64G")
    clean_env.chdir(tmp_path)
    seen: dict[str, object] = {}
    clean_env.setattr(host, "setup", lambda **kw: seen.update(kw) or host.Outcome())
    assert cli.main(["setup-host", "--check"]) == 0
    assert seen["store_size"] == "64G"


def test_harness_up_boots_with_the_plugin_s_default_timeout(clean_env: pytest.MonkeyPatch,
                                                            tmp_path: Path) -> None:
    clean_env.chdir(tmp_path)
    given: list[float] = []

    class Stop(Exception):
        pass

    def builder(*args: object, boot_timeout: float, **kw: object) -> None:
        given.append(boot_timeout)
        raise Stop

    clean_env.setattr(cli_args, "store", lambda args: None)
    clean_env.setattr(cli_args, "pipeline", lambda args: None)
    clean_env.setattr(build_module, "Builder", builder)  # cmd_up imports it when called
    for argv in (["up"], ["up", "--boot-timeout=90"]):
        with pytest.raises(Stop):
            cli_labs.cmd_up(cli.parser().parse_args(argv))
    clean_env.setenv("HARNESS_BOOT_TIMEOUT", "120")
    with pytest.raises(Stop):
        cli_labs.cmd_up(cli.parser().parse_args(["up"]))
    assert given == [settings.DEFAULT_BOOT_TIMEOUT, 90.0, 120.0]
    assert pytest_parser().parse([]).boot_timeout is None  # the plugin's default is the table's too


def test_pytest_takes_the_pipeline_from_the_environment(pytester: pytest.Pytester,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    pytester.makepyfile(test_plain="def test_plain():\n    pass\n")
    monkeypatch.setenv("HARNESS_PIPELINE", "no_such_pipeline")
    monkeypatch.setenv("PYTHONPATH", str(ROOT))  # this checkout's harness, wherever it is installed from
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--collect-only", "-q")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: HARNESS_PIPELINE=no_such_pipeline: no such module; *"])


def test_no_module_but_the_settings_one_reads_or_writes_a_setting_s_environment() -> None:
    names = "|".join(re.escape(s.env) for s in SETTINGS if s.env)
    found = [f"{path.relative_to(ROOT)}:{n}: {line.strip()}"
             for path in sorted([*ROOT.glob("harness/**/*.py"), *ROOT.glob("stages/**/*.py")])
             if path.name != "settings.py"
             for n, line in enumerate(path.read_text().splitlines(), 1)
             if re.search(r"os\.(environ|getenv|putenv)", line)
             and re.search(rf"HARNESS_|{names}|_ENV\b", line)]
    assert not found, found
