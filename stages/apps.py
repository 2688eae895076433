"""Stage apps: apps (192.168.1.102 by DHCP reservation), where an application and its database
run as one rootless podman pod, the way most teams deploy a web application today.

User ``apps`` (unprivileged, with subordinate ids and lingering: `harness.machines.containers`)
runs pod ``pad``: the notepad ``pad`` (stages/files/pad.py, Python) and PostgreSQL, each in a
container of its own, its data in the named volume ``pad-data``. Both images are made in the
lab, without a registry: the ``pad`` tree (the base image given python3-psycopg2 and
postgresql on the host side) is imported as ``localhost/pad`` and tagged ``localhost/pg``. The
pod is run by the user's systemd units (``podman generate systemd --new``), enabled, so it
starts at boot with nobody logged in; it is published on 127.0.0.1:8388 alone, and nginx on
apps serves it to the LAN as ``pad`` (``pad.prolo``). PostgreSQL is published nowhere: pad
reaches it on 127.0.0.1 inside the pod. Both containers carry the label
``io.containers.autoupdate=local``: ``podman-auto-update.timer`` re-creates a container whose
local image was rebuilt.

And one container the way seed 002 runs them (stages/spec.py, "hello"): ``hello``, a page
served by python3's http.server from image ``localhost/hello`` (stages/images/hello, built
by buildah as user ``apps`` on pad's image), with an IPv6 address of its own from the /80
gw routes to apps and no IPv4 address at all. Root's system unit ``hello.service`` (enabled)
runs it as ``apps`` with ``--network=none``, then root's helper ``routed6`` (stages/files)
gives its network namespace a veth link to apps, the address and routes, and registers
``hello.ct.prolo`` in gw's DNS with a TSIG key of its own; when the unit stops, the helper
deletes the record. apps forwards IPv6 (networkd's IPForward=ipv6 on lan0).
"""

from __future__ import annotations

import shlex
from pathlib import Path

from harness import Build, Stage
from harness.engine.build.images import Image
from harness.machines import rootfs
from harness.machines.containers import as_user
from stages import spec
from stages.common import configure_network
from stages.generate import CONTAINERS_KEY
from stages.inventory import INVENTORY

USER = spec.APPS_USER  # the unprivileged user who runs the pod
POD = spec.APPS_SITE
PORT = spec.APPS_PRIVATE_PORTS["pad"]  # the pod's port on apps, on 127.0.0.1 alone: nginx proxies to it
APP_PORT = 3000  # pad's port in the pod
DB_PORT = spec.APPS_PRIVATE_PORTS["postgresql"]  # PostgreSQL's, in the pod, published nowhere
VOLUME = "pad-data"  # PostgreSQL's data, kept when its container is re-created
APP, DB = "pad-app", "pad-db"  # the containers
IMAGE, DB_IMAGE = "localhost/pad", "localhost/pg"
AUTOUPDATE = "io.containers.autoupdate=local"
# Root's podman units, which Debian's package enables: the API socket and service, the restart
# of root's containers at boot and root's auto-update. apps runs no root container (hello is
# run as apps; the pod by apps's own units and apps's own podman-auto-update.timer), so they
# only cost boot CPU, on every resume (bench/README.md, "What apps costs").
ROOT_PODMAN_UNITS = ("podman.socket", "podman.service", "podman-restart.service",
                     "podman-auto-update.service", "podman-auto-update.timer")
UNIT = f"pod-{POD}.service"  # the user's unit that runs the pod (podman generate systemd --name)
TREE = "pad"  # the tree both images are imported from
APP_FILE = Path(__file__).parent / "files" / "pad.py"
PG = "/usr/lib/postgresql/15/bin/postgres"
PG_CONF = "/etc/postgresql/15/main"
PG_DATA = "/var/lib/postgresql/15/main"
DSN = f"host=127.0.0.1 port={DB_PORT} dbname=pad user=pad password=pad"

# PostgreSQL in a container: its own process (no pg_ctlcluster, no systemd), listening in the
# pod's network namespace only, no TLS (nothing leaves the pod), no pid file outside its data.
PG_POD_CONF = """\
listen_addresses = '*'
unix_socket_directories = '/tmp'
external_pid_file = ''
ssl = off
"""

