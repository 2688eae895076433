"""Configuration generated from the inventory: network units, DHCP, DNS, firewall.

Pure functions from `harness.model.inventory.Inventory` to file contents, so the plan is
written once (the machines in stages/inventory.toml, the rest in stages/spec.py) and every
file that restates it is derived. One module per thing configured:

- `stages.generate.network`: every machine's networkd units, the router's advertisements,
  the routed /80 of the containers, resolv.conf;
- `stages.generate.dhcp`: Kea DHCPv4, DHCPv6 and DDNS on gw;
- `stages.generate.dns`: gw's zones, reverse names, named.conf, DNS64;
- `stages.generate.router`: gw's nftables ruleset and NAT64 (TAYGA);
- `stages.generate.uplink`: the simulated internet (far network, its BIND, its nginx);
- `stages.generate.topology`: the lab as a graphviz graph.

Every public name is re-exported here, so ``from stages.generate import named_conf`` and
``generate.named_conf`` work as before. A stage's key hashes the modules that define what it
imports (`harness.model.keys.sources_used` follows a function to its module), not this one:
keep it to re-exports, with no code of its own.
"""

from stages.generate.dhcp import DDNS_KEY, DDNS_PORT, kea_ddns, kea_dhcp4, kea_dhcp6, kea_names
from stages.generate.dns import (
    CONTAINERS_KEY,
    dns64,
    named_conf,
    ptr_owner,
    reverse_name,
    reverse_zones,
    zone_forward,
    zone_reverse,
)
from stages.generate.network import (
    CONTAINERS_HOST,
    dhcp_unit,
    ipv6_only,
    network_unit,
    network_units,
    resolver,
    routed6,
    router_advertisement,
)
from stages.generate.router import (
    ICMPV6_LINK,
    NAT64_ADDRESS,
    NAT64_ADDRESS6,
    NAT64_POOL,
    NAT64_TUN,
    nftables_router,
    tayga,
)
from stages.generate.topology import topology_dot
from stages.generate.uplink import FAR_LINK, FAR_PEER, UPLINK_NGINX, far_network, uplink_named
from stages.spec import LAN, UPLINK

__all__ = [
    "CONTAINERS_HOST", "CONTAINERS_KEY", "DDNS_KEY", "DDNS_PORT", "FAR_LINK", "FAR_PEER", "ICMPV6_LINK",
    "LAN", "NAT64_ADDRESS", "NAT64_ADDRESS6", "NAT64_POOL", "NAT64_TUN", "UPLINK", "UPLINK_NGINX",
    "dhcp_unit", "dns64", "far_network", "ipv6_only", "kea_ddns", "kea_dhcp4", "kea_dhcp6", "kea_names",
    "named_conf", "network_unit", "network_units", "nftables_router", "ptr_owner", "resolver",
    "reverse_name", "reverse_zones", "routed6", "router_advertisement", "tayga", "topology_dot",
    "uplink_named", "zone_forward", "zone_reverse",
]
