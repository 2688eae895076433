"""apps: the lab's application, pad, and its database as one rootless pod of an unprivileged
user (stages/spec.py, "apps"), each promise seen from the machine that would see it: a seat
writes a note through pad by name and reads it back, in both families; on apps, every process
of the pod has the user's uid or one of her subordinate ids; the pod's own ports answer apps
alone; after a reboot of apps, nobody logged in, the pod serves again; a rebuilt local image
is taken up by ``podman auto-update``, and the notes stay."""

from __future__ import annotations

import secrets
import shlex

import pytest

from harness import CheckFailed, Family, Lab, Machine
from harness.machines.containers import as_user
from scenarios.conftest import address, by_family
from stages.inventory import INVENTORY
from stages.spec import (
    APPS_CONTAINER,
    APPS_CONTAINER_ADDRESS,
    APPS_CONTAINER_PORT,
    APPS_PRIVATE_PORTS,
    APPS_SITE,
    APPS_USER,
)

SITE = f"{APPS_SITE}.{INVENTORY.domain}"
POD_START = 60  # seconds for the pod to serve once apps's boot is over


def http(client: Machine, url: str, data: str | None = None, family: Family | None = None) -> tuple[str, str]:
    """(HTTP status, body) of a GET of ``url`` from ``client`` (a POST of ``data`` if given),
    over ``family`` if given; status 000 when no HTTP answer came at all."""
    post = f"-X POST --data-binary {shlex.quote(data)} " if data is not None else ""
    only = f"-{family.version} " if family else ""
    out = client.execute(f"curl -s {only}--max-time 10 {post}-w '\\n%{{http_code}}' {shlex.quote(url)}")[1]
    body, _, status = out.rpartition("\n")
    return status, body


def in_the_database(apps: Machine) -> list[str]:
    """The notes PostgreSQL holds, asked in its own container (as its superuser, by socket)."""
    out = apps.succeed(as_user(APPS_USER, "podman exec pad-db psql -h /tmp -d pad -tAc "
                                          "'SELECT text FROM notes'"))
    return out.split()


def _ids(apps: Machine) -> tuple[int, range]:
    """The pod's user's uid on apps, and her subordinate ids (what the kernel maps a
    container's users to)."""
    uid = int(apps.succeed(f"id -u {APPS_USER}"))
    line = apps.succeed(f"grep '^{APPS_USER}:' /etc/subuid").strip()
    _, first, count = line.split(":")
    return uid, range(int(first), int(first) + int(count))


def test_the_pods_processes_run_as_the_users_ids_never_root(apps: Machine) -> None:
    uid, subids = _ids(apps)
    table = [line.split(None, 1) for line in apps.succeed("ps -eo uid=,args=").splitlines()]
    processes = {"pad": [int(u) for u, args in table if "/opt/pad/pad.py" in args and "podman" not in args],
                 "postgresql": [int(u) for u, args in table if args.startswith(("/usr/lib/postgresql/",
                                                                                "postgres:"))]}
    for name, uids in processes.items():
        assert uids, f"apps runs no {name} process: {apps.succeed('ps -eo uid,args')[-1500:]}"
        foreign = sorted({u for u in uids if u != uid and u not in subids})
        assert not foreign, (f"{name}'s processes on apps run as uid {foreign}: neither {APPS_USER}'s "
                             f"({uid}) nor one of her subordinate ids ({subids.start}-{subids.stop - 1})")


@by_family
def test_a_seat_writes_a_note_through_pad_and_reads_it_back(pas: Machine, apps: Machine,
                                                            family: Family) -> None:
    text = f"note-{family}-{secrets.token_hex(4)}"
    status, body = http(pas, f"http://{SITE}/", data=text, family=family)
    assert status == "201", f"POST http://{SITE}/ from pas over {family} answered HTTP {status}, not 201 " \
                            f"(a note stored): {body[:300]!r}"
    status, body = http(pas, f"http://{SITE}/", family=family)
    lines = body.splitlines()
    assert status == "200" and lines[:1] == ["pad"], (
        f"GET http://{SITE}/ from pas over {family} answered HTTP {status}, not pad's notes: {body[:300]!r}")
    assert any(line.split("\t")[1:] == [text] for line in lines[1:]), (
        f"pad lists no {text!r} after storing it: {body[-300:]!r}")
    assert text in in_the_database(apps), f"pad answered 201 for {text!r}, but its PostgreSQL lacks it"


@by_family
@pytest.mark.parametrize("port", list(APPS_PRIVATE_PORTS), ids=list(APPS_PRIVATE_PORTS))
def test_a_seat_cannot_reach_the_pods_own_ports(pas: Machine, port: str, family: Family) -> None:
    target = address("apps", family)

    def connect(number: int) -> tuple[int, str]:
        # bash opens the TCP connection itself: exit 0 once the handshake completed
        return pas.execute(f"timeout 3 bash -c '</dev/tcp/{target}/{number}' 2>&1 && echo CONNECTED")

    _, control = connect(80)  # the probe can see a success: apps's web server answers the seat
    assert "CONNECTED" in control, f"pas could not connect to apps's web server ({target}:80) " \
                                   f"over {family}, so this probe proves nothing: {control.strip()}"
    _, seen = connect(APPS_PRIVATE_PORTS[port])
    assert "CONNECTED" not in seen, (f"pas connected to {port}'s port {APPS_PRIVATE_PORTS[port]} on apps "
                                     f"({target}) over {family}: the pod is published beyond apps itself")