SITE = f"""server {{
    listen 80;
    listen [::]:80;
    server_name {POD} {POD}.{INVENTORY.domain};
    location / {{ proxy_pass http://127.0.0.1:{PORT}; }}
}}
"""

# What the user runs once, at build time: the pod as it should run, turned into units she
# enables (--new: each start creates the containers afresh from their images, which is what
# auto-update relies on), then the pod started by them.
RUN_POD = f"""set -e
podman pod create --name {POD} -p 127.0.0.1:{PORT}:{APP_PORT}
podman create --pod {POD} --name {DB} --user postgres --label {AUTOUPDATE} \\
  -v {VOLUME}:{PG_DATA} {DB_IMAGE} {PG} -c config_file={PG_CONF}/postgresql.conf
podman create --pod {POD} --name {APP} --label {AUTOUPDATE} {IMAGE} python3 /opt/pad/pad.py
mkdir -p ~/.config/systemd/user && cd ~/.config/systemd/user
podman generate systemd --files --name --new {POD}
podman pod rm -f {POD}
systemctl --user daemon-reload
systemctl --user enable {UNIT} podman-auto-update.timer
systemctl --user start {UNIT}
"""


CONTAINER = spec.APPS_CONTAINER
CONTAINER_IMAGE = f"localhost/{CONTAINER}"
CONTAINER_UNIT = f"{CONTAINER}.service"  # root's, enabled: it runs the container as USER
ROUTED6 = Path(__file__).parent / "files" / "routed6"
ROUTED6_ETC = "/etc/routed6"  # the helper's TSIG key and the containers' resolv.conf
CONTAINER_DIR = Path(__file__).parent / "images" / CONTAINER
# IPv6 forwarding on apps, for the containers' /80 (a drop-in beside the generated unit)
FORWARD = "[Network]\nIPForward=ipv6\n"


def container_unit(uid: int) -> str:
    """hello.service: the container as USER (uid ``uid``), given its address and name by root's
    helper once it runs, and its name removed once it stopped."""
    name = f"{CONTAINER}.{spec.APPS_ZONE}.{INVENTORY.domain}"
    dns = INVENTORY.router().nic(spec.LAN).address6
    command = (f"python3 -m http.server {spec.APPS_CONTAINER_PORT} --bind :: --directory /srv/{CONTAINER}")
    return f"""[Unit]
Description=Container {CONTAINER} of {USER}, with an IPv6 address of its own named in DNS
After=network.target user-runtime-dir@{uid}.service
Requires=user-runtime-dir@{uid}.service

[Service]
Type=notify
NotifyAccess=all
Delegate=yes
User={USER}
Environment=XDG_RUNTIME_DIR=/run/user/{uid}
Environment=CONTAINER_USER={USER}
Environment=ADDRESS={spec.APPS_CONTAINER_ADDRESS}
Environment=NAME={name}
Environment=ZONE={spec.APPS_ZONE}.{INVENTORY.domain}
Environment=DNS={dns}
Environment=KEY={ROUTED6_ETC}/key
ExecStart=/usr/bin/podman run --name {CONTAINER} --replace --rm -d --sdnotify=conmon --cgroups=no-conmon \
  --init --network=none -v {ROUTED6_ETC}/resolv.conf:/etc/resolv.conf:ro {CONTAINER_IMAGE} {command}
ExecStartPost=+/usr/local/sbin/routed6 up {CONTAINER}
ExecStop=/usr/bin/podman stop --ignore -t 10 {CONTAINER}
ExecStopPost=+/usr/local/sbin/routed6 down {CONTAINER}
ExecStopPost=-/usr/bin/podman rm -f --ignore {CONTAINER}
TimeoutStartSec=90
# the server's exit when stopped (SIGTERM): its user's `podman stop` is no failure
SuccessExitStatus=143

[Install]
WantedBy=multi-user.target
"""


