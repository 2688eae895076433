"""Mutants of stage apps (stages/apps.py): plausible regressions of the user's pod, one each.

No stage imports this module, so none of it is part of a stage's key: adding or editing a
mutant rebuilds nothing. stages/__init__.py attaches these to stage apps (see harness.model.mutant).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from harness import HarnessError, mutant
from harness.machines.containers import LINGER
from harness.model.mutant import edit, run
from stages import spec
from stages.apps import (
    APP,
    AUTOUPDATE,
    CONTAINER_IMAGE,
    CONTAINER_UNIT,
    DB,
    DB_IMAGE,
    IMAGE,
    PG,
    PG_CONF,
    PG_DATA,
    POD,
    PORT,
    UNIT,
    USER,
    VOLUME,
    user,
)
from stages.inventory import INVENTORY

if TYPE_CHECKING:
    from harness import Lab, Machine

UNITS = f"/home/{USER}/.config/systemd/user"


def _serving(apps: Machine) -> None:
    """Wait until pad answers through nginx on apps again."""
    apps.wait_until_succeeds(f"curl -sf --max-time 5 -H 'Host: {POD}' http://127.0.0.1/")


def _republish(lab: Lab, ports: str) -> None:
    """Publish the pod with ``ports`` instead of 127.0.0.1 alone: its unit edited, restarted."""
    apps = lab["apps"]
    edit(apps, f"{UNITS}/{UNIT}", f"-p 127.0.0.1:{PORT}:", f"{ports}:")
    run(apps, user(f"systemctl --user daemon-reload && systemctl --user restart {UNIT}"))
    _serving(apps)


@mutant("the pod is published on every address (`-p 8388:3000`): the LAN reaches pad around nginx")
def apps_published_on_all_addresses(lab: Lab) -> None:
    _republish(lab, f"-p {PORT}")


@mutant("PostgreSQL is published beside pad (`-p 5432:5432`): the LAN reaches the database")
def apps_db_published_on_the_lan(lab: Lab) -> None:
    _republish(lab, f"-p 5432:5432 -p 127.0.0.1:{PORT}")


@mutant("lingering was never turned on for the pod's user: her units start only when she logs in")
def apps_linger_off(lab: Lab) -> None:
    # What `loginctl disable-linger` leaves on disk, without stopping her manager now: the pod
    # serves until apps reboots, as it did for whoever set it up from a login shell.
    run(lab["apps"], f"rm {LINGER}/{USER}")


@mutant("the pod's units were generated but never enabled: it runs until apps reboots")
def apps_units_not_enabled(lab: Lab) -> None:
    run(lab["apps"], user(f"systemctl --user disable {UNIT}"))


@mutant("nginx on apps has no pad server: pad.prolo gets nginx's default site")
def apps_nginx_without_pad(lab: Lab) -> None:
    apps = lab["apps"]
    run(apps, f"rm /etc/nginx/sites-enabled/{POD} && systemctl restart nginx")
    apps.wait_for_open_port(80)


@mutant("the pod runs under root's podman (host network, no user namespace): its processes are root's")
def apps_pod_run_by_root(lab: Lab) -> None:
    apps, tar = lab["apps"], "/var/tmp/pad-image.tar"
    run(apps, user(f"systemctl --user disable --now {UNIT} && podman save -o {tar} {IMAGE}"))
    run(apps, f"podman load -q -i {tar} && rm {tar} && podman tag {IMAGE} {DB_IMAGE}")
    # root's containers get no cgroup of their own: root in a machine cannot make one (hybrid
    # cgroups, see docs/containers.md)
    root = "podman run -d --network=host --cgroups=disabled --restart=always"
    run(apps, f"{root} --name {DB} --user postgres -v {VOLUME}:{PG_DATA} {DB_IMAGE} {PG} "
              f"-c config_file={PG_CONF}/postgresql.conf -c listen_addresses=127.0.0.1")
    run(apps, f"{root} --name {APP} -e PAD_PORT={PORT} {IMAGE} python3 /opt/pad/pad.py")
    _serving(apps)




def _reunit(lab: Lab, container: str, old: str, new: str) -> None:
    """Edit ``container``'s unit (``old`` -> ``new``), restart the pod, wait until pad answers."""
    apps = lab["apps"]
    edit(apps, f"{UNITS}/container-{container}.service", old, new)
    run(apps, user(f"systemctl --user daemon-reload && systemctl --user restart {UNIT}"))
    _serving(apps)


@mutant("PostgreSQL's data is in its container, not in a volume: a re-created container starts empty")
def apps_data_not_in_a_volume(lab: Lab) -> None:
    _reunit(lab, DB, f"-v {VOLUME}:{PG_DATA} ", "")


@mutant("the containers lack the auto-update label: podman auto-update leaves them on the old image")
def apps_no_auto_update_label(lab: Lab) -> None:
    for container in (APP, DB):
        _reunit(lab, container, f"--label {AUTOUPDATE} ", "")


# -- hello, the container with an IPv6 address of its own (seed 002) ---------------------------------

HELPER = "/usr/local/sbin/routed6"
CONTAINER_UNIT_PATH = f"/etc/systemd/system/{CONTAINER_UNIT}"


def _restart_container(lab: Lab) -> None:
    """Restart hello's unit on apps (its unit file re-read) and wait until it is active."""
    apps = lab["apps"]
    run(apps, f"systemctl daemon-reload && systemctl restart {CONTAINER_UNIT}")
    apps.wait_for_unit(CONTAINER_UNIT)


@mutant("the routed container's helper never registers its name: hello.ct.prolo is not in DNS")
def apps_container_not_in_dns(lab: Lab) -> None:
    edit(lab["apps"], HELPER, '    update 60 "update delete $NAME AAAA', '    : 60 "update delete $NAME AAAA')
    _restart_container(lab)  # its stop deletes the record, its start adds none