@pytest.mark.fresh_lab  # apps reboots
def test_the_pod_serves_again_after_a_reboot_with_nobody_logged_in(apps: Machine, lab: Lab) -> None:
    apps = lab.reboot(apps.name)
    apps.execute("systemctl is-system-running --wait")  # the boot's jobs: her manager's start too
    try:
        page = apps.wait_until_succeeds(f"curl -sf --max-time 5 -H 'Host: {SITE}' http://127.0.0.1/",
                                        timeout=POD_START)
    except CheckFailed as exc:
        pods = apps.execute(as_user(APPS_USER, "podman pod ps --format '{{.Name}} {{.Status}}' 2>&1"))[1]
        raise CheckFailed(f"after a reboot of apps, nobody logged in, {SITE} is not served within "
                          f"{POD_START}s; {APPS_USER}'s pods: {pods.strip() or 'none'}; {exc}") from None
    assert page.splitlines()[:1] == ["pad"], f"after a reboot, apps serves {SITE} with {page[:300]!r}"
    hello = f"http://[{APPS_CONTAINER_ADDRESS}]:{APPS_CONTAINER_PORT}/"
    try:  # root's unit of the routed container: enabled, it runs at boot too
        apps.wait_until_succeeds(f"curl -6 -sf --max-time 5 -o /dev/null {hello}", timeout=POD_START)
    except CheckFailed as exc:
        state = apps.execute(f"systemctl is-enabled {APPS_CONTAINER}.service; "
                             f"systemctl is-active {APPS_CONTAINER}.service")[1]
        raise CheckFailed(f"after a reboot of apps, container {APPS_CONTAINER} does not answer at {hello} "
                          f"within {POD_START}s; its unit: {' '.join(state.split())}; {exc}") from None
    sessions = apps.succeed("loginctl list-sessions --no-legend").strip()
    assert sessions == "", f"someone is logged in on apps, so the reboot proves nothing: {sessions}"


def test_the_users_journal_has_pads_lines(pas: Machine, apps: Machine) -> None:
    marker = f"journal-{secrets.token_hex(4)}"
    status, _ = http(pas, f"http://{SITE}/?{marker}")
    assert status == "200", f"GET http://{SITE}/ from pas answered HTTP {status}"
    try:  # pad logs each request: podman hands its output to the journal, the user's
        journal = f"journalctl --user -q --no-pager | grep -q 'pad: .*{marker}'"
        apps.wait_until_succeeds(as_user(APPS_USER, journal), timeout=10)
    except CheckFailed:
        tail = apps.execute(as_user(APPS_USER, "journalctl --user -q --no-pager -n 10 2>&1"))[1]
        raise CheckFailed(f"{APPS_USER}'s journal (journalctl --user on apps) has no line of pad's for the "
                          f"request {marker}; its last lines: {tail[-800:]}") from None


def _pod(apps: Machine, command: str) -> str:
    return apps.succeed(as_user(APPS_USER, command)).strip()


@pytest.mark.fresh_lab  # the database's image is rebuilt and its container re-created
def test_a_rebuilt_image_is_taken_up_by_auto_update_and_the_notes_stay(apps: Machine) -> None:
    text = f"kept-{secrets.token_hex(4)}"
    status, body = http(apps, f"http://{SITE}/", data=text)
    assert status == "201", f"POST http://{SITE}/ on apps answered HTTP {status}: {body[:300]!r}"
    before = _pod(apps, "podman inspect --format '{{.Id}}' pad-db")
    # what an administrator does to ship a fix: a newer localhost/pg, built on the one it replaces
    _pod(apps, "podman run --name newer localhost/pg touch /newer && podman commit -q newer localhost/pg "
               "&& podman rm newer")
    newest = _pod(apps, "podman image inspect --format '{{.Id}}' localhost/pg")
    _pod(apps, "podman auto-update")
    after = _pod(apps, "podman inspect --format '{{.Id}} {{.Image}}' pad-db").split()
    assert after[0] != before and after[1:] == [newest], (
        f"podman auto-update did not re-create pad-db from the newer localhost/pg ({newest[:12]}): "
        f"container {before[:12]} -> {after[0][:12]}, image {after[1][:12] if after[1:] else '?'}")
    page = apps.wait_until_succeeds(f"curl -sf --max-time 5 -H 'Host: {SITE}' http://127.0.0.1/", timeout=30)
    assert any(line.split("\t")[1:] == [text] for line in page.splitlines()[1:]), (
        f"pad lost the note {text!r} when its database's container was re-created: {page[-300:]!r}")
