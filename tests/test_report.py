"""The HTML report: built by `harness report` (Allure Report 3) and read back in headless Chromium.

A small run (passes, a failure, a skip) is reported; Chromium renders the single-file
report from disk, offline, and the counts on the page must be the run's own, as its
JUnit XML counts them.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from harness import cli
from harness.core import wait

RUN = '''
import pytest

def test_one(): pass
def test_two(): pass
def test_three(): pass
def test_broken(): assert 2 + 2 == 5
@pytest.mark.skip(reason="not today")
def test_skipped(): pass
'''
CHROMIUM = ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--virtual-time-budget=15000"]


def page_text(html: str) -> str:
    """The visible text of a DOM dump: scripts and styles removed, whitespace squeezed."""
    html = re.sub(r"<(script|style)\b.*?</\1>", " ", html, flags=re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).strip()


def test_report_shows_the_run_counts(pytester: pytest.Pytester, tmp_path: Path) -> None:
    if shutil.which(CHROMIUM[0]) is None:  # a failure that says what to do, not a FileNotFoundError
        pytest.fail("chromium is missing: run `harness setup-host --report` (make test does)", pytrace=False)
    pytester.makepyfile(test_small=RUN)
    results, junit = tmp_path / "allure-results", tmp_path / "junit.xml"
    pytester.runpytest_subprocess(f"--alluredir={results}", f"--junitxml={junit}", "-p", "no:harness")
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite is not None
    tests, failed, skipped = (int(suite.get(k, "0")) for k in ("tests", "failures", "skipped"))
    passed = tests - failed - skipped
    assert cli.main(["report", "--results", str(results), "-o", str(tmp_path / "html")]) == 0
    index = tmp_path / "html" / "index.html"
    profile = tmp_path / "profile"
    text = ""

    def rendered(last_try: bool) -> bool:
        # Allure renders the counts from script; on a loaded host Chromium's virtual-time budget
        # can end before they are drawn, so the page is read again until its counts are there.
        nonlocal text
        dom = subprocess.run([*CHROMIUM, f"--user-data-dir={profile}", "--dump-dom", index.as_uri()],
                             capture_output=True, text=True, timeout=120).stdout
        text = page_text(dom)
        assert "Total " in text or not last_try, f"no counts on the page: {text[:800]}"
        return "Total " in text

    wait.retry(rendered, 180, "the report's counts in Chromium", first_interval=0.5)
    assert f"Total {tests} Failed {failed} Passed {passed} Skipped {skipped}" in text, text[:800]
    shot = tmp_path / "report.png"

    def drawn(last_try: bool) -> bool:
        # the same budget as above: under load a shot can be taken before the page is drawn
        shot.unlink(missing_ok=True)
        subprocess.run([*CHROMIUM, f"--user-data-dir={profile}", "--window-size=1280,900",
                        f"--screenshot={shot}", index.as_uri()], capture_output=True, timeout=120)
        size = shot.stat().st_size if shot.exists() else 0
        assert size > 10_000 or not last_try, f"a blank page: the screenshot is {size} bytes"
        return size > 10_000  # a rendered page, not a blank one

    wait.retry(drawn, 180, "a screenshot of the drawn report", first_interval=0.5)