def configure_routed(build: Build) -> None:
    """what the routed container needs on apps: forwarding, root's helper, its key, the
    container's resolver (gw, over IPv6: it has no IPv4), and its unit (enabled by a step,
    once its image exists)"""
    root = build.root("apps")
    uid = next(int(line.split(":")[2]) for line in (root / "etc/passwd").read_text().splitlines()
               if line.split(":")[0] == USER)
    lan = INVENTORY["apps"].nic(spec.LAN).name
    build.write("apps", f"/etc/systemd/network/10-{lan}.network.d/forward.conf", FORWARD)
    build.write("apps", "/usr/local/sbin/routed6", ROUTED6.read_text(), 0o755)
    key, algorithm, secret = CONTAINERS_KEY
    build.write("apps", f"{ROUTED6_ETC}/key", f'key "{key}" {{\n\talgorithm {algorithm};\n'
                                             f'\tsecret "{secret}";\n}};\n', 0o600)
    build.write("apps", f"{ROUTED6_ETC}/resolv.conf",
                f"nameserver {INVENTORY.router().nic(spec.LAN).address6}\nsearch {INVENTORY.domain}\n")
    build.write("apps", f"/etc/systemd/system/{CONTAINER_UNIT}", container_unit(uid))


def start_container(build: Build) -> None:
    """enable and start the container with an address of its own, now that its image is there"""
    build["apps"].succeed(f"systemctl enable --now {CONTAINER_UNIT}", timeout=120)


def user(command: str) -> str:
    """``command`` as the pod's user, in her login shell (`harness.machines.containers.as_user`)."""
    return as_user(USER, command)


def configure(build: Build) -> None:
    """write apps's network and its nginx site, and pad's tree: the application, its database
    with pad's role, and how PostgreSQL runs in a container"""
    configure_network(build, "apps")
    build.write("apps", f"/etc/nginx/sites-enabled/{POD}", SITE)
    build.write(TREE, "/opt/pad/pad.py", APP_FILE.read_text(), 0o755)
    build.write(TREE, "/etc/pad/dsn", f"{DSN}\n", 0o600)
    build.write(TREE, f"{PG_CONF}/conf.d/pod.conf", PG_POD_CONF)
    # pad's role and database, made in single-user mode: the tree never boots.
    sql = "CREATE ROLE pad LOGIN PASSWORD 'pad'\nCREATE DATABASE pad OWNER pad\n"
    rootfs.run_in_root(build.root(TREE), ["runuser", "-u", "postgres", "--", PG, "--single", "-D", PG_DATA,
                                          "-c", f"config_file={PG_CONF}/postgresql.conf", "postgres"],
                       input=sql)
    configure_routed(build)


def tag_db_image(build: Build) -> None:
    """tag pad's image as PostgreSQL's too (one tree holds both: one import, not two)"""
    build["apps"].succeed(user(f"podman tag {IMAGE} {DB_IMAGE}"))


def run_pod(build: Build) -> None:
    """make the pod, its user units (enabled) and start it"""
    build["apps"].succeed(user(RUN_POD), timeout=300)


def serving(build: Build) -> None:
    """wait until apps has its DHCP addresses, the user's pod unit is active, pad answers
    through nginx and the routed container's unit is active (its address and name are set)"""
    apps = build["apps"]
    nic = INVENTORY["apps"].nic("lan")
    for address in (nic.address, nic.address6):
        if address:
            apps.wait_for_address(nic.name, str(address))
    apps.wait_for_unit("nginx.service")
    apps.wait_until_succeeds(user(f"systemctl --user is-active {UNIT}"))
    apps.wait_for_open_port(PORT, "127.0.0.1")
    apps.wait_until_succeeds(f"curl -sf -H {shlex.quote('Host: ' + POD)} http://127.0.0.1/")
    apps.wait_for_unit(CONTAINER_UNIT)


STAGE = Stage.here(
    "apps",
    machines=("apps",),
    trees=(TREE,),
    packages={"apps": ("systemd-resolved", "nginx", "curl", "bind9-dnsutils", "iproute2"),
              TREE: ("python3", "python3-psycopg2", "postgresql")},
    containers={"apps": (USER,)},
    prepare=configure,
    steps=(Image("apps", USER, IMAGE, tree=TREE), tag_db_image, run_pod,
           Image("apps", USER, CONTAINER_IMAGE, context=CONTAINER_DIR), start_container),
    ready=(serving,),
    files=("files/pad.py", "files/routed6"),
    lean=ROOT_PODMAN_UNITS,
    definition={"inventory": INVENTORY.fingerprint()},
)
