"""Stage web: the contest's web server, 192.168.1.100 by DHCP reservation.

nginx serves one name-based virtual host per alias of web (each with its own content);
``concours`` is proxied to a small app that reads and writes PostgreSQL on ``db`` (web
itself, reached by name through gw's DNS). The address, the resolver and the route come
from gw's DHCP server, through systemd-networkd and systemd-resolved.
"""

from __future__ import annotations

from pathlib import Path

from harness import rootfs
from harness.build import Build
from harness.stage import Stage
from stages.common import configure_network
from stages.inventory import INVENTORY, TEXT

APP = Path(__file__).parent / "files" / "concours.py"
SITES = tuple(a for a in INVENTORY["web"].aliases if a not in ("db", "concours"))
ADDRESS = str(INVENTORY["web"].nic("lan").address)
SERVICES = ("systemd-networkd.service", "systemd-resolved.service", "nginx.service",
            "postgresql@15-main.service", "concours.service")

CONCOURS_UNIT = """[Unit]
Description=concours, the contest site (stand-in)
After=network-online.target postgresql.service
Wants=postgresql.service
# Its database is reached by name over the network: keep trying until it answers.
StartLimitIntervalSec=0

[Service]
ExecStart=/usr/bin/python3 /opt/concours/concours.py
Restart=always
RestartSec=1
DynamicUser=yes

[Install]
WantedBy=multi-user.target
"""


# Debian's pg_ctlcluster waits with fixed sleeps: 0.5 s, then until three probes in a row,
# 0.5 s apart, connect: 2 s on every boot for a server ready in 0.2 s. Run the server as
# systemd expects instead (PostgreSQL's own recommendation): it says when it is ready
# (sd_notify), SIGINT stops it (a fast shutdown), and its log goes to the journal.
POSTGRES_NOTIFY = """[Service]
Type=notify
User=postgres
Group=postgres
PIDFile=
ExecStart=
ExecStart=/usr/lib/postgresql/15/bin/postgres -c config_file=/etc/postgresql/%I/postgresql.conf
ExecStop=
ExecReload=
ExecReload=/bin/kill -HUP $MAINPID
KillMode=mixed
KillSignal=SIGINT
TimeoutStartSec=60
TimeoutStopSec=30
"""


def vhost(name: str, body: str) -> str:
    """An nginx server block for ``name`` and ``name.<domain>``."""
    return (f"server {{\n    listen 80;\n    server_name {name} {name}.{INVENTORY.domain};\n"
            f"{body}}}\n")


def configure(build: Build) -> None:
    """write network, virtual hosts, database access and the concours app"""
    configure_network(build, "web")
    for site in SITES:
        build.write("web", f"/var/www/{site}/index.html", f"<h1>{site}</h1>\n<p>This is {site}.</p>\n")
        build.write("web", f"/etc/nginx/sites-enabled/{site}",
                    vhost(site, f"    root /var/www/{site};\n"))
    build.write("web", "/etc/nginx/sites-enabled/concours",
                vhost("concours", "    location / { proxy_pass http://127.0.0.1:8000; }\n"))
    lan = INVENTORY.segments["lan"].cidr
    build.write("web", "/etc/postgresql/15/main/conf.d/lab.conf", "listen_addresses = '*'\n")
    build.write("web", "/etc/systemd/system/postgresql@.service.d/notify.conf", POSTGRES_NOTIFY)
    with open(build.root("web") / "etc/postgresql/15/main/pg_hba.conf", "a") as hba:
        hba.write(f"host concours concours {lan} scram-sha-256\n")
    build.write("web", "/opt/concours/concours.py", APP.read_text())
    build.write("web", "/etc/systemd/system/concours.service", CONCOURS_UNIT)
    rootfs.systemctl(build.root("web"), "enable", "concours.service")


def create_database(build: Build) -> None:
    """create the concours database and its owner"""
    web = build["web"]
    web.wait_for_unit("postgresql@15-main.service")
    web.succeed("runuser -u postgres -- psql -v ON_ERROR_STOP=1 -c "
                "\"CREATE ROLE concours LOGIN PASSWORD 'concours'\"")
    web.succeed("runuser -u postgres -- createdb -O concours concours")
    web.succeed("systemctl reset-failed concours.service; systemctl restart concours.service")


def serving(build: Build) -> None:
    """wait until web has its DHCP address and serves HTTP, PostgreSQL and concours"""
    web = build["web"]
    web.wait_for_address("lan0", ADDRESS)
    for unit in SERVICES:
        web.wait_for_unit(unit)
    web.wait_for_open_port(80)
    web.wait_for_open_port(5432, ADDRESS)
    web.wait_until_succeeds("curl -sf -H 'Host: concours' http://127.0.0.1/entries")


STAGE = Stage.here(
    "web",
    machines=("web",),
    packages={"web": ("systemd-resolved", "nginx", "postgresql", "python3", "python3-psycopg2",
                      "curl", "bind9-dnsutils")},
    prepare=configure,
    steps=(create_database,),
    ready=(serving,),
    definition={"inventory": TEXT, "app": APP.read_text()},
)
