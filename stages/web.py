"""Stage web: the contest's web server, 192.168.1.100 by DHCP reservation, and paste, the
LAN's IPv6-only machine (a pastebin: an nginx site), which the LAN reaches by its AAAA record
alone and which reaches the IPv4 internet through gw's DNS64 and NAT64.

nginx serves one name-based virtual host per alias of web (each with its own content);
``concours`` is proxied to a small app that reads and writes PostgreSQL on ``db`` (web
itself, reached by name through gw's DNS). The address, the resolver and the route come
from gw's DHCP server, through systemd-networkd and systemd-resolved.
"""

from __future__ import annotations

from pathlib import Path

from harness import Build, Stage
from harness.machines import rootfs
from stages.common import configure_network
from stages.inventory import INVENTORY

APP = Path(__file__).parent / "files" / "concours.py"
SITES = tuple(a for a in INVENTORY["web"].aliases if a not in ("db", "concours"))
ADDRESS = str(INVENTORY["web"].nic("lan").address)
SERVICES = ("systemd-networkd.service", "systemd-resolved.service", "nginx.service",
            "postgresql@15-main.service", "concours.service")

DSN = "host=db dbname=concours user=concours password=concours"  # what concours connects with
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
# The database password, readable by root alone on disk, by the service alone at run time.
LoadCredential=dsn:/etc/concours/dsn

[Install]
WantedBy=multi-user.target
"""


# Debian's pg_ctlcluster waits with fixed sleeps: 0.5 s, then until three probes in a row,
# 0.5 s apart, connect: most of every boot for a server ready long before (bench/README.md,
# "What moved them"). Run the server as systemd expects instead (PostgreSQL's own
# recommendation): it says when it is ready (sd_notify), SIGINT stops it (a fast shutdown),
# and its log goes to the journal.
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
    return (f"server {{\n    listen 80;\n    listen [::]:80;\n"
            f"    server_name {name} {name}.{INVENTORY.domain};\n"
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
    lan = INVENTORY.segments["lan"]
    build.write("web", "/etc/postgresql/15/main/conf.d/lab.conf", "listen_addresses = '*'\n")
    build.write("web", "/etc/systemd/system/postgresql@.service.d/notify.conf", POSTGRES_NOTIFY)
    with open(build.root("web") / "etc/postgresql/15/main/pg_hba.conf", "a") as hba:
        hba.writelines(f"host concours concours {net} scram-sha-256\n"
                       for net in (lan.cidr, lan.cidr6) if net)
    build.write("web", "/opt/concours/concours.py", APP.read_text())
    build.write("web", "/etc/concours/dsn", f"{DSN}\n", 0o600)
    build.write("web", "/etc/systemd/system/concours.service", CONCOURS_UNIT)
    rootfs.systemctl(build.root("web"), "enable", "concours.service")


PASTE_SITE = """server {
    listen [::]:80 default_server;
    server_name paste paste.%s;
    root /var/www/paste;
}
"""


def configure_paste(build: Build) -> None:
    """write paste's network (DHCPv6 only) and its site, on IPv6 alone"""
    configure_network(build, "paste")
    build.write("paste", "/var/www/paste/index.html", "<h1>paste</h1>\n<p>This is paste.</p>\n")
    rootfs.run_in_root(build.root("paste"), ["rm", "-f", "/etc/nginx/sites-enabled/default"])
    build.write("paste", "/etc/nginx/sites-enabled/paste", PASTE_SITE % INVENTORY.domain)


def create_database(build: Build) -> None:
    """create the concours database and its owner"""
    web = build["web"]
    web.wait_for_unit("postgresql@15-main.service")
    web.succeed("runuser -u postgres -- psql -v ON_ERROR_STOP=1 -c "
                "\"CREATE ROLE concours LOGIN PASSWORD 'concours'\"")
    web.succeed("runuser -u postgres -- createdb -O concours concours")
    web.succeed("systemctl reset-failed concours.service; systemctl restart concours.service")


def paste_serving(build: Build) -> None:
    """wait until paste has its DHCPv6 address and serves HTTP"""
    paste, nic = build["paste"], INVENTORY["paste"].nic("lan")
    paste.wait_for_address(nic.name, str(nic.address6))
    paste.wait_for_open_port(80, str(nic.address6))


def serving(build: Build) -> None:
    """wait until web has its DHCP address and serves HTTP, PostgreSQL and concours"""
    web = build["web"]
    nic = INVENTORY["web"].nic("lan")
    for address in (nic.address, nic.address6):
        if address:
            web.wait_for_address(nic.name, str(address))
    for unit in SERVICES:
        web.wait_for_unit(unit)
    web.wait_for_open_port(80)
    web.wait_for_open_port(5432, ADDRESS)
    web.wait_until_succeeds("curl -sf -H 'Host: concours' http://127.0.0.1/entries")


# paste has no IPv4 address: a run that keeps IPv4 alone (--families=ipv4) has no paste.
WITH_PASTE = "paste" in INVENTORY.hosts


def configure_all(build: Build) -> None:
    """write web's and paste's configuration"""
    configure(build)
    if WITH_PASTE:
        configure_paste(build)


STAGE = Stage.here(
    "web",
    machines=("web", "paste") if WITH_PASTE else ("web",),
    packages={"web": ("systemd-resolved", "nginx", "postgresql", "python3", "python3-psycopg2",
                      "curl", "bind9-dnsutils"),
              **({"paste": ("systemd-resolved", "nginx", "curl", "bind9-dnsutils")} if WITH_PASTE else {})},
    prepare=configure_all,
    steps=(create_database,),
    ready=(serving, paste_serving) if WITH_PASTE else (serving,),
    files=("files/concours.py",),
    definition={"inventory": INVENTORY.fingerprint()},
)
