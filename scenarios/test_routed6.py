"""apps's routed container (stages/spec.py, "hello"), the way seed 002 runs containers: an IPv6
address of its own from the /80 gw routes to apps, named in DNS while it runs, reachable over
IPv6 alone, reaching the IPv4 internet through gw's DNS64 and NAT64, and open to the internet
on its port alone (stages/policy.py, `INGRESS`). Each promise is seen from the machine that
would see it: a seat asks gw's DNS and connects; apps says who runs it and what addresses its
network namespace holds; the container itself fetches from the internet; the internet asks
gw's DNS, connects to the container's port, and hears nothing from any other (a drop proven
on gw, as scenarios/test_policy.py proves its refused rows)."""

from __future__ import annotations

import ipaddress
import shlex

import pytest

from harness import Family, Lab, Machine, retry
from harness.machines.containers import as_user
from harness.probes import Answer, dig, expect, http_status, in_url
from scenarios.conftest import address, gw_address
from scenarios.firewall import refusal
from stages.inventory import INVENTORY
from stages.policy import Opening, Row, Service, ingress
from stages.spec import (
    APPS_CONTAINER,
    APPS_CONTAINER_ADDRESS,
    APPS_CONTAINER_PORT,
    APPS_ROUTED6,
    APPS_USER,
    APPS_ZONE,
    UPLINK_IPV4_ONLY,
    UPLINK_ZONE,
)

NAME = f"{APPS_CONTAINER}.{APPS_ZONE}.{INVENTORY.domain}"
URL = f"http://{NAME}:{APPS_CONTAINER_PORT}/"
UNIT = f"{APPS_CONTAINER}.service"  # root's unit on apps that runs it as APPS_USER
DNS6 = gw_address(Family.IPV6)


def registered(client: Machine) -> Answer:
    """What gw's DNS tells ``client`` about the container's name, AAAA."""
    return dig(client, NAME, "AAAA", server=DNS6)


SERVER = f"http.server {APPS_CONTAINER_PORT}"  # what the container runs (and nothing else on apps)


def _pid(apps: Machine) -> int:
    """The container's first process (its init), as apps's root sees it, whoever runs it."""
    return int(apps.succeed(f"pgrep -o -f {shlex.quote(SERVER)}"))


def test_the_container_answers_by_name_over_ipv6_from_a_seat(pas: Machine) -> None:
    expect(registered(pas), Answer("NOERROR", [APPS_CONTAINER_ADDRESS]),
           f"pas asked gw ({DNS6}) for {NAME} AAAA")
    status = http_status(pas, URL, Family.IPV6)
    assert status == "200", f"GET {URL} from pas over IPv6 answered HTTP {status}, not 200 (000: no answer)"


def test_the_container_has_no_ipv4_address_and_refuses_ipv4_ingress(pas: Machine, apps: Machine) -> None:
    expect(dig(pas, NAME, "A", server=DNS6), Answer("NOERROR", []), f"pas asked gw for {NAME} A")
    held = apps.succeed(f"nsenter -t {_pid(apps)} -n ip -4 -o addr show scope global").strip()
    assert held == "", f"{APPS_CONTAINER}'s network namespace on apps holds IPv4 addresses: {held}"
    apps4 = address("apps", Family.IPV4)
    status = http_status(pas, f"http://{apps4}:{APPS_CONTAINER_PORT}/", Family.IPV4)
    assert status == "000", (f"pas reached port {APPS_CONTAINER_PORT} on apps's IPv4 address ({apps4}): HTTP "
                             f"{status}; {APPS_CONTAINER} must be reachable over IPv6 alone")


def test_the_containers_processes_run_as_the_users_ids_never_root(apps: Machine) -> None:
    uid = int(apps.succeed(f"id -u {APPS_USER}"))
    first, count = (int(n) for n in apps.succeed(f"grep '^{APPS_USER}:' /etc/subuid").split(":")[1:])
    table = [line for line in apps.succeed("ps -eo uid=,args=").splitlines() if SERVER in line]
    uids = {int(line.split()[0]) for line in table}
    foreign = sorted(u for u in uids if u != uid and not first <= u < first + count)
    assert uids and not foreign, (f"{APPS_CONTAINER}'s processes on apps run as uid {sorted(uids)}: neither "
                                  f"{APPS_USER}'s ({uid}) nor her subordinate ids: {table}")


def test_its_record_goes_when_it_stops_and_comes_back_when_it_starts(pas: Machine, apps: Machine) -> None:
    try:
        apps.succeed(f"systemctl stop {UNIT}", timeout=60)
        expect(registered(pas), Answer("NXDOMAIN", []),
               f"{UNIT} stopped on apps; pas asked gw for {NAME} AAAA")
    finally:
        apps.succeed(f"systemctl start {UNIT}", timeout=120)
    expect(registered(pas), Answer("NOERROR", [APPS_CONTAINER_ADDRESS]),
           f"{UNIT} started again on apps; pas asked gw for {NAME} AAAA")
    # The unit is started once its container's process runs (podman's --sdnotify=conmon) and
    # the name is registered; the server in it may bind its port a moment later (a soak saw
    # pas's first SYN reset 175 ms after the start), as any service may after a restart. A
    # client that tries again gets its answer: that is what is checked.
    def serves(last_try: bool) -> bool:
        status = http_status(pas, URL, Family.IPV6, timeout=2)
        assert status == "200" or not last_try, (
            f"GET {URL} from pas after a restart of {UNIT} answered HTTP {status}")
        return status == "200"
    retry(serves, 30, f"{URL} to answer pas after a restart of {UNIT}")


