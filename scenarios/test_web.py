"""Web: every virtual host answers its own content by name, short and qualified; concours
round-trips a record through PostgreSQL on db."""

from __future__ import annotations

import json
import secrets
import shlex

import pytest

from harness import Family, Machine
from scenarios.conftest import address, by_family
from stages.inventory import INVENTORY
from stages.web import SITES


def http(client: Machine, url: str, data: str | None = None, family: Family | None = None) -> tuple[str, str]:
    """(HTTP status, body) of a GET of ``url`` from ``client``, a POST of ``data`` if given,
    over ``family`` if given; status 000 when no HTTP answer came at all."""
    post = f"-X POST --data {shlex.quote(data)} " if data is not None else ""
    only = f"-{family.version} " if family else ""
    out = client.execute(f"curl -s {only}--max-time 10 {post}-w '\\n%{{http_code}}' {shlex.quote(url)}")[1]
    body, _, status = out.rpartition("\n")
    return status, body


@pytest.mark.parametrize("qualified", [False, True], ids=["short", "qualified"])
@pytest.mark.parametrize("site", SITES)
@by_family
def test_virtual_host_answers_its_own_content(pas: Machine, site: str, qualified: bool,
                                              family: Family) -> None:
    # As a contestant types it: the short name (through the DHCP search domain), or in full.
    name = f"{site}.{INVENTORY.domain}" if qualified else site
    status, page = http(pas, f"http://{name}/", family=family)
    assert status == "200" and f"This is {site}." in page, (
        f"http://{name}/ from pas over {family} answered HTTP {status}, not {site}'s page: {page[:300]!r}")
    others = [other for other in SITES if other != site and f"This is {other}." in page]
    assert not others, f"http://{name}/ from pas serves the page of {others}: {page[:300]!r}"


def test_concours_round_trips_a_record_through_postgresql(pas: Machine, web: Machine) -> None:
    text = f"entry-{secrets.token_hex(4)}"
    status, body = http(pas, "http://concours/entries", data=text)
    assert status == "201", f"POST http://concours/entries from pas answered HTTP {status}: {body[:300]!r}"
    created = json.loads(body)
    assert created["text"] == text, f"concours stored {created!r} for {text!r}"
    status, body = http(pas, "http://concours/entries")
    assert status == "200", f"GET http://concours/entries from pas answered HTTP {status}: {body[:300]!r}"
    listed = json.loads(body)
    assert {"id": created["id"], "text": text} in listed, f"concours lists no {text!r}: {body[:300]!r}"
    # The record is in the database the site is meant to use: concours on db.
    stored = web.succeed("runuser -u postgres -- psql -tA concours -c 'SELECT text FROM entries'")
    assert text in stored.split(), f"concours accepted {text!r}, but its database concours on db lacks it"


@by_family
def test_db_lets_concours_in_from_the_lan(web: Machine, family: Family) -> None:
    # From web's own LAN address: what concours, or any LAN client with the password, gets.
    db = address("web", family)
    result = web.run(f"PGPASSWORD=concours psql -h {db} -U concours -d concours -tAc 'SELECT 42' 2>&1")
    assert result.status == 0 and result.stdout.strip() == "42", (
        f"concours asked PostgreSQL on db ({db}) over {family}: expected to be let in, got "
        f"exit {result.status}: {result.stdout.strip()[:300]}")
