"""The simulated internet (the uplink machine), derived from the inventory: its far network
behind a narrow link, its authoritative BIND for the public-looking zone, its nginx.

Its own module because none of it is the lab's own configuration: it stands in for the
outside world that gw's NAT, DNS forwarding and path MTU discovery are checked against.
"""

from __future__ import annotations

from harness import Inventory
from harness.model.inventory import Kind
from stages import spec
from stages.generate.network import network_unit
from stages.spec import UPLINK

FAR_LINK, FAR_PEER = "far0", "far1"  # a veth pair: the kernel here has no dummy links


def far_network(inv: Inventory) -> dict[str, str]:
    """The internet's narrow link: a veth pair of `spec.NARROW_MTU` bytes, ``far0`` holding the
    first address of `spec.FAR` in each family of the lab (nothing answers beyond it). The
    internet forwards (`Inventory.forwarding`, set from outside: stages/__init__.py), so it
    routes to FAR, and answers a packet too big for the link, as a router does."""
    addresses = [f"Address={spec.FAR[f].network_address + 1}/{spec.FAR[f].prefixlen}" for f in inv.families()]
    return {f"/etc/systemd/network/20-{FAR_LINK}.netdev":
            f"[NetDev]\nName={FAR_LINK}\nKind=veth\nMTUBytes={spec.NARROW_MTU}\n\n"
            f"[Peer]\nName={FAR_PEER}\nMTUBytes={spec.NARROW_MTU}\n",
            **network_unit(FAR_LINK, [*addresses, "IPv6AcceptRA=no"]),
            **network_unit(FAR_PEER, ["LinkLocalAddressing=no", "IPv6AcceptRA=no"])}


def uplink_named(inv: Inventory) -> dict[str, str]:
    """BIND on the simulated internet: authoritative for the public-looking zone (A and AAAA),
    no recursion."""
    me = inv[next(h.name for h in inv.hosts.values() if h.kind is Kind.UPLINK)].nic(UPLINK)
    records = [f"{owner} IN {kind} {address}" for owner in ("@", "ns", "www")
               for kind, address in (("A", me.address), ("AAAA", me.address6)) if address]
    records.append(f"{spec.UPLINK_IPV4_ONLY} IN A {me.address}")
    zone = "\n".join([
        "$TTL 300",
        f"@ IN SOA ns.{spec.UPLINK_ZONE}. hostmaster.{spec.UPLINK_ZONE}. ( 1 3600 600 86400 300 )",
        f"@ IN NS ns.{spec.UPLINK_ZONE}.", *records]) + "\n"
    return {
        "/etc/bind/named.conf.options": 'options {\n    directory "/var/cache/bind";\n'
                                        "    listen-on { any; };\n    listen-on-v6 { any; };\n"
                                        "    allow-query { any; };\n    recursion no;\n"
                                        "    dnssec-validation no;\n};\n",
        "/etc/bind/named.conf.local": f'zone "{spec.UPLINK_ZONE}" {{ type primary; '
                                      f'file "/etc/bind/db.{spec.UPLINK_ZONE}"; }};\n',
        f"/etc/bind/db.{spec.UPLINK_ZONE}": zone,
    }


UPLINK_NGINX = r"""# The simulated internet: a connectivity check, and a log of who asked (NAT shows here).
log_format clients '$remote_addr "$request" $status';

server {
    listen 80 default_server;
    listen [::]:80 default_server;
    access_log /var/log/nginx/clients.log clients;
    location = /generate_204 { return 204; }
    location / { return 200 "hello from the internet\n"; }
}
"""