@mutant("the routed container's record is left behind when it stops: its name points at nothing")
def apps_container_record_kept_on_stop(lab: Lab) -> None:
    edit(lab["apps"], HELPER, '    update 6 "update delete $NAME"\n', '    : 6 "update delete $NAME"\n')


@mutant("the routed container's helper gives it an IPv4 address too (10.88.0.10, routed on apps): it "
        "is no longer reachable over IPv6 alone")
def apps_container_ipv4_ingress(lab: Lab) -> None:
    # podman's own network (`--network=slirp4netns -p 8000:8000` in the unit) is the likelier
    # regression, but hello.service then fails to start: slirp4netns's IPv6 (on by default) gives
    # the namespace a default route, and routed6's `ip -6 route add default` gets "File exists".
    # `--network=slirp4netns:enable_ipv6=false` starts (docs/containers.md, "podman's own network")
    apps = lab["apps"]
    edit(apps, HELPER, 'ip -6 addr add fe80::1/64 dev "$link" nodad\n',
         'ip -6 addr add fe80::1/64 dev "$link" nodad\n    ip addr add 10.88.0.1/24 dev "$link"\n')
    edit(apps, HELPER, "ip -6 addr add $ADDRESS/128 dev eth0 nodad\n",
         "ip -6 addr add $ADDRESS/128 dev eth0 nodad\n        ip addr add 10.88.0.10/24 dev eth0\n")
    _restart_container(lab)


@mutant("hello.service was started by hand but never enabled: the container is gone after a reboot")
def apps_container_not_enabled(lab: Lab) -> None:
    run(lab["apps"], f"systemctl disable {CONTAINER_UNIT}")


@mutant("gw has no route to the containers' /80: it looks their addresses up on the LAN, in vain")
def apps_container_not_routed_by_gw(lab: Lab) -> None:
    gw, apps = lab["gw"], INVENTORY["apps"].nic(spec.LAN).address6
    edit(gw, "/etc/systemd/network/10-lan0.network",
         f"[Route]\nDestination={spec.APPS_ROUTED6}\nGateway={apps}\n", "")
    run(gw, f"ip -6 route del {spec.APPS_ROUTED6}")


def _reopen(lab: Lab, rule: str) -> None:
    """Replace gw's forward rule for the uplink's opening to hello (stages/policy.py, INGRESS)
    with ``rule``, or with nothing."""
    gw, wan, lan = lab["gw"], INVENTORY["gw"].nic(spec.UPLINK).name, INVENTORY["gw"].nic(spec.LAN).name
    handle = run(gw, f"nft -a list chain inet filter forward | sed -n "
                     f"'s/.*comment \"ingress {spec.APPS_CONTAINER}\" # handle //p'").strip()
    if not handle.isdigit():
        raise HarnessError(f"gw's forward chain has no single rule for the ingress to hello ({handle!r}): "
                           "the mutant no longer applies; update it")
    run(gw, f"nft delete rule inet filter forward handle {handle}")
    if rule:
        run(gw, f"nft add rule inet filter forward iifname {wan} oifname {lan} {rule} accept")


@mutant("gw's forward chain lost the opening to the routed container: the internet gets nothing from hello")
def apps_container_ingress_missing(lab: Lab) -> None:
    _reopen(lab, "")


@mutant("gw opens the containers' whole /80 to the uplink, every port (a port forward written as a route)")
def apps_container_ingress_whole_prefix(lab: Lab) -> None:
    _reopen(lab, f"ip6 daddr {spec.APPS_ROUTED6}")


@mutant("gw opens the container's port on every address of the /80, not on hello's alone")
def apps_container_ingress_port_on_whole_prefix(lab: Lab) -> None:
    _reopen(lab, f"ip6 daddr {spec.APPS_ROUTED6} tcp dport {spec.APPS_CONTAINER_PORT}")


@mutant("the containers' /80 gets no DNS64: the routed container cannot name the IPv4 internet")
def apps_container_without_dns64(lab: Lab) -> None:
    gw = lab["gw"]
    edit(gw, "/etc/bind/named.conf.options", f"; {spec.APPS_ROUTED6};", ";")
    run(gw, "systemctl restart named")
    gw.wait_until_succeeds(f"dig +short @::1 {spec.APPS_ZONE}.{INVENTORY.domain} SOA | grep -q .")


@mutant("the routed container runs under root's podman (same unit, User= gone): its processes are root's")
def apps_container_run_by_root(lab: Lab) -> None:
    apps, tar = lab["apps"], "/var/tmp/hello-image.tar"
    uid = run(apps, f"id -u {USER}").strip()
    run(apps, user(f"podman save -o {tar} {CONTAINER_IMAGE}"))
    run(apps, f"podman load -q -i {tar} && rm {tar} && systemctl stop {CONTAINER_UNIT}")
    for old, new in ((f"User={USER}\n", ""), (f"Environment=XDG_RUNTIME_DIR=/run/user/{uid}\n", ""),
                     (f"CONTAINER_USER={USER}", "CONTAINER_USER=root"),
                     # root in a machine gets no cgroup of its own (see apps_pod_run_by_root)
                     ("--cgroups=no-conmon", "--cgroups=disabled")):
        edit(apps, CONTAINER_UNIT_PATH, old, new)
    _restart_container(lab)


@mutant("hello.service runs pad's imported image, not the one buildah built from stages/images/hello")
def apps_container_image_not_built(lab: Lab) -> None:
    edit(lab["apps"], CONTAINER_UNIT_PATH, f"{CONTAINER_IMAGE} python3", f"{IMAGE} python3")
    _restart_container(lab)
