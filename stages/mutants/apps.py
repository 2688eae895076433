"""Mutants of stage apps (stages/apps.py): plausible regressions of the user's pod, one each.

No stage imports this module, so none of it is part of a stage's key: adding or editing a
mutant rebuilds nothing. stages/__init__.py attaches these to stage apps (see harness.model.mutant).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from harness import mutant
from harness.machines.containers import LINGER
from harness.model.mutant import edit, run
from stages.apps import (
    APP,
    AUTOUPDATE,
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
