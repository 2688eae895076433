"""docs/reference.md is generated from the code (`harness.reference`) and must match it."""

from __future__ import annotations

import importlib

import pytest

from harness import reference
from harness.core import settings
from harness.model import inventory_keys, inventory_shape


def test_the_reference_page_says_what_the_code_says() -> None:
    stale = [line for line in reference.render().splitlines()
             if line not in reference.PAGE.read_text().splitlines()]
    assert not stale, f"docs/reference.md is stale: run `python -m harness.reference`; new lines: {stale[:5]}"
    assert reference.PAGE.read_text() == reference.render()


def test_the_page_covers_every_option_and_fixture() -> None:
    page = reference.PAGE.read_text()
    for expected in ("`--spare-labs`", "`harness_pipeline`", "`fresh_lab`", "### harness init",
                     "`files`", "`room`", "[rooms.r11]"):
        assert expected in page


def test_the_schema_lists_every_key_the_inventory_takes() -> None:
    page = reference.PAGE.read_text()
    for table, known in inventory_keys.KEYS.items():
        assert f"### Keys of {inventory_keys.TITLES[table]}" in page
        for key, what in known.items():
            assert f"| `{key}` | {what.replace('|', chr(92) + '|')} |" in page, (table, key)
    family_keys = {key for keys in inventory_shape.FAMILY_KEYS.values() for key in keys}
    assert family_keys <= {key for known in inventory_keys.KEYS.values() for key in known}


def test_the_page_lists_every_run_setting_once_with_its_sources() -> None:
    page = reference.PAGE.read_text()
    assert "## Run settings" in page
    table = page.split("## Run settings", 1)[1].split("\n## ", 1)[0]
    for setting in settings.SETTINGS:
        first = f"| `{setting.flag or setting.env}` |"
        [row] = [line for line in table.splitlines() if first in line]
        assert setting.env is None or f"| `{setting.env}` |" in row, row
        assert (setting.flag is None or f"| `{setting.flag}` |" in row) and \
            (setting.ini is None or f"| `{setting.ini}` |" in row), row


def test_the_public_api_resolves_and_the_page_lists_it() -> None:
    import harness

    assert sorted(harness.__all__) == sorted(harness.PUBLIC)
    page = reference.PAGE.read_text()
    for name, (module, attribute) in harness.PUBLIC.items():
        assert getattr(harness, name) is getattr(importlib.import_module(module), attribute)
        assert f"| `{name}` | `{module}.{attribute}` |" in page
    with pytest.raises(AttributeError, match="no attribute 'Stages'"):
        harness.Stages  # noqa: B018 (a typo is an AttributeError, not None)


def test_every_public_method_of_a_machine_is_a_listed_verb_or_the_labs() -> None:
    from harness.machines.machine import Machine

    public = {name for cls in Machine.__mro__ if cls is not object  # its own and its verbs' (Commands)
              for name in vars(cls) if not name.startswith("_")}
    assert public == {*reference.MACHINE_VERBS, *reference.MACHINE_LIFECYCLE}, \
        "a new method of Machine: add it to harness.reference's MACHINE_VERBS or MACHINE_LIFECYCLE"
    page = reference.PAGE.read_text()
    for verb in reference.MACHINE_VERBS:
        assert f"| `{verb}" in page.split("## Machine\n", 1)[1], verb
    assert "| `succeed(command: str, timeout: float | None = 120.0" in page.replace("\\|", "|")