def test_the_container_reaches_the_ipv4_internet_through_nat64(apps: Machine) -> None:
    url = f"http://{UPLINK_IPV4_ONLY}.{UPLINK_ZONE}/generate_204"
    fetch = (f"podman exec {APPS_CONTAINER} python3 -c " + shlex.quote(
        f"import urllib.request; print(urllib.request.urlopen({url!r}, timeout=10).status)"))
    status, out = apps.execute(as_user(APPS_USER, fetch + " 2>&1"))
    assert status == 0 and out.strip().endswith("204"), (
        f"{APPS_CONTAINER} (IPv6 alone) could not fetch {url} (IPv4 alone) through DNS64 and NAT64: "
        f"{out[-400:]}")


def test_buildah_builds_as_the_user_an_image_that_podman_runs(apps: Machine) -> None:
    tag = "localhost/scratch-buildah"
    context = f"/home/{APPS_USER}/scratch-buildah"
    containerfile = f"FROM localhost/{APPS_CONTAINER}\nRUN echo built-by-buildah > /built\n"
    build = (f"rm -rf {context} && mkdir {context} && printf %s {shlex.quote(containerfile)} > "
             f"{context}/Containerfile && buildah bud --isolation chroot --layers=false -q -t {tag} "
             f"{context}")
    try:
        status, out = apps.execute(as_user(APPS_USER, build + " 2>&1"), timeout=300)
        assert status == 0, f"buildah bud --isolation chroot as {APPS_USER} on apps failed: {out[-600:]}"
        seen = apps.execute(as_user(APPS_USER, f"podman run --rm --network=none {tag} cat /built 2>&1"))[1]
        assert seen.strip() == "built-by-buildah", f"podman ran {tag} as {APPS_USER}: {seen[-400:]!r}"
    finally:
        apps.execute(as_user(APPS_USER, f"podman rmi -f {tag}; rm -rf {context}"))


# -- ingress from the internet (stages/policy.py, INGRESS) ----------------------------------------------
# Each opening is tried by the machine that would use it: the one on its segment that is not gw
# (the uplink's is `internet`), in a lab that holds apps, which runs the container. A lab
# without the opening's family has no opening, and no test.
HOST = "apps"  # the machine that runs the container (spec.py)


def outsider(opening: Opening) -> str:
    """The machine on ``opening``'s segment that tries it (not the router)."""
    return next(h.name for h in INVENTORY.on(opening.segment) if not h.router)


OPENINGS = [pytest.param(o, id=f"{o.segment}-{o.name}-{o.proto}-{o.port}",
                         marks=pytest.mark.machines(outsider(o), HOST)) for o in ingress(INVENTORY)]


def elsewhere(opening: Opening) -> list[tuple[str, int]]:
    """What the opening does not open, (address, port): another port of the container's
    address (SSH's, and the next one), and its port at the next address of its /80."""
    beside = str(ipaddress.ip_address(opening.address) + 1)
    assert ipaddress.ip_address(beside) in ipaddress.ip_network(APPS_ROUTED6)
    return [(opening.address, 22), (opening.address, opening.port + 1), (beside, opening.port)]


CLOSED = [pytest.param(o, target, id=f"{o.segment}-{target[0].replace(':', '-')}-{o.proto}-{target[1]}",
                       marks=pytest.mark.machines(outsider(o), HOST))
          for o in ingress(INVENTORY) for target in elsewhere(o)]


@pytest.mark.parametrize("opening", OPENINGS)
def test_the_internet_gets_the_container_at_its_address(lab: Lab, opening: Opening) -> None:
    client = lab[outsider(opening)]
    url = f"http://{in_url(opening.address)}:{opening.port}/"
    status = http_status(client, url, opening.family)
    assert status == "200", (f"GET {url} from {client.name} on the {opening.segment} answered HTTP "
                             f"{status}, not 200 (000: no answer): gw must forward it to {opening.name}")


@pytest.mark.parametrize("opening", OPENINGS)
def test_the_internet_finds_the_container_by_name_through_gw(lab: Lab, opening: Opening) -> None:
    """The uplink may ask gw about the lab's zones (stages/policy.py): it finds the container's
    address by name there, and gets its page by that name."""
    client, dns = lab[outsider(opening)], address(INVENTORY.router().name, opening.family, opening.segment)
    seen = dig(client, NAME, "AAAA", server=dns)
    expect(seen, Answer("NOERROR", [opening.address]), f"{client.name} asked gw ({dns}) for {NAME} AAAA")
    url, named = f"http://{NAME}:{opening.port}/", f"{NAME}:{opening.port}:{in_url(seen.records[-1])}"
    status = client.execute(f"curl -s -{opening.family.version} --max-time 5 --resolve {named} "
                            f"-o /dev/null -w '%{{http_code}}' {shlex.quote(url)}")[1]
    assert status == "200", f"GET {url} from {client.name}, at the address gw gave, answered HTTP {status}"


@pytest.mark.parametrize(("opening", "target"), CLOSED)
def test_the_internet_hears_nothing_from_what_is_not_opened(lab: Lab, opening: Opening,
                                                            target: tuple[str, int]) -> None:
    """No answer at all, proven on gw (scenarios/firewall.py, `refusal`): a reset would say
    the packet got through gw to the container, or to apps."""
    client, (where, port) = lab[outsider(opening)], target
    row = Row(opening.segment, Service(opening.name, "closed", opening.proto, port, frozenset()),
              client.name, where, accepted=False, family=opening.family)
    seen, detail = refusal(client, lab[INVENTORY.router().name], row)
    assert seen == "dropped", (f"{client.name} on the {opening.segment} -> {where} {opening.proto}/{port}, "
                               f"which gw opens to no one there: expected dropped, the client saw {seen}: "
                               f"{detail}")
