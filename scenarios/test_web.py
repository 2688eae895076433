"""Web: every virtual host answers its own content by name; concours round-trips through PostgreSQL."""

from __future__ import annotations

import json
import secrets

import pytest

from harness.machine import Machine
from stages.web import SITES


@pytest.mark.parametrize("site", SITES)
def test_virtual_host_answers_its_own_content(pas: Machine, site: str) -> None:
    page = pas.succeed(f"curl -sf http://{site}/")  # a short name, as a contestant types it
    assert f"This is {site}." in page
    assert all(f"This is {other}." not in page for other in SITES if other != site)


def test_concours_round_trips_a_record_through_postgresql(pas: Machine, web: Machine) -> None:
    text = f"entry-{secrets.token_hex(4)}"
    created = json.loads(pas.succeed(f"curl -sf -X POST --data '{text}' http://concours/entries"))
    assert created["text"] == text
    entries = json.loads(pas.succeed("curl -sf http://concours/entries"))
    assert {"id": created["id"], "text": text} in entries
    stored = web.succeed("runuser -u postgres -- psql -tA concours -c 'SELECT text FROM entries'")
    assert text in stored.split()
