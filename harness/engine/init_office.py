"""``harness init --template office DIR``: the first lab most teams write, passing as it is.

A router between the office's ``lan`` and an ``uplink``: dnsmasq serves DHCP and DNS on the
lan (a reservation for the printer, the pool for everyone else, names in the domain), and
nftables NATs the lan to the uplink; the router forwards because the inventory marks it
``router = true``. A printer takes its reserved address by DHCP and serves a page; a laptop
is a plain DHCP client (no address in the inventory: the pool lends one); an observer on
the uplink serves a page and logs who asked, so a scenario sees the NAT from where it shows.

Everything is shell scripts and TOML: the scripts read the plan the harness gives them
(``HARNESS_INVENTORY``, a JSON file, with jq; ``HARNESS_*`` variables for the machine's own
interfaces), so no address is written twice. Python is the stage list and the scenarios.
"""

from __future__ import annotations

# The files of its own; `harness.engine.init` adds those every template shares (pyproject.toml,
# stages/__init__.py).
FILES = {
    "stages/inventory.toml": '''\
# The office's machines and networks. Every address and MAC lives here, once: the router's
# scripts read the reservations and the pool from it, the scenarios their expectations.

[lab]
domain = "office"

[segments.lan]
cidr = "10.10.0.0/24"
pool = ["10.10.0.100", "10.10.0.199"]   # what DHCP lends machines without a reservation

[segments.uplink]                        # the office's link to the outside world
cidr = "192.0.2.0/24"

[machines.router]
router = true                            # forwards between lan and uplink
interfaces = [
  { name = "lan0", segment = "lan", mac = "02:00:0a:0a:00:01", address = "10.10.0.1", config = "static" },
  { name = "wan0", segment = "uplink", mac = "02:00:c0:00:02:01", address = "192.0.2.1", config = "static" },
]

[machines.printer]                       # a reservation: DHCP gives it this address, DNS its name
interfaces = [
  { name = "lan0", segment = "lan", mac = "02:00:0a:0a:00:0a", address = "10.10.0.10", config = "dhcp" },
]

[machines.laptop]                        # a plain DHCP client: whatever the pool lends
interfaces = [
  { name = "lan0", segment = "lan", mac = "02:00:0a:0a:00:64", config = "dhcp" },
]

[machines.observer]                      # a server out on the uplink
type = "uplink"
interfaces = [
  { name = "eth0", segment = "uplink", mac = "02:00:c0:00:02:63", address = "192.0.2.99", config = "static" },
]
''',
    "stages/office.py": '''\
"""Stage office: the router, the printer, the laptop and the observer.

Packages are installed before boot, from the host's shared package cache (a booted lab
machine has no route out of its lab); then each machine's scripts run in it, booted, in the
order of ``steps``: the router first, so that its DHCP server is up for the others. Editing
a file of office/ rebuilds this stage (and only the stages after it).
"""

from harness import Build, Stage, scripts


def serving(build: Build) -> None:
    """wait for the router's dnsmasq and the printer's and observer's web servers"""
    build["router"].wait_for_unit("dnsmasq.service")   # the machines' own services, nothing a
    build["printer"].wait_for_open_port(80)            # scenario asserts (docs/own-lab.md)
    build["observer"].wait_for_open_port(80)


STAGE = Stage.here(
    "office",
    machines=("router", "printer", "laptop", "observer"),
    packages={"router": ("dnsmasq", "nftables", "jq"), "printer": ("nginx",),
              "laptop": ("curl", "bind9-dnsutils"), "observer": ("nginx",)},
    steps=(scripts("office/router", on="router"),
           scripts("office/dhcp-client", on="printer"), scripts("office/printer", on="printer"),
           scripts("office/dhcp-client", on="laptop"),
           scripts("office/observer", on="observer")),
    ready=(serving,),
)
''',
    "stages/office/router/10-dnsmasq.sh": '''\
#!/bin/sh
# DHCP and DNS for the lan, from the plan: the lan's pool, a reservation (MAC, address, name)
# for each DHCP interface on the lan that names an address, a name in the domain for each
# address the plan knows on the lan. Runs in the booted router.
set -eu
plan="$HARNESS_INVENTORY"
{
  echo "interface=lan0"
  echo "bind-interfaces"
  echo "domain=$HARNESS_DOMAIN"
  echo "local=/$HARNESS_DOMAIN/"
  echo "dhcp-authoritative"
  jq -r '.segments.lan.pool | "dhcp-range=\\(.[0]),\\(.[1]),1h"' "$plan"
  jq -r '.machines | to_entries[] | .key as $name | .value.interfaces[]
         | select(.segment == "lan" and .config == "dhcp" and .address != null)
         | "dhcp-host=\\(.mac),\\(.address),\\($name)"' "$plan"
  jq -r --arg domain "$HARNESS_DOMAIN" '.machines | to_entries[] | .key as $name
         | .value.interfaces[] | select(.segment == "lan" and .address != null)
         | "host-record=\\($name).\\($domain),\\($name),\\(.address)"' "$plan"
} > /etc/dnsmasq.d/lan.conf
systemctl enable dnsmasq.service
systemctl restart dnsmasq.service
''',
    "stages/office/router/20-nat.sh": '''\
#!/bin/sh
# NAT: what leaves by the uplink (wan0) leaves with the router's address. Forwarding itself
# is the lab's doing: the inventory marks the router router = true.
set -eu
cat > /etc/nftables.conf <<EOF
#!/usr/sbin/nft -f
flush ruleset
table ip nat {
  chain postrouting {
    type nat hook postrouting priority srcnat;
    oifname "wan0" ip saddr $HARNESS_NETWORK_LAN0 masquerade
  }
}
EOF
systemctl enable nftables.service
systemctl restart nftables.service
''',
    "stages/office/dhcp-client/10-networkd.sh": '''\
#!/bin/sh
# Every interface of this machine takes its address, route and DNS server by DHCP
# (systemd-networkd). Run in the printer and in the laptop.
set -eu
for nic in $HARNESS_INTERFACES; do
  printf '[Match]\\nName=%s\\n\\n[Network]\\nDHCP=ipv4\\n' "$nic" > "/etc/systemd/network/$nic.network"
done
# Booting must not wait for a lease: a missing lease is a scenario's to report.
systemctl mask systemd-networkd-wait-online.service
systemctl enable systemd-networkd.service
systemctl restart systemd-networkd.service
''',
    "stages/office/printer/10-page.sh": '''\
#!/bin/sh
# The printer's status page.
set -eu
sed "s/@MACHINE@/$HARNESS_MACHINE/" status.html.in > /var/www/html/index.html
systemctl reload-or-restart nginx
''',
    "stages/office/printer/status.html.in": "@MACHINE@: ready to print\n",
    "stages/office/observer/10-page.sh": '''\
#!/bin/sh
# A page out on the uplink; nginx's access log says which address each request came from.
set -eu
echo "the outside world" > /var/www/html/index.html
systemctl reload-or-restart nginx
''',
    "scenarios/test_office.py": '''\
"""What the office network does, seen from the machine that would see it.

Expected addresses come from the inventory (stages/inventory.toml), never copied here.
"""

import ipaddress

from harness import Family
from stages import INVENTORY

LAN = INVENTORY.segments["lan"]
PRINTER = str(INVENTORY["printer"].nic("lan").address)
ROUTER = str(INVENTORY["router"].nic("lan").address)
ROUTER_UPLINK = str(INVENTORY["router"].nic("uplink").address)
OBSERVER = str(INVENTORY["observer"].nic("uplink").address)


def test_the_printer_gets_its_reserved_address(printer):
    printer.wait_for_address("lan0", PRINTER)


def test_the_laptop_gets_an_address_from_the_pool(laptop):
    first, last = (ipaddress.ip_address(a) for a in LAN.pool)
    leased = laptop.wait_until_succeeds("ip -4 -o addr show dynamic lan0 | grep -o 'inet [0-9.]*'")
    address = ipaddress.ip_address(leased.split()[1])
    assert first <= address <= last, f"laptop leased {address}, outside the pool {first}-{last}"
    assert laptop.addresses("lan0", Family.IPV4, dynamic=True) == [str(address)]


def test_the_laptop_finds_the_printer_by_name(laptop):
    answer = laptop.wait_until_succeeds(f"dig +short @{ROUTER} printer.{INVENTORY.domain} | grep .")
    assert answer.split() == [PRINTER]


def test_the_laptop_reads_the_printers_page(laptop, printer):
    printer.wait_for_address("lan0", PRINTER)
    page = laptop.wait_until_succeeds(f"curl -sf --max-time 5 http://{PRINTER}/")
    assert page.strip() == "printer: ready to print"


def test_the_outside_world_sees_the_office_as_the_routers_address(laptop, observer):
    laptop.wait_until_succeeds(f"curl -sf --max-time 5 http://{OBSERVER}/")
    clients = {line.split()[0] for line in observer.succeed("cat /var/log/nginx/access.log").splitlines()}
    assert clients == {ROUTER_UPLINK}, f"observer saw requests from {clients}, not only the router's NAT"
''',
    "README.md": '''\
# {name}

An office network, tested end to end with [harness](https://example.invalid/harness): a
router (DHCP and DNS with dnsmasq, NAT to the uplink with nftables), a printer with a
reserved address, a laptop that takes what the pool lends, and an observer on the uplink.

    harness setup-host      # once per host, as root: packages, limits, the snapshot store
    pytest                  # build what the scenarios need (cached as snapshots), run them
    pytest -v               # every build step as a line
    harness up              # boot the lab and leave it running; `harness shell --lab ID laptop`
    harness report          # reports/html/index.html from the last run's results

- `stages/inventory.toml`: the machines, their MACs and addresses, the lan's pool.
- `stages/office.py`: what is installed where, and which scripts run on which machine.
- `stages/office/*/`: the scripts, run in order in the booted machine; they read the plan
  from `$HARNESS_INVENTORY` (JSON) and `$HARNESS_ADDRESS_LAN0`-style variables.
- `scenarios/`: what the network must do, asserted from the machines.
- `reports/`: what each run wrote (allure results, `junit.xml`, `timings.md`, evidence).
''',
}
