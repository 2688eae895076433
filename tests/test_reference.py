"""docs/reference.md is generated from the code (`harness.reference`) and must match it."""

from __future__ import annotations

from harness import reference


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
